"""Dense: chunks ranked by cosine similarity to query vectors — exact over what the filters allow,
approximate (assistant/ivf.py's clusters) when they allow many rows of a big store.

The indexes keep every chunk's embedding (float32 unit vectors, memory-mapped from the index folder,
stored by outlet then date so that a filter's rows are a few contiguous runs, scanned in place), so a
query is one matrix product over the allowed rows: ~1-2 ms for 5k chunks here. When the allowed rows
are many more than a probe of the clusters scores (`IVF_FACTOR` times: a probe gathers scattered rows),
only the members of the clusters nearest the query are scored, those the filters allow; when fewer of
them pass than are wanted, the exact scan runs after all.
Chroma is not asked: its `where` filtering costs a metadata scan per query (measured at 6,454 chunks:
18 ms with an outlet filter, 37 ms with a date filter, 1 ms without — and it grows with the store), and
its HNSW holds a second copy of the vectors in every process that queries it (see assistant/ivf.py).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Sequence
from functools import cache

import numpy as np

from assistant.ivf import Ivf

EXACT_MAX = 5_000  # allowed rows up to which the exact scan is used (≈ 1-2 ms on one core)
# the clusters are probed when the allowed rows outnumber this many times the rows a probe scores
# (measured, one outlet's contiguous rows vs a probe: break-even at ~15k allowed rows of 100k, ~50k of 1M;
# a probe gathers its rows from all over the vectors and sorts out the filtered ones)
IVF_FACTOR = 6
RERANK = 2  # the clusters' best `RERANK * n` members (by their int8 copy) re-ranked by their float32 vectors
MAX_RUNS = 256  # contiguous runs of allowed vectors up to which they are scanned in place (else gathered)


class FileRows:
    """Rows of a memory-mapped matrix read with pread: through the page cache, never mapped into the
    process — a scattered touch of the map pulls 64 KB around it into the process (see assistant/ivf.py)."""

    def __init__(self, array: np.memmap) -> None:
        self.fd = os.open(str(array.filename), os.O_RDONLY)
        weakref.finalize(self, os.close, self.fd)
        self.offset, self.row_bytes = array.offset, int(array.strides[0])
        self.dtype, self.width = array.dtype, int(array.shape[1])

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        size, at = self.row_bytes, self.offset
        data = b"".join(os.pread(self.fd, size, at + int(r) * size) for r in rows)
        return np.frombuffer(data, dtype=self.dtype).reshape(len(rows), self.width)


@cache
def _one_blas_thread() -> None:
    """The products here are small (a question's vectors against ≤ ~5k rows) and a server runs many
    at once: OpenBLAS's own threads made one 6,454-row scan 0.5 -> 3-8 ms on this busy 2-core machine.
    (ONNX Runtime has its own thread pool; it is not affected.)"""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


class Dense:
    """Cosine ranking over the chunk embeddings of one index version."""

    def __init__(self, vectors: np.ndarray, exact_max: int = EXACT_MAX, order: np.ndarray | None = None,
                 ivf: Ivf | None = None) -> None:
        """`vectors[i]` is the embedding of table row `order[i]` (default: row i). Stored clustered (the
        indexes keep them by outlet, then date), a filter's rows are a few contiguous runs, scanned in
        place: gathering 20k scattered vectors (30 MB) cost more than the product itself. `ivf`: clusters
        of these storage rows, for the approximate search."""
        # a plain ndarray view: indexing a np.memmap goes through its slower subclass machinery
        self.vectors, self.exact_max, self.ivf = np.asarray(vectors), exact_max, ivf
        self.rows: Callable[[np.ndarray], np.ndarray] = lambda stored: np.take(self.vectors, stored, axis=0)
        if isinstance(vectors, np.memmap) and vectors.filename is not None and vectors.ndim == 2:
            self.rows = FileRows(vectors)
        self.order = np.arange(len(self.vectors)) if order is None else np.asarray(order)
        if ivf is not None and ivf.size != len(self.vectors):
            raise ValueError(f"IVF of {ivf.size} rows for {len(self.vectors)} vectors")
        _one_blas_thread()

    def rank(self, queries: np.ndarray, masks: Sequence[np.ndarray],
             n: int | Sequence[int]) -> list[list[int]]:
        """For each query vector and its mask: up to `n` allowed chunk rows (one count for all, or one
        per query), most similar first."""
        counts = [n] * len(masks) if isinstance(n, int) else list(n)
        out: list[list[int] | None] = [None] * len(masks)
        wide: list[tuple[int, int]] = []  # (query number, allowed rows) for the clusters
        exact: dict[int, list[int]] = {}  # the same mask object scanned once for all its queries
        for j, (mask, want) in enumerate(zip(masks, counts, strict=True)):
            allowed = int(mask.sum())
            if allowed == 0 or want <= 0:
                out[j] = []
            elif self._approximate_pays(allowed):
                wide.append((j, allowed))
            else:  # few rows, or a filter so narrow that scanning its rows is cheaper
                exact.setdefault(id(mask), []).append(j)
        if wide:
            self._approximate(queries, masks, counts, wide, out)
        for j, row in enumerate(out):
            if row is None:  # too few of the probed clusters' members passed the mask
                exact.setdefault(id(masks[j]), []).append(j)
        for group in exact.values():
            most = max(counts[j] for j in group)  # a shorter list is the head of a longer one
            for j, ranked in zip(group, self.exact(queries[group], masks[group[0]], most), strict=True):
                out[j] = ranked[: counts[j]]
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
        return [_top(rows, column, n) for column in scores.T]

    def _approximate_pays(self, allowed: int) -> bool:
        ivf = self.ivf
        return (ivf is not None and allowed > self.exact_max and allowed > IVF_FACTOR * ivf.gathered()
                and ivf.probes(allowed / len(self.vectors)) < len(ivf.centroids))

    def _approximate(self, queries: np.ndarray, masks: Sequence[np.ndarray], counts: list[int],
                     wide: list[tuple[int, int]], out: list[list[int] | None]) -> None:
        """The allowed members of each query's nearest clusters, ranked; None where fewer than wanted pass."""
        assert self.ivf is not None
        picked = np.array([j for j, _ in wide])
        centroid_scores = np.asarray(queries[picked], dtype=np.float32) @ self.ivf.centroids.T
        for (j, allowed), scores in zip(wide, centroid_scores, strict=True):
            probes = self.ivf.probes(allowed / len(self.vectors))
            n = counts[j]
            stored, approx = self.ivf.search(queries[j], scores, probes, self.order, masks[j], RERANK * n)
            if stored.size < min(n, allowed):
                continue
            if stored.size > RERANK * n:
                stored = stored[np.argpartition(-approx, RERANK * n - 1)[: RERANK * n]]
            out[j] = _top(self.order[stored], self.rows(stored) @ np.asarray(queries[j], np.float32), n)


def _top(rows: np.ndarray, scores: np.ndarray, n: int) -> list[int]:
    """The `n` rows scoring highest, best first (ties: lower row first)."""
    n = min(n, rows.size)
    top = np.argpartition(-scores, n - 1)[:n] if n < rows.size else np.arange(rows.size)
    return rows[top[np.lexsort((rows[top], -scores[top]))]].tolist()
