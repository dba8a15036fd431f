"""Dense ranking (assistant/dense.py): the exact scan equals a brute-force oracle under any mask, and the
approximate path (a real Chroma collection, asked unfiltered) keeps only allowed rows, agrees with the
exact ranking on its first places, and falls back to the scan when the filters cut away too much."""

from __future__ import annotations

import chromadb
import numpy as np
import pytest

from assistant.dense import Dense

DIM, N = 32, 3_000


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = np.random.default_rng(7)
    vectors = unit(rng.standard_normal((N, DIM)))
    ids = [f"c{i:05d}" for i in range(N)]
    client = chromadb.PersistentClient(path=str(tmp_path_factory.mktemp("chroma")))
    collection = client.get_or_create_collection("dense-test", embedding_function=None,
                                                 configuration={"hnsw": {"space": "cosine"}})
    for start in range(0, N, 1000):
        collection.add(ids=ids[start : start + 1000], embeddings=vectors[start : start + 1000])
    queries = unit(rng.standard_normal((5, DIM)))
    return vectors, {cid: i for i, cid in enumerate(ids)}, collection, queries, rng


def oracle(vectors: np.ndarray, query: np.ndarray, mask: np.ndarray, n: int) -> list[int]:
    scores = vectors @ query
    allowed = [i for i in range(len(vectors)) if mask[i]]
    return sorted(allowed, key=lambda i: (-scores[i], i))[:n]


def test_exact_scan_equals_the_brute_force_oracle_under_any_mask(corpus):
    vectors, position, _, queries, rng = corpus
    dense = Dense(vectors, position)
    everything, few, none = np.ones(N, bool), rng.random(N) < 0.003, np.zeros(N, bool)
    masks = [everything, rng.random(N) < 0.3, few, none, everything]
    got = dense.rank(queries, masks, 20)
    for query, mask, ranked in zip(queries, masks, got, strict=True):
        assert ranked == oracle(vectors, query, mask, 20)
    assert got[3] == [] and len(got[2]) == int(few.sum()) < 20  # fewer allowed than asked: all of them


def test_vectors_stored_in_another_order_scan_the_same_by_runs_or_by_gathering(corpus):
    vectors, position, _, queries, rng = corpus
    order = rng.permutation(N)  # storage row i holds table row order[i]
    dense = Dense(vectors[order], position, order=order)
    in_storage = np.zeros(N, bool)
    in_storage[[*range(100, 400), *range(2_000, 2_050)]] = True  # two runs of stored vectors
    runs = np.zeros(N, bool)
    runs[order[in_storage]] = True  # the same rows as a table mask
    scattered = rng.random(N) < 0.3  # hundreds of runs: gathered
    for mask in (np.ones(N, bool), runs, scattered, rng.random(N) < 0.002):
        got = dense.rank(queries, [mask] * len(queries), 20)
        for query, ranked in zip(queries, got, strict=True):
            assert ranked == oracle(vectors, query, mask, 20)


def test_approximate_path_keeps_allowed_rows_and_matches_the_scan_at_the_top(corpus):
    vectors, position, collection, queries, rng = corpus
    dense = Dense(vectors, position, exact_max=100, hnsw_cost=(0, 0))  # every mask below: Chroma is asked
    wide = rng.random(N) < 0.6
    got = dense.rank(queries, [wide] * len(queries), 20, collection)
    for query, ranked in zip(queries, got, strict=True):
        assert len(ranked) == 20 and all(wide[i] for i in ranked)
        exact = oracle(vectors, query, wide, 20)
        assert ranked[:5] == exact[:5]  # HNSW is approximate, but not at its first places here
        assert len(set(ranked) & set(exact)) >= 18


def test_a_mask_too_narrow_for_chroma_is_scanned_without_asking_it(corpus):
    vectors, position, _, queries, _ = corpus
    narrow = np.arange(N) % 20 == 0  # 150 rows: 1.5 x 20 x 3000 / 150 = 600 neighbours > MAX_FETCH
    dense = Dense(vectors, position, exact_max=100, hnsw_cost=(0, 0))
    got = dense.rank(queries[:1], [narrow], 20, collection=Unusable())
    assert got[0] == oracle(vectors, queries[0], narrow, 20)


def test_chroma_is_asked_only_when_that_costs_less_than_the_scan(corpus):
    vectors, position, collection, queries, _ = corpus
    # asking costs 1,000 rows of scan + 10 per neighbour; a mask of m rows needs 1.5 x n x 3000 / m
    dense = Dense(vectors, position, exact_max=100, hnsw_cost=(1_000, 10))
    half = np.arange(N) % 2 == 0  # 1,500 rows: 20 -> 60 neighbours (1,600 > 1,500: scan); 10 -> 30 (1,300)
    with pytest.raises(AssertionError, match="must not be asked"):
        dense.rank(queries[:1], [half], 10, collection=Unusable())
    scanned = dense.rank(queries[:1], [half], 20, collection=Unusable())[0]
    assert scanned == oracle(vectors, queries[0], half, 20)
    # per-query counts: the longer list is scanned, the shorter asked of Chroma, each its own length
    got = dense.rank(queries[:2], [half, half], [20, 10], collection)
    assert got[0] == oracle(vectors, queries[0], half, 20)
    assert len(got[1]) == 10 and all(half[i] for i in got[1])


class Unusable:
    def query(self, **_: object) -> None:
        raise AssertionError("Chroma must not be asked")


def test_approximate_path_falls_back_to_the_scan_when_the_filter_cuts_away_too_much(corpus):
    vectors, position, collection, queries, _ = corpus
    dense = Dense(vectors, position, exact_max=100, hnsw_cost=(0, 0))
    # 200 allowed rows (> exact_max; Chroma is asked for 1.5 x 20 x 3000 / 200 = 450 neighbours), chosen
    # as those LEAST similar to the query: the neighbours hold none of them, only the scan finds them
    scores = vectors @ queries[0]
    far = np.zeros(N, bool)
    far[np.argsort(scores)[:200]] = True
    got = dense.rank(queries[:1], [far], 20, collection)[0]
    assert got == oracle(vectors, queries[0], far, 20)
