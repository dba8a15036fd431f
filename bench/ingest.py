"""Ingest throughput on MultiHop-RAG: the embedder alone vs the whole pipeline, in one run.

1. Embedder alone: the corpus's chunks (header-prefixed, exactly what ingest embeds) embedded in
   windows of the pipeline's size — nothing else timed.
2. Pipeline: `ingest` of the same articles from the JSON file into a fresh Chroma store in a temp
   dir — reading, hashing, duplicate detection, chunking, embedding and committing all timed.
The two alternate `--repeats` times (the load on this machine drifts); the ratio is the median of the
per-round ratios. Prints one JSON object on its last line:
{"embedder_chunks_per_s", "pipeline_chunks_per_s", "articles_per_s", "ratio", "ratios", ...}.
`--quick`: 15 articles, one round.
"""

from __future__ import annotations

import argparse
import json
import statistics
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
    ap.add_argument("--repeats", type=int, default=3, help="rounds of embedder alone, then pipeline")
    ap.add_argument("--quick", action="store_true", help="15 articles, one round")
    args = ap.parse_args()
    if args.quick:
        args.limit, args.repeats = args.limit or 15, 1
    with tempfile.TemporaryDirectory() as tmp:
        overrides: dict = {"data_dir": Path(tmp) / "data"}
        if args.embedder:
            overrides["embedder"] = args.embedder
        settings = Settings(**overrides)
        corpus = json.loads(CORPUS.read_text())[: args.limit or None]
        source = Path(tmp) / "corpus.json"
        source.write_text(json.dumps(corpus))
        articles, _ = read_path(source)
        texts = [t for a in articles for t in embed_texts(a, chunk_article(a, settings.chunk_tokens,
                                                                              settings.chunk_overlap))]
        embedder = make_embedder(settings)
        embedder.embed(texts[: settings.ingest_window])  # warm up on a whole window (8 texts left it cold)
        rounds = []
        for n in range(args.repeats):
            embed_s = _embed_alone(embedder, texts, settings.ingest_window)
            settings = settings.model_copy(update={"data_dir": Path(tmp) / f"data-{n}"})
            store = Store(make_client(settings), embedder.name, settings.collection_prefix)
            t0 = time.perf_counter()
            report = ingest([str(source)], store, embedder, settings)
            pipe_s = time.perf_counter() - t0
            assert report.chunks == len(texts), (report.chunks, len(texts))
            rounds.append((embed_s, pipe_s, report.added))
            print(f"round {n + 1}: embedder {embed_s:.2f} s, pipeline {pipe_s:.2f} s", file=sys.stderr)
        embed_s = statistics.median(r[0] for r in rounds)
        pipe_s = statistics.median(r[1] for r in rounds)
        ratios = [round(e / p, 3) for e, p, _ in rounds]
        result = {
            "embedder": embedder.name, "articles": len(articles), "chunks": len(texts),
            "embedder_s": round(embed_s, 2), "pipeline_s": round(pipe_s, 2),
            "embedder_chunks_per_s": round(len(texts) / embed_s, 2),
            "pipeline_chunks_per_s": round(len(texts) / pipe_s, 2),
            "articles_per_s": round(rounds[0][2] / pipe_s, 3),
            "ratio": statistics.median(ratios), "ratios": ratios,
        }
        print(json.dumps(result))


def _embed_alone(embedder, texts: list[str], window: int) -> float:
    t0 = time.perf_counter()
    for start in range(0, len(texts), window):
        embedder.embed(texts[start : start + window])
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
