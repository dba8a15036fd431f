"""The scale-corpus generator (bench/scale_corpus.py) writes a valid newsqa store of the size asked."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import ROOT

from assistant.indexes import Indexes
from assistant.settings import Settings
from assistant.store import INDEXED, Store, make_client

sys.path.append(str(ROOT / "bench"))
import scale_corpus


def test_generated_store_is_a_valid_store_of_the_target_size(tmp_path):
    data, cache = tmp_path / "store", tmp_path / "cache"
    figures = scale_corpus.generate(data, 150, seed=3, pool_articles=6, cache=cache)
    assert figures["chunks"] == 150 and figures["articles"] > 10
    store = Store(make_client(Settings(data_dir=data, embedder="minilm-l3")), "minilm-l3")
    assert store.chunks.count() == 150
    records = {i: (m, body) for i, m, body in store.all_records(include_body=True)}
    assert len(records) == figures["articles"]
    assert sum(m["n_chunks"] for m, _ in records.values()) == 150
    assert len({m["title"] for m, _ in records.values()}) == len(records)  # titles made unique
    pool = scale_corpus.load_pool(cache, 6)  # from the cache now
    pool_vector = dict(zip(pool.texts, pool.vectors, strict=False))
    real_outlets = {a.source for a in pool.articles}
    got = store.chunks.get(include=["documents", "metadatas", "embeddings"])
    for cid, text, meta, vec in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"],
                                    strict=True):
        record, body = records[meta["article_id"]]
        assert record["status"] == INDEXED and record["content_hash"] == meta["content_hash"]
        assert body[meta["char_start"]:meta["char_end"]] == text
        assert cid == f"{meta['article_id']}:{meta['content_hash'][:10]}:{meta['chunk_index']:04d}"
        assert meta["source"] in real_outlets and meta["published_ts"] is not None
        assert abs(float(np.linalg.norm(vec)) - 1) < 1e-3
        assert float(np.dot(vec, pool_vector[text])) > 0.98  # derived from its source chunk's vector
    indexes = Indexes.open(store, data)
    assert len(indexes.table.ids) == 150 and set(indexes.article_ids) == set(records)
    with pytest.raises(SystemExit, match="already holds a store"):
        scale_corpus.generate(data, 10, seed=3, pool_articles=6, cache=cache)
