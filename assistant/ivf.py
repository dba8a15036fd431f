"""IVF: the approximate dense search of a big store — the chunk vectors grouped by spherical k-means (an
inverted file), a query scored against the centroids and then only against the members of its nearest
clusters.

It replaced Chroma's HNSW at query time. That index lives in the process that queries a local store
and holds its own float32 copy of every vector plus its graph (1M chunks: +2.1 GB of anonymous memory
on the first query, loaded in 7 s, in every worker), while the indexes already keep the vectors
memory-mapped — shared between workers and paged in as needed. The clusters cost 2·√n centroids and
one int32 per chunk; a filter is applied to the clusters' members (probing more clusters the more it
cuts away) instead of by over-fetching neighbours. Measured on 100 dev questions (MiniLM-L3 vectors):
100k chunks, 632 clusters, 16 probed: 98.9 % of the exact top 60 (100 % of the top 10), ~1 ms; 1M
chunks, 2,000 clusters: 98.5 % (98.6 %), ~6 ms. Chroma stays the store of record; these clusters are
rebuilt from its vectors with the rest of the indexes, deterministically (a seeded k-means), so every
worker and the local and server modes rank alike.

The members are scored from their own int8 copy of the vectors, stored cluster by cluster (a quarter of
the float32 size; per-dimension scales, so a dot product is off by ~1e-3): a probe reads a few contiguous
blocks, and only the best few are re-ranked by their float32 vectors (assistant/dense.py). Gathering a
probe's rows from the float32 vectors (stored by outlet and date for the filters' scans) touched rows all
over them, and the kernel maps 64 KB around every touched page: at 1M chunks 200 questions mapped the
whole 1.5 GB file into the process.
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from assistant.chunktable import expand_ranges

MIN_ROWS = 10_000  # below this no clusters are built: a scan of every row costs ≤ ~2 ms
PROBES = 16  # clusters probed for an unfiltered query (more when a filter cuts rows away)
TRAIN_PER_CLUSTER = 40  # k-means is trained on a sample of this many rows per cluster
ITERATIONS = 8
BLOCK = 16_384  # rows assigned per matrix product (1M rows x 2,000 clusters: 128 MB at a time)
FILES = ("ivf-centroids.npy", "ivf-members.npy", "ivf-offsets.npy", "ivf-codes.npy", "ivf-scale.npy")


def cluster_count(rows: int) -> int:
    return max(16, round(2 * math.sqrt(rows)))


def _nearest(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Per row of `vectors`, the centroid with the highest dot product (ties: the lower number)."""
    out = np.empty(len(vectors), dtype=np.int32)
    t = centroids.T
    for start, block in _blocks(vectors):
        out[start : start + len(block)] = np.argmax(block @ t, axis=1)
    return out


def _blocks(vectors: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, rows) of `vectors`, `BLOCK` rows at a time. A memory-mapped matrix is read with pread:
    its pages go through the page cache, never mapped into the process (read through the map, a 1M-row
    build held the whole 1.5 GB file in its RSS)."""
    mapped = vectors if isinstance(vectors, np.memmap) and isinstance(vectors.base, mmap.mmap) else None
    if mapped is None or not mapped.filename or not mapped.flags.c_contiguous:  # (a view's base: its parent)
        for start in range(0, len(vectors), BLOCK):
            yield start, np.asarray(vectors[start : start + BLOCK])
        return
    row, fd = int(mapped.strides[0]), os.open(str(mapped.filename), os.O_RDONLY)
    try:
        for start in range(0, len(mapped), BLOCK):
            n = min(BLOCK, len(mapped) - start)
            data = os.pread(fd, n * row, mapped.offset + start * row)
            yield start, np.frombuffer(data, mapped.dtype).reshape(n, *mapped.shape[1:])
    finally:
        os.close(fd)


def _rows(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The rows `rows` (ascending) of `vectors`, as float32, read in one pass of `_blocks`."""
    out = np.empty((len(rows), vectors.shape[1]), dtype=np.float32)
    for start, block in _blocks(vectors):
        a, b = np.searchsorted(rows, [start, start + len(block)])
        out[a:b] = block[rows[a:b] - start]
    return out


