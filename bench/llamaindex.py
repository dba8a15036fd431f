"""Ingest side by side with LlamaIndex: newsqa's pipeline vs LlamaIndex's IngestionPipeline, in one run.

Same corpus (MultiHop-RAG `corpus.json`, first `--limit` articles), same embedder (newsqa's own ONNX
MiniLM, wrapped as a LlamaIndex `BaseEmbedding` that calls `embed(texts)`), same Chroma (one
PersistentClient per side, in temp dirs). Timed, in this order:
  embedder_alone       newsqa's chunks (header-prefixed) embedded in windows of `ingest_window`
  newsqa               `ingest.pipeline.ingest` of the JSON file into a fresh store (read, hash, dedup, chunk,
                       embed, commit)
  li_default           IngestionPipeline([SentenceSplitter(256, 32), embedding], ChromaVectorStore) with the
                       defaults: in-memory cache on, no docstore, embed_batch_size=10, num_workers=None
  li_nocache           the same with disable_cache=True
  li_docstore          the same plus a SimpleDocumentStore (upserts strategy), cache on
  li_batch128          li_nocache with embed_batch_size=128 (newsqa's window): LlamaIndex tuned
  newsqa_rerun         `ingest` again on the unchanged input into the same store (skipped by hash)
  li_docstore_rerun    li_docstore's pipeline run again on the same documents (docstore dedupe)
  li_cache_rerun       li_default's pipeline run again (cache hit: no embedding, nodes rewritten to Chroma)
  embedder_alone_end   the embedder alone again, to show how the load drifted during the run
The LlamaIndex timings include loading the JSON and building the Documents (newsqa's include reading).
Each side's rate is given per chunk, per article and per embedded model token (they chunk differently).
Prints one JSON object on its last stdout line.

LlamaIndex is not a dependency of newsqa: `make bench ARGS="--only llamaindex"` (bench/all.py) runs this
script in `.venv-bench`, made on first use as a venv that also sees the project's env (a .pth file) plus
the pinned bench/requirements-llamaindex.txt, so `make install` never gets it. By hand:
    .venv/bin/python bench/all.py --quick --only llamaindex
    .venv-bench/bin/python bench/llamaindex.py --limit 100       # once .venv-bench exists
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.embed import Embedder, make_embedder  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from assistant.store import Store, make_client  # noqa: E402
from ingest.chunk import chunk_article  # noqa: E402
from ingest.pipeline import embed_texts, ingest  # noqa: E402
from ingest.read import read_path  # noqa: E402

try:
    import chromadb
    from llama_index.core import Document
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from llama_index.vector_stores.chroma import ChromaVectorStore
    from pydantic import PrivateAttr
except ImportError as exc:
    sys.exit(f"bench/llamaindex.py needs LlamaIndex ({exc}); it lives outside newsqa's dependencies: "
             "see this script's docstring for the venv setup (bench/requirements-llamaindex.txt)")

CORPUS = ROOT.parent / "shared" / "data" / "multihop-rag" / "corpus.json"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] load {os.getloadavg()[0]:.2f}  {msg}", file=sys.stderr, flush=True)


class Recording:
    """Our embedder, remembering every text it is asked to embed (token counts are taken afterwards)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name = inner, inner.name
        self.texts: list[str] = []

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts)


class NewsqaEmbedding(BaseEmbedding):
    """LlamaIndex's view of newsqa's embedder: each batch is one `embed(texts)` call."""

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Recording, **kwargs: Any) -> None:
        super().__init__(model_name=embedder.name, **kwargs)
        self._embedder = embedder

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed(texts).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)


def documents(source: Path) -> list[Document]:
    """The records as LlamaIndex Documents: text = body; title, source, published_at, url as metadata."""
    out = []
    for i, rec in enumerate(json.loads(source.read_text())):
        meta = {k: rec.get(k) or "" for k in ("title", "source", "published_at", "url")}
        out.append(Document(text=rec["body"], metadata=meta, id_=rec.get("url") or f"doc-{i}"))
    return out


def model_tokens(embedder: Embedder, texts: list[str]) -> int:
    """Tokens the model actually sees for these texts (after truncation at its limit)."""
    tokenizer = getattr(embedder, "_tokenizer", None)
    if tokenizer is None:
        return 0
    return sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=True))


def timed(name: str, rec: Recording, articles: int, fn: Callable[[], int | None],
          results: dict[str, dict]) -> None:
    """Run fn (which may return a chunk count), recording time, chunks and tokens embedded."""
    rec.texts = []
    log(f"{name} ...")
    t0 = time.perf_counter()
    chunks = fn()
    secs = time.perf_counter() - t0
    embedded = len(rec.texts)
    tokens = model_tokens(rec.inner, rec.texts)
    row = {"s": round(secs, 3), "articles": articles, "chunks": chunks if chunks is not None else embedded,
           "embedded": embedded, "model_tokens": tokens, "articles_per_s": round(articles / secs, 2),
           "chunks_per_s": round((chunks if chunks is not None else embedded) / secs, 2),
           "tokens_per_s": round(tokens / secs, 1)}
    results[name] = row
    log(f"{name}: {row}")


