"""Ingest throughput on MultiHop-RAG: the embedder alone vs the whole pipeline, in one run.

1. Embedder alone: the corpus's chunks (header-prefixed, exactly what ingest embeds) embedded in
   windows of the pipeline's size — nothing else timed.
2. Pipeline: `ingest` of the same articles from the JSON file into a fresh Chroma store in a temp
   dir — reading, hashing, duplicate detection, chunking, embedding and committing all timed.
Prints one JSON object on its last line:
{"embedder_chunks_per_s", "pipeline_chunks_per_s", "articles_per_s", "ratio", ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.embed import make_embedder  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from assistant.store import Store, make_client  # noqa: E402
from ingest.chunk import chunk_article  # noqa: E402
from ingest.pipeline import embed_texts, ingest  # noqa: E402
from ingest.read import read_path  # noqa: E402

CORPUS = ROOT.parent / "shared" / "data" / "multihop-rag" / "corpus.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=0, help="only the first N articles")
    ap.add_argument("--embedder", default=None, help="override NEWSQA_EMBEDDER")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"data_dir": Path(tmp) / "data"}
        if args.embedder:
            overrides["embedder"] = args.embedder
        settings = Settings(**overrides)
        corpus = json.loads(CORPUS.read_text())
        if args.limit:
            corpus = corpus[: args.limit]
        source = Path(tmp) / "corpus.json"
        source.write_text(json.dumps(corpus))
        articles, _ = read_path(source)
        texts = [t for a in articles for t in embed_texts(a, chunk_article(a, settings.chunk_tokens,
                                                                              settings.chunk_overlap))]
        embedder = make_embedder(settings)
        window = settings.ingest_window
        embedder.embed(texts[:window])  # warm up on a whole window (8 texts left it cold)
        t0 = time.perf_counter()
        for start in range(0, len(texts), window):
            embedder.embed(texts[start : start + window])
        embed_s = time.perf_counter() - t0

        store = Store(make_client(settings), embedder.name, settings.collection_prefix)
        t0 = time.perf_counter()
        report = ingest([str(source)], store, embedder, settings)
        pipe_s = time.perf_counter() - t0
        assert report.chunks == len(texts), (report.chunks, len(texts))
        result = {
            "embedder": embedder.name, "articles": len(articles), "chunks": len(texts),
            "embedder_s": round(embed_s, 2), "pipeline_s": round(pipe_s, 2),
            "embedder_chunks_per_s": round(len(texts) / embed_s, 2),
            "pipeline_chunks_per_s": round(report.chunks / pipe_s, 2),
            "articles_per_s": round(report.added / pipe_s, 3),
        }
        result["ratio"] = round(result["pipeline_chunks_per_s"] / result["embedder_chunks_per_s"], 3)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