class Ivf:
    """Clusters of the vectors' storage rows: `members[offsets[c]:offsets[c + 1]]` (ascending) are
    cluster c's, `centroids[c]` its unit mean; `codes[i]` is member i's vector times `scale`, rounded to
    int8."""

    def __init__(self, centroids: np.ndarray, members: np.ndarray, offsets: np.ndarray, codes: np.ndarray,
                 scale: np.ndarray) -> None:
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.members, self.offsets = np.asarray(members), np.asarray(offsets)
        self.codes, self.scale = np.asarray(codes), np.asarray(scale, dtype=np.float32)
        if (len(self.offsets) != len(self.centroids) + 1 or self.offsets[-1] != len(self.members)
                or self.codes.shape != (len(self.members), self.centroids.shape[1])
                or self.scale.shape != (self.centroids.shape[1],)):
            raise ValueError(f"IVF out of step: {len(self.centroids)} centroids, {len(self.offsets)} "
                             f"offsets, {len(self.members)} members, codes {self.codes.shape}")

    @property
    def size(self) -> int:
        return len(self.members)

    @classmethod
    def build(cls, vectors: np.ndarray, clusters: int | None = None, seed: int = 0) -> Ivf:
        """Spherical k-means (`ITERATIONS` rounds on a seeded sample, empty clusters re-seeded), then every
        row assigned to its nearest centroid. Uses every core: it runs once per index build."""
        from threadpoolctl import threadpool_limits  # only a build needs it (startup stays lean)

        rng = np.random.default_rng(seed)
        k = min(len(vectors), clusters or cluster_count(len(vectors)))
        sample = np.sort(rng.choice(len(vectors), min(len(vectors), TRAIN_PER_CLUSTER * k), replace=False))
        train = _rows(vectors, sample)
        centroids = train[np.sort(rng.choice(len(train), k, replace=False))].copy()
        with threadpool_limits(os.cpu_count() or 1, user_api="blas"):
            for _ in range(ITERATIONS):
                centroids = _means(train, _nearest(train, centroids), centroids, rng)
            assigned = _nearest(vectors, centroids)
        members = np.argsort(assigned, kind="stable").astype(np.int32)
        offsets = np.r_[0, np.cumsum(np.bincount(assigned, minlength=k))].astype(np.int64)
        scale = _scale(vectors)
        codes = np.empty((len(members), vectors.shape[1]), dtype=np.int8)
        position = np.empty(len(members), dtype=np.int64)  # where each row's code goes (cluster by cluster)
        position[members] = np.arange(len(members))
        for start, block in _blocks(vectors):  # rows read in storage order, codes placed by cluster
            codes[position[start : start + len(block)]] = np.rint(np.asarray(block, dtype=np.float32) * scale)
        return cls(centroids, members, offsets, codes, scale)

    def probes(self, share: float) -> int:
        """Clusters to probe when a filter allows `share` of the rows: as many allowed members as an
        unfiltered query gets (assuming the filter cuts every cluster alike)."""
        return min(len(self.centroids), math.ceil(PROBES / max(share, 1e-9)))

    def gathered(self) -> float:
        """Rows an unfiltered query scores (its probed clusters' members)."""
        return PROBES * self.size / len(self.centroids)

    def search(self, query: np.ndarray, centroid_scores: np.ndarray, probes: int, order: np.ndarray,
               mask: np.ndarray, want: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The members (storage rows) of the `probes` clusters scoring highest (`centroid_scores`: the
        query's dot product with every centroid) whose table rows (`order`: storage row -> table row)
        `mask` allows, and their approximate dot products with `query`. Clusters are taken best first,
        and only until `want` allowed members are in hand (or as many as an unfiltered probe scores)."""
        if probes >= len(self.centroids):
            nearest = np.argsort(-centroid_scores, kind="stable")
        else:
            nearest = np.argpartition(-centroid_scores, probes - 1)[:probes]
            nearest = nearest[np.argsort(-centroid_scores[nearest], kind="stable")]  # best first
        starts, sizes = self.offsets[nearest], self.offsets[nearest + 1] - self.offsets[nearest]
        ends = np.cumsum(sizes)  # where each probed cluster ends among the positions `at`
        at = expand_ranges(starts, starts + sizes)
        stored = self.members[at]
        keep = mask[order[stored]]
        passed = np.cumsum(keep)[ends[sizes > 0] - 1]  # allowed members through each non-empty cluster
        enough = np.flatnonzero(passed >= max(want, int(self.gathered())))
        if enough.size:  # the clusters after the one that brought enough are left out
            cut = int(ends[sizes > 0][enough[0]])
            at, stored, keep = at[:cut], stored[:cut], keep[:cut]
        if not keep.all():  # only the allowed members' codes are read
            at, stored = at[keep], stored[keep]
        codes = np.take(self.codes, at, axis=0)
        return stored, codes.astype(np.float32) @ (np.asarray(query, dtype=np.float32) / self.scale)

    def save(self, folder: Path) -> None:
        """Write the arrays of `FILES` (each to a temporary name, then renamed: a reader sees all or none
        of each)."""
        arrays = (self.centroids, self.members, self.offsets, self.codes, self.scale)
        for name, array in zip(FILES, arrays, strict=True):
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            with tmp.open("wb") as f:
                np.save(f, array)
            tmp.replace(folder / name)

    @classmethod
    def load(cls, folder: Path) -> Ivf | None:
        """The saved clusters, or None when the folder has none."""
        if not all((folder / name).exists() for name in FILES):
            return None
        centroids, members, offsets, codes, scale = (
            np.load(folder / name, mmap_mode="r" if name == "ivf-codes.npy" else None) for name in FILES)
        return cls(centroids, members, offsets, codes, scale)  # the codes paged in as probes touch them


def _means(train: np.ndarray, assigned: np.ndarray, old: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """New unit centroids: each cluster's normalised mean; an empty one takes a random training row."""
    counts = np.bincount(assigned, minlength=len(old))
    order = np.argsort(assigned, kind="stable")
    starts, empty = np.r_[0, np.cumsum(counts)[:-1]], counts == 0
    sums = np.zeros_like(old)
    sums[~empty] = np.add.reduceat(train[order], starts[~empty], axis=0)  # strictly increasing starts
    sums[empty] = train[rng.choice(len(train), int(empty.sum()), replace=False)]
    return (sums / np.linalg.norm(sums, axis=1, keepdims=True)).astype(np.float32)


def _scale(vectors: np.ndarray) -> np.ndarray:
    """Per dimension, the factor that maps its largest magnitude to 127."""
    top = np.zeros(vectors.shape[1], dtype=np.float32)
    for _, block in _blocks(vectors):
        top = np.maximum(top, np.abs(block).max(axis=0))
    return (127.0 / np.where(top > 0, top, 1.0)).astype(np.float32)
