"""Scale corpus: a synthetic newsqa store of N chunks recombined from the real MultiHop-RAG articles.

Text. The real articles (`../shared/data/multihop-rag/corpus.json`, or the first `--pool-articles` of
them) are chunked as ingest does (256/32 cl100k tokens): that is the *pool* of real chunks. Synthetic
article j takes a real article as its template — its outlet, author and category, its title with
" (scale j)" appended (unique), its date shifted by a seeded -10…+10 days (so outlet and month filters such
as "according to TechCrunch" or "in October 2023" select about the share of the store they select in
the real corpus), and its number of chunks — and a body made of real chunks: about half of the
template's own chunks (in order), the rest drawn at random from the whole pool, joined by blank lines.
BM25 therefore sees real news text and vocabulary (each pool chunk recurs about N / pool times).

Chunks. Each pool chunk becomes one synthetic chunk whose span slices the synthetic body exactly
(`body[char_start:char_end] == text`); ids are newsqa's (`{article}:{hash[:10]}:{n:04d}`). They are not
re-chunked (a chunk is the real chunk, 256 tokens at most), which keeps 1M chunks cheap to generate.

Vectors. The ONNX model is not run over N chunks: each pool chunk is embedded once with the fast
embedder (minilm-l3, header + text as ingest embeds it), cached in the cache dir keyed by a hash of
the corpus and the pool settings, and each synthetic chunk gets its source chunk's vector plus seeded
Gaussian noise of norm ~0.1, renormalised (cosine ~0.995 to its source, so repeated texts are
distinct points in the HNSW graph but rank like their text). The article's MinHash is the element-wise
minimum of its chunks' signatures (the MinHash of the union of their 5-gram sets, boundary 5-grams
aside) instead of a 3 ms-per-article recomputation.

Writing. Articles go through `Store.commit_batch` with prepared `Pending` objects (vectors given), so
the collections (`newsqa-chunks-minilm-l3`, `newsqa-articles-minilm-l3`) are exactly what ingest
writes, under `DIR/chroma` — open it with `NEWSQA_DATA_DIR=DIR NEWSQA_EMBEDDER=minilm-l3`.

    .venv/bin/python bench/scale_corpus.py --chunks 100000 --out DIR [--seed 0] [--pool-articles N]

Progress on stderr; one JSON object (counts, seconds, chunks/s, peak RSS) on the last stdout line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.settings import Settings  # noqa: E402
from assistant.store import Pending, Store, make_client  # noqa: E402
from ingest import dedup  # noqa: E402
from ingest.chunk import chunk_article, chunk_id  # noqa: E402
from ingest.models import Article, Chunk, stable_id  # noqa: E402
from ingest.pipeline import embed_texts  # noqa: E402
from ingest.read import read_path  # noqa: E402

CORPUS = ROOT.parent / "shared" / "data" / "multihop-rag" / "corpus.json"
EMBEDDER = "minilm-l3"
NOISE = 0.1  # norm of the noise added to a pool vector
COMMIT_CHUNKS = 2000  # chunks per Store.commit_batch call


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Pool:
    """The real articles, their chunks, and per chunk its vector and MinHash signature."""

    articles: list[Article]
    texts: list[str]
    tokens: np.ndarray  # cl100k tokens of each chunk
    owner: np.ndarray  # index of each chunk's article
    vectors: np.ndarray  # (chunks, 384) unit vectors
    sigs: np.ndarray  # (chunks, 64) MinHash of each chunk's 5-grams

    def chunks_of(self, a: int) -> np.ndarray:
        return np.flatnonzero(self.owner == a)


def load_pool(cache: Path, pool_articles: int = 0) -> Pool:
    """The pool, from the cache when its key matches, else chunked, embedded and cached."""
    articles = read_path(CORPUS)[0]
    if pool_articles:
        articles = articles[:pool_articles]
    salt = f"{len(articles)}:{EMBEDDER}:256:32:v1".encode()
    key = hashlib.sha256(CORPUS.read_bytes() + salt).hexdigest()[:16]
    folder = cache / f"pool-{key}"
    if (folder / "vectors.npy").is_file():
        meta = json.loads((folder / "chunks.json").read_text())
        return Pool(articles, meta["texts"], np.array(meta["tokens"]), np.array(meta["owner"]),
                    np.load(folder / "vectors.npy"), np.load(folder / "sigs.npy"))
    t0 = time.perf_counter()
    texts, tokens, owner, embed_in = [], [], [], []
    for a, article in enumerate(articles):
        chunks = chunk_article(article)
        texts += [c.text for c in chunks]
        tokens += [c.tokens for c in chunks]
        owner += [a] * len(chunks)
        embed_in += embed_texts(article, chunks)
    log(f"pool: {len(texts)} chunks of {len(articles)} articles chunked in {time.perf_counter() - t0:.1f}s")
    from assistant.embed import OnnxEmbedder

    t1 = time.perf_counter()
    vectors = OnnxEmbedder(EMBEDDER).embed(embed_in)
    log(f"pool: embedded with {EMBEDDER} in {time.perf_counter() - t1:.1f}s")
    sigs = np.stack([dedup.signature(dedup.shingles(t)) for t in texts])
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "sigs.npy", sigs)
    (folder / "chunks.json").write_text(json.dumps({"texts": texts, "tokens": tokens, "owner": owner}))
    np.save(folder / "vectors.npy", vectors)  # written last: marks the pool complete
    return Pool(articles, texts, np.array(tokens), np.array(owner), vectors, sigs)


class Synth:
    """Makes synthetic articles (Pending, vectors included) from the pool, reproducibly from a seed."""

    def __init__(self, pool: Pool, seed: int) -> None:
        self.pool, self.rng = pool, np.random.default_rng(seed)
        self.seed = seed
        self.by_article = [pool.chunks_of(a) for a in range(len(pool.articles))]
        self.usable = [a for a, rows in enumerate(self.by_article) if rows.size]

    def article(self, j: int, max_chunks: int) -> Pending:
        rng, pool = self.rng, self.pool
        a = self.usable[int(rng.integers(len(self.usable)))]
        t, own = pool.articles[a], self.by_article[a]
        n = max(1, min(max_chunks, own.size))
        rows = [int(own[i]) if i < own.size and rng.random() < 0.5 else int(rng.integers(len(pool.texts)))
                for i in range(n)]
        body_parts, spans, pos = [], [], 0
        for r in rows:
            text = pool.texts[r]
            spans.append((pos, pos + len(text)))
            body_parts.append(text)
            pos += len(text) + 2
        shift = timedelta(days=int(rng.integers(-10, 11)))
        article = Article(
            id=stable_id("scale", str(self.seed), str(j)), title=f"{t.title} (scale {j})",
            body="\n\n".join(body_parts), published_at=t.published_at + shift if t.published_at else None,
            source=t.source, author=t.author, url=f"{t.url}#scale-{self.seed}-{j}", category=t.category,
            origin=f"scale-corpus seed {self.seed} #{j}")
        chunks = [Chunk(id=chunk_id(article.id, article.content_hash, n), article_id=article.id, index=n,
                        text=pool.texts[r], char_start=a, char_end=b, tokens=int(pool.tokens[r]))
                  for n, (r, (a, b)) in enumerate(zip(rows, spans, strict=True))]
        noise = rng.standard_normal((n, pool.vectors.shape[1])).astype(np.float32)
        noise *= NOISE / np.sqrt(pool.vectors.shape[1])
        vecs = pool.vectors[rows] + noise
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        sig = pool.sigs[rows].min(axis=0).astype(np.uint32)
        return Pending(article, dedup.to_hex(sig), chunks, vecs.astype(np.float32))


def generate(out: Path, target: int, seed: int = 0, pool_articles: int = 0,
             cache: Path | None = None) -> dict:
    """Write a store of exactly `target` chunks under `out` (must not hold one); return the figures."""
    t0 = time.perf_counter()
    pool = load_pool(cache or out.parent, pool_articles)
    t_pool = time.perf_counter() - t0
    settings = Settings(data_dir=out, embedder=EMBEDDER)
    store = Store(make_client(settings), EMBEDDER, settings.collection_prefix)
    if store.chunks.count():
        raise SystemExit(f"{out} already holds a store ({store.chunks.count()} chunks): give an empty folder")
    synth = Synth(pool, seed)
    done = articles = 0
    batch: list[Pending] = []
    t1 = time.perf_counter()
    t_make = t_commit = 0.0
    next_log = 0
    while done < target:
        ta = time.perf_counter()
        p = synth.article(articles, target - done)
        t_make += time.perf_counter() - ta
        batch.append(p)
        done += len(p.chunks)
        articles += 1
        if sum(len(b.chunks) for b in batch) >= COMMIT_CHUNKS or done >= target:
            tc = time.perf_counter()
            store.commit_batch(batch)
            t_commit += time.perf_counter() - tc
            batch = []
            if done >= next_log or done >= target:
                next_log += max(COMMIT_CHUNKS, target // 20)
                rate = done / (time.perf_counter() - t1)
                log(f"  {done:,}/{target:,} chunks, {articles:,} articles, {rate:,.0f} chunks/s")
    write_s = time.perf_counter() - t1
    return {"chunks": done, "articles": articles, "pool_chunks": len(pool.texts),
            "pool_articles": len(pool.articles), "pool_s": round(t_pool, 2), "write_s": round(write_s, 2),
            "make_s": round(t_make, 2), "commit_s": round(t_commit, 2),
            "chunks_per_s": round(done / write_s, 1), "peak_rss_mb": round(peak_rss_mb(), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, required=True, help="target number of chunks")
    ap.add_argument("--out", type=Path, required=True, help="data dir of the new store (empty or absent)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool-articles", type=int, default=0, help="real articles in the pool (0 = all 609)")
    ap.add_argument("--cache", type=Path, default=None, help="pool embeddings cache (default: OUT/..)")
    args = ap.parse_args()
    if args.chunks < 1:
        ap.error("--chunks must be at least 1")
    print(json.dumps(generate(args.out, args.chunks, args.seed, args.pool_articles, args.cache)))


if __name__ == "__main__":
    main()
