"""Dense ranking (assistant/dense.py, assistant/ivf.py): the exact scan equals a brute-force oracle under
any mask; the clusters cover every row once, deterministically; the approximate path scores only the
probed clusters' allowed members, agrees with the exact ranking on clustered data, and falls back to the
scan when too few members pass the filter."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.dense import Dense, FileRows
from assistant.ivf import PROBES, Ivf

DIM, N = 32, 3_000


@pytest.fixture(autouse=True)
def probe_small_stores(monkeypatch):
    """The clusters pay from ~15k allowed rows of a real store; these 3,000 are probed from ~500 on."""
    monkeypatch.setattr("assistant.dense.IVF_FACTOR", 1)


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(7)
    vectors = unit(rng.standard_normal((N, DIM)))
    queries = unit(rng.standard_normal((5, DIM)))
    return vectors, queries, rng


@pytest.fixture(scope="module")
def topical():
    """Vectors in 40 topics (like news embeddings, unlike uniform noise), queries near some of them."""
    rng = np.random.default_rng(11)
    topics = unit(rng.standard_normal((40, DIM)))
    vectors = unit(topics[rng.integers(0, 40, N)] + 0.08 * rng.standard_normal((N, DIM)))
    queries = unit(topics[:6] + 0.08 * rng.standard_normal((6, DIM)))
    return vectors, queries, rng


def oracle(vectors: np.ndarray, query: np.ndarray, mask: np.ndarray, n: int) -> list[int]:
    scores = vectors @ query
    allowed = [i for i in range(len(vectors)) if mask[i]]
    return sorted(allowed, key=lambda i: (-scores[i], i))[:n]


def test_exact_scan_equals_the_brute_force_oracle_under_any_mask(corpus):
    vectors, queries, rng = corpus
    dense = Dense(vectors)
    everything, few, none = np.ones(N, bool), rng.random(N) < 0.003, np.zeros(N, bool)
    masks = [everything, rng.random(N) < 0.3, few, none, everything]
    got = dense.rank(queries, masks, 20)
    for query, mask, ranked in zip(queries, masks, got, strict=True):
        assert ranked == oracle(vectors, query, mask, 20)
    assert got[3] == [] and len(got[2]) == int(few.sum()) < 20  # fewer allowed than asked: all of them


def test_vectors_stored_in_another_order_scan_the_same_by_runs_or_by_gathering(corpus):
    vectors, queries, rng = corpus
    order = rng.permutation(N)  # storage row i holds table row order[i]
    dense = Dense(vectors[order], order=order)
    in_storage = np.zeros(N, bool)
    in_storage[[*range(100, 400), *range(2_000, 2_050)]] = True  # two runs of stored vectors
    runs = np.zeros(N, bool)
    runs[order[in_storage]] = True  # the same rows as a table mask
    scattered = rng.random(N) < 0.3  # hundreds of runs: gathered
    for mask in (np.ones(N, bool), runs, scattered, rng.random(N) < 0.002):
        got = dense.rank(queries, [mask] * len(queries), 20)
        for query, ranked in zip(queries, got, strict=True):
            assert ranked == oracle(vectors, query, mask, 20)


def test_clusters_hold_every_row_once_and_are_rebuilt_identically(topical, tmp_path):
    vectors, _, _ = topical
    ivf = Ivf.build(vectors)
    assert len(ivf.centroids) == 110 and ivf.size == N  # 2 x sqrt(3000)
    assert sorted(ivf.members.tolist()) == list(range(N))
    for c in range(len(ivf.centroids)):  # each member is nearest its own centroid, ascending in its cluster
        members = ivf.members[ivf.offsets[c] : ivf.offsets[c + 1]]
        assert (np.diff(members) > 0).all()
        if members.size:
            assert (np.argmax(vectors[members] @ ivf.centroids.T, axis=1) == c).all()
    np.testing.assert_allclose(np.linalg.norm(ivf.centroids, axis=1), 1, rtol=1e-5)
    # each member's int8 copy, in cluster order: its dot products within 1 % of the float32 ones
    approx = ivf.codes.astype(np.float32) / ivf.scale
    assert np.abs(approx - vectors[ivf.members]).max() <= 0.5 / ivf.scale.min() + 1e-6
    q = vectors[0]
    assert np.abs(approx @ q - vectors[ivf.members] @ q).max() < 0.01
    # a search takes whole clusters, best first, until it holds enough members
    scores = ivf.centroids @ q
    stored, dots = ivf.search(q, scores, len(ivf.centroids), np.arange(N), np.ones(N, bool), want=500)
    best_first = np.argsort(-scores, kind="stable")
    through = np.cumsum(np.diff(ivf.offsets)[best_first])
    k = int(np.searchsorted(through, max(500, ivf.gathered()))) + 1  # clusters taken
    taken = np.concatenate([ivf.members[ivf.offsets[c] : ivf.offsets[c + 1]] for c in best_first[:k]])
    assert sorted(stored.tolist()) == sorted(taken.tolist()) and N > stored.size >= 500
    np.testing.assert_allclose(dots, vectors[stored] @ q, atol=0.01)
    odd = np.arange(N) % 2 == 1  # a filter: only its rows, still until enough of them
    stored, _ = ivf.search(q, scores, len(ivf.centroids), np.arange(N), odd, want=500)
    assert stored.size >= 500 and (stored % 2 == 1).all()
    again = Ivf.build(vectors)
    assert np.array_equal(again.members, ivf.members) and np.array_equal(again.centroids, ivf.centroids)
    ivf.save(tmp_path)
    loaded = Ivf.load(tmp_path)
    assert loaded is not None and np.array_equal(loaded.members, ivf.members)
    assert np.array_equal(loaded.offsets, ivf.offsets) and np.array_equal(loaded.codes, ivf.codes)
    assert Ivf.load(tmp_path / "none") is None
    with pytest.raises(ValueError, match="out of step"):
        Ivf(ivf.centroids[:-1], ivf.members, ivf.offsets, ivf.codes, ivf.scale)
    with pytest.raises(ValueError, match="out of step"):
        Ivf(ivf.centroids, ivf.members, ivf.offsets, ivf.codes[:-1], ivf.scale)
    with pytest.raises(ValueError, match="IVF of 3000 rows for 2999"):
        Dense(vectors[:-1], ivf=ivf)


@pytest.mark.parametrize("block", [1000, 7])
def test_clusters_built_from_a_file_read_by_pread_equal_those_built_in_memory(topical, tmp_path,
                                                                           monkeypatch, block):
    vectors, _, _ = topical
    monkeypatch.setattr("assistant.ivf.BLOCK", block)
    held = Ivf.build(vectors)
    np.save(tmp_path / "v.npy", vectors)
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    for source in (mapped, mapped[: N // 2]):  # the file read with pread; a view of it through the map
        from_file = Ivf.build(source)
        reference = held if len(source) == N else Ivf.build(np.array(vectors[: N // 2]))
        for name in ("centroids", "members", "offsets", "codes", "scale"):
            assert np.array_equal(getattr(from_file, name), getattr(reference, name)), name


def test_the_clusters_rank_like_the_scan_on_topical_vectors_and_keep_only_allowed_rows(topical):
    vectors, queries, rng = topical
    order = rng.permutation(N)
    stored = vectors[order]
    dense = Dense(stored, exact_max=100, order=order, ivf=Ivf.build(stored))
    for mask in (np.ones(N, bool), rng.random(N) < 0.6):
        assert dense._approximate_pays(int(mask.sum()))
        got = dense.rank(queries, [mask] * len(queries), 20)
        for query, ranked in zip(queries, got, strict=True):
            assert len(ranked) == 20 and all(mask[i] for i in ranked)
            exact = oracle(vectors, query, mask, 20)
            # the int8 copy picks the best 40, their float32 vectors order them: exact at the top
            assert ranked[:5] == exact[:5] and len(set(ranked) & set(exact)) >= 19


def trap(vectors: np.ndarray, query: np.ndarray) -> Ivf:
    """Clusters that put the query's 100 nearest rows in one cluster pointing away from it: a probe never
    sees them, so a result holding them came from the scan."""
    clusters = 100
    near = np.argsort(-(vectors @ query))[:100]
    assigned = np.arange(len(vectors)) % (clusters - 1)
    assigned[near] = clusters - 1
    centroids = unit(np.random.default_rng(3).standard_normal((clusters, vectors.shape[1])))
    centroids[-1] = -query
    members = np.argsort(assigned, kind="stable")
    scale = np.full(vectors.shape[1], 127.0, dtype=np.float32)  # unit vectors: every entry within ±1
    return Ivf(centroids, members, np.r_[0, np.cumsum(np.bincount(assigned, minlength=clusters))],
               np.rint(vectors[members] * scale).astype(np.int8), scale)


def test_only_the_probed_clusters_are_scored_and_too_few_allowed_members_fall_back_to_the_scan(corpus):
    vectors, queries, _ = corpus
    query = queries[0]
    dense = Dense(vectors, exact_max=100, ivf=trap(vectors, query))
    everything = np.ones(N, bool)
    nearest = set(oracle(vectors, query, everything, 100))
    got = dense.rank(queries[:1], [everything], 20)[0]
    assert len(got) == 20 and not set(got) & nearest  # approximate: the trapped cluster was not probed
    # allowed: the trapped rows and the members of the 50 clusters facing away from the query — none of
    # them in the clusters a probe picks (32 for a filter allowing half the rows), so the scan runs
    ivf = dense.ivf
    assert ivf is not None and PROBES < 32 == ivf.probes(0.5) < 49
    far = np.argsort(ivf.centroids[:-1] @ query)[:50]
    only_far = np.zeros(N, bool)
    only_far[list(nearest)] = True
    only_far[np.concatenate([ivf.members[ivf.offsets[c] : ivf.offsets[c + 1]] for c in far])] = True
    assert dense._approximate_pays(int(only_far.sum()))  # the clusters are asked first
    scanned = dense.rank(queries[:1], [only_far], 20)[0]
    assert scanned == oracle(vectors, query, only_far, 20)  # the scan: it finds the trapped rows
    assert set(scanned) & nearest


def test_a_narrow_filter_is_scanned_and_per_query_counts_are_kept(corpus):
    vectors, queries, rng = corpus
    dense = Dense(vectors, exact_max=100, ivf=trap(vectors, queries[0]))
    narrow = np.arange(N) % 20 == 0  # 150 rows: cheaper to scan than a probe (16 x 30 gathered rows)
    narrow[oracle(vectors, queries[0], np.ones(N, bool), 5)] = True
    assert dense.rank(queries[:1], [narrow], 20)[0] == oracle(vectors, queries[0], narrow, 20)
    half = rng.random(N) < 0.5
    assert not dense._approximate_pays(int(narrow.sum())) and dense._approximate_pays(int(half.sum()))
    got = dense.rank(queries[:2], [half, half], [20, 10])
    assert len(got[0]) == 20 and len(got[1]) == 10 and all(half[i] for i in got[0] + got[1])
    assert got[1] == dense.rank(queries[1:2], [half], 10)[0]  # as if asked alone


def test_vectors_loaded_from_a_file_are_reranked_from_it_by_pread(topical, tmp_path):
    vectors, queries, rng = topical
    np.save(tmp_path / "vectors.npy", vectors)
    mapped = np.load(tmp_path / "vectors.npy", mmap_mode="r")
    ivf = Ivf.build(vectors)
    on_disk, in_memory = Dense(mapped, exact_max=100, ivf=ivf), Dense(vectors, exact_max=100, ivf=ivf)
    assert isinstance(on_disk.rows, FileRows)
    rows = rng.permutation(N)[:50]
    assert np.array_equal(on_disk.rows(rows), vectors[rows]) and on_disk.rows(rows[:0]).shape == (0, DIM)
    masks = [rng.random(N) < 0.7] * len(queries)
    assert on_disk.rank(queries, masks, 20) == in_memory.rank(queries, masks, 20)