def li_pipeline(client: chromadb.ClientAPI, name: str, emb: NewsqaEmbedding,
                **kw: Any) -> IngestionPipeline:
    collection = client.get_or_create_collection(name)
    return IngestionPipeline(transformations=[SentenceSplitter(chunk_size=256, chunk_overlap=32), emb],
                             vector_store=ChromaVectorStore(chroma_collection=collection), **kw)


def summarize(n: int, embedder: str, results: dict[str, dict], counts: dict[str, int],
              load_start: tuple[float, float, float]) -> dict:
    """The headline ratios (newsqa over each LlamaIndex variant), then every run's figures."""
    ours = results["newsqa"]

    def ratio(run: str, key: str) -> float | None:
        return round(ours[key] / results[run][key], 2) if run in results and results[run][key] else None

    out = {
        "articles": n, "embedder": embedder, "newsqa_chunks": ours["chunks"],
        "li_chunks": results["li_default"]["chunks"], "li_chroma_counts": counts,
        "newsqa_vs_embedder_alone": ratio("embedder_alone", "chunks_per_s"),
        "newsqa_vs_embedder_alone_end": ratio("embedder_alone_end", "chunks_per_s"),
        **{f"newsqa_vs_{run}_{key.split('_')[0]}": ratio(run, key)
           for run in ("li_default", "li_nocache", "li_docstore", "li_batch128")
           for key in ("articles_per_s", "tokens_per_s", "chunks_per_s")},
        **{f"rerun_{run}_s": results[f"{run}_rerun"]["s"] for run in ("newsqa", "li_docstore", "li_cache")},
        "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "runs": results,
    }
    return {k: v for k, v in out.items() if v is not None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=100, help="the first N articles (default 100)")
    ap.add_argument("--quick", action="store_true",
                    help="8 articles, without li_nocache and li_batch128 (< 1 min)")
    args = ap.parse_args()
    limit = 8 if args.quick else args.limit
    if limit < 1:
        sys.exit("--limit must be at least 1")
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate({"data_dir": Path(tmp) / "newsqa", "embedder": "minilm-l6-int8"})
        source = Path(tmp) / "corpus.json"
        source.write_text(json.dumps(json.loads(CORPUS.read_text())[:limit]))
        articles, _ = read_path(source)
        n = len(articles)
        texts = [t for a in articles for t in embed_texts(a, chunk_article(a, settings.chunk_tokens,
                                                                              settings.chunk_overlap))]
        rec = Recording(make_embedder(settings))
        rec.inner.embed(texts[: settings.ingest_window])  # warm up on a full window (8 texts were not enough)
        results: dict[str, dict] = {}

        def alone() -> int:
            for start in range(0, len(texts), settings.ingest_window):
                rec.embed(texts[start : start + settings.ingest_window])
            return len(texts)

        timed("embedder_alone", rec, n, alone, results)
        store = Store(make_client(settings), rec.name, settings.collection_prefix)
        reports = []

        def newsqa() -> None:  # chunks = what it embedded (the store's total is in the report)
            reports.append(ingest([str(source)], store, rec, settings))

        timed("newsqa", rec, n, newsqa, results)
        assert reports[0].added + reports[0].duplicates == n and not reports[0].failed, reports[0]
        client = chromadb.PersistentClient(path=str(Path(tmp) / "llamaindex"))
        pipes = {
            "li_default": li_pipeline(client, "li_default", NewsqaEmbedding(rec)),
            "li_nocache": li_pipeline(client, "li_nocache", NewsqaEmbedding(rec), disable_cache=True),
            "li_docstore": li_pipeline(client, "li_docstore", NewsqaEmbedding(rec),
                                       docstore=SimpleDocumentStore()),
        }
        if not args.quick:
            tuned = NewsqaEmbedding(rec, embed_batch_size=128)
            pipes["li_batch128"] = li_pipeline(client, "li_batch128", tuned, disable_cache=True)
        else:
            del pipes["li_nocache"]
        for name, pipe in pipes.items():
            timed(name, rec, n, lambda p=pipe: len(p.run(documents=documents(source))), results)  # type: ignore[misc]
        timed("newsqa_rerun", rec, n, newsqa, results)
        assert reports[-1].unchanged == n, reports[-1]
        timed("li_docstore_rerun", rec, n, lambda: len(pipes["li_docstore"].run(documents=documents(source))),
              results)
        timed("li_cache_rerun", rec, n, lambda: len(pipes["li_default"].run(documents=documents(source))),
              results)
        timed("embedder_alone_end", rec, n, alone, results)
        counts = {name: client.get_collection(name).count() for name in pipes}
    print(json.dumps(summarize(n, rec.name, results, counts, load_start)))


if __name__ == "__main__":
    main()
