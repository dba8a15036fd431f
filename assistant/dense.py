"""Dense: chunks ranked by cosine similarity to query vectors — exact over what the filters allow,
Chroma's HNSW over the whole store when they allow much.

The indexes keep every chunk's embedding (float32 unit vectors, memory-mapped from the index folder,
stored by outlet then date so that a filter's rows are a few contiguous runs, scanned in place), so a
query is one matrix product over the allowed rows: ~1-2 ms for 5k chunks here.
Chroma's own `where` filtering costs a metadata scan per query (measured at 6,454 chunks: 18 ms with
an outlet filter, 37 ms with a date filter, 1 ms without — and it grows with the store), so Chroma is
only asked unfiltered, when the allowed rows are many (more than `exact_max`), a share of the store big
enough that ≤ MAX_FETCH of its approximate neighbours hold enough of them (oversampled by how much the
filters cut away), and asking costs less than the scan would (`HNSW_COST`); the neighbours are kept where
the mask allows. When too few survive, the exact scan runs after all. One Chroma call serves the query
vectors of a question that ask for the same number of neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import Any, Protocol

import numpy as np

EXACT_MAX = 5_000  # allowed rows up to which the exact scan is used (≈ 1-2 ms on one core)
MAX_FETCH = 500  # most neighbours asked of Chroma for one query vector (k=2,000 took 13-88 ms at 100k)
OVERSAMPLE = 1.5  # neighbours asked per wanted one, times the share of the store the filters cut away
# Chroma's cost in rows of exact scan (100k store, one core: a filtered scan ~0.2 us/row; an HNSW query
# ~1 ms plus ~7 us per neighbour asked, its ids looked up here included): asked only when that is cheaper
HNSW_COST = (5_000, 35)  # (fixed, per neighbour asked)
MAX_RUNS = 256  # contiguous runs of allowed vectors up to which they are scanned in place (else gathered)


class Rows(Protocol):
    """Chunk id -> row in the table (a dict, or assistant.chunktable.Positions)."""

    def get(self, chunk_id: str, default: int | None = None, /) -> int | None: ...


@cache
def _one_blas_thread() -> None:
    """The products here are small (a question's vectors against ≤ ~5k rows) and a server runs many
    at once: OpenBLAS's own threads made one 6,454-row scan 0.5 -> 3-8 ms on this busy 2-core machine.
    (ONNX Runtime has its own thread pool; it is not affected.)"""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


class Dense:
    """Cosine ranking over the chunk embeddings of one index version."""

    def __init__(self, vectors: np.ndarray, position: Rows, exact_max: int = EXACT_MAX,
                 order: np.ndarray | None = None, hnsw_cost: tuple[int, int] = HNSW_COST) -> None:
        """`vectors[i]` is the embedding of table row `order[i]` (default: row i). Stored clustered (the
        indexes keep them by outlet, then date), a filter's rows are a few contiguous runs, scanned in
        place: gathering 20k scattered vectors (30 MB) cost more than the product itself."""
        # a plain ndarray view: indexing a np.memmap goes through its slower subclass machinery
        self.vectors, self.position, self.exact_max = np.asarray(vectors), position, exact_max
        self.order = np.arange(len(self.vectors)) if order is None else np.asarray(order)
        self.hnsw_cost = hnsw_cost
        _one_blas_thread()

    def rank(self, queries: np.ndarray, masks: Sequence[np.ndarray], n: int | Sequence[int],
             collection: Any = None) -> list[list[int]]:
        """For each query vector and its mask: up to `n` allowed chunk rows (one count for all, or one
        per query), most similar first. `collection`: the Chroma collection of these chunks (approximate
        search when the mask allows many rows); without it every query is scanned exactly."""
        counts = [n] * len(masks) if isinstance(n, int) else list(n)
        out: list[list[int] | None] = [None] * len(masks)
        wide: list[tuple[int, int]] = []  # (query number, allowed rows) for Chroma
        exact: dict[int, list[int]] = {}  # the same mask object scanned once for all its queries
        for j, (mask, want) in enumerate(zip(masks, counts, strict=True)):
            allowed = int(mask.sum())
            if allowed == 0 or want <= 0:
                out[j] = []
            elif collection is not None and self._approximate_pays(allowed, _fetch(want, len(mask), allowed)):
                wide.append((j, allowed))
            else:  # few rows, too few of Chroma's neighbours would pass, or the scan is cheaper
                exact.setdefault(id(mask), []).append(j)
        for group in exact.values():
            most = max(counts[j] for j in group)  # a shorter list is the head of a longer one
            for j, ranked in zip(group, self.exact(queries[group], masks[group[0]], most), strict=True):
                out[j] = ranked[: counts[j]]
        if wide:
            self._approximate(queries, masks, counts, collection, wide, out)
        return [r or [] for r in out]

    def exact(self, queries: np.ndarray, mask: np.ndarray, n: int) -> list[list[int]]:
        """For each query vector (rows of `queries`), the `n` allowed rows most similar to it, by a
        scan (ties: lower row first)."""
        where = np.flatnonzero(mask[self.order])  # allowed vectors, in storage order
        if not where.size:
            return [[] for _ in queries]
        q = np.asarray(queries, dtype=np.float32).T
        if where.size == len(self.vectors):
            scores = np.asarray(self.vectors @ q)
        else:
            cuts = np.flatnonzero(np.diff(where) > 1) + 1
            starts, ends = where[np.r_[0, cuts]], where[np.r_[cuts, where.size] - 1] + 1
            if starts.size <= MAX_RUNS:  # a few contiguous runs: products over views, nothing copied
                scores = np.concatenate([self.vectors[a:b] @ q for a, b in zip(starts, ends, strict=True)])
            else:
                scores = np.asarray(np.take(self.vectors, where, axis=0) @ q)
        rows = self.order[where]
        n = min(n, rows.size)
        out = []
        for column in scores.T:
            top = np.argpartition(-column, n - 1)[:n] if n < rows.size else np.arange(rows.size)
            out.append(rows[top[np.lexsort((rows[top], -column[top]))]].tolist())
        return out

    def _approximate_pays(self, allowed: int, fetch: int) -> bool:
        fixed, per = self.hnsw_cost
        return allowed > self.exact_max and fetch <= MAX_FETCH and allowed > fixed + per * fetch

    def _approximate(self, queries: np.ndarray, masks: Sequence[np.ndarray], counts: list[int],
                     collection: Any, wide: list[tuple[int, int]], out: list[list[int] | None]) -> None:
        total = len(self.vectors)
        by_fetch: dict[int, list[tuple[int, int]]] = {}  # one Chroma call per neighbour count
        for j, allowed in wide:
            by_fetch.setdefault(min(total, _fetch(counts[j], total, allowed)), []).append((j, allowed))
        for fetch, group in by_fetch.items():
            got = collection.query(query_embeddings=np.stack([queries[j] for j, _ in group]),
                                   n_results=fetch, include=[])
            for (j, allowed), ids in zip(group, got["ids"], strict=True):
                mask, position, n = masks[j], self.position, counts[j]
                kept = []
                for cid in ids:
                    if (p := position.get(cid)) is not None and mask[p]:
                        kept.append(p)
                        if len(kept) == n:
                            break
                short = len(kept) < min(n, allowed) and len(ids) >= fetch
                out[j] = self.exact(queries[j : j + 1], mask, n)[0] if short else kept


def _fetch(n: int, total: int, allowed: int) -> int:
    """Neighbours to ask of Chroma for `n` that pass a mask allowing `allowed` of `total` rows."""
    return max(n, math.ceil(OVERSAMPLE * n * total / allowed))
