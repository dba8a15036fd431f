"""Compare the offline embedders on MultiHop-RAG: dense top-k retrieval quality and speed.

Chunks the corpus as ingest does (256 cl100k tokens, header-prefixed), embeds it with each
candidate, ranks chunks by cosine for each non-null dev query and scores with the benchmark's rule.
Prints one JSON object on its last line. `--limit-queries N` and `--limit-articles N` for a smaller run;
`--quick`: 40 articles, 40 queries.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant import metrics  # noqa: E402
from assistant.embed import OnnxEmbedder  # noqa: E402
from ingest.chunk import chunk_article  # noqa: E402
from ingest.read import read_path  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "multihop-rag"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="minilm-l6-int8,minilm-l3")
    ap.add_argument("--limit-articles", type=int, default=0)
    ap.add_argument("--limit-queries", type=int, default=0)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="40 articles, 40 queries")
    args = ap.parse_args()
    if args.quick:
        args.limit_articles, args.limit_queries = args.limit_articles or 40, args.limit_queries or 40
    articles = read_path(DATA / "corpus.json")[0]
    if args.limit_articles:
        articles = articles[: args.limit_articles]
    chunks, texts = [], []
    for art in articles:
        for ch in chunk_article(art):
            chunks.append(ch.text)
            texts.append(f"{art.header()}\n\n{ch.text}")
    queries = [q for q in json.loads((DATA / "queries-dev.json").read_text()) if q["evidence_list"]]
    if args.limit_queries:
        queries = queries[: args.limit_queries]
    results = {"chunks": len(texts), "queries": len(queries)}
    for key in args.models.split(","):
        emb = OnnxEmbedder(key)
        t0 = time.perf_counter()
        vecs = emb.embed(texts)
        chunks_per_s = len(texts) / (time.perf_counter() - t0)
        qv = emb.embed([q["query"] for q in queries])
        scores = {"hits@4": 0.0, "hits@10": 0.0, "mrr@10": 0.0, "map@10": 0.0, "recall@10": 0.0}
        for q, v in zip(queries, qv, strict=True):
            top = np.argsort(-(vecs @ v))[: args.k]
            facts = [e["fact"] for e in q["evidence_list"]]
            flags = metrics.hit_flags(facts, [chunks[i] for i in top])
            scores["hits@4"] += metrics.hits_at(flags, 4)
            scores["hits@10"] += metrics.hits_at(flags, 10)
            scores["mrr@10"] += metrics.mrr_at(flags)
            scores["map@10"] += metrics.map_at(flags, len(facts))
            scores["recall@10"] += metrics.fact_recall(facts, [chunks[i] for i in top])
        row = {m: round(s / len(queries), 4) for m, s in scores.items()}
        row["chunks_per_s"] = round(chunks_per_s, 2)
        results[key] = row
        print(key, row, file=sys.stderr, flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
