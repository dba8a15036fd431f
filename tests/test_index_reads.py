"""What the index build and the change check read from the store: article records, and chunks by id.

Listing the chunk collection (paging through every id) cost 173 s and 2 GB of Chroma's heap at 1M
chunks; a committed version's chunk ids follow from its record, so neither the build nor the check
lists them, and chunks no committed record names (a commit killed before its record) change nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from conftest import corpus_records, shortest_records, write_articles

from assistant import chunkread
from assistant.chunkread import committed_chunk_ids
from assistant.dense import FileRows
from assistant.indexes import Indexes, fingerprint
from assistant.store import INDEXED, Store
from ingest.pipeline import ingest


class NoListing:
    """A chunk collection that answers reads by id only (a `get` without ids fails the test)."""

    def __init__(self, real: Any) -> None:
        self.real, self.by_id = real, 0

    def get(self, ids: list[str] | None = None, **kw: Any) -> Any:
        assert ids is not None, f"the chunk collection was listed: get({kw})"
        self.by_id += 1
        return self.real.get(ids=ids, **kw)

    def count(self) -> int:
        raise AssertionError("the chunk collection was counted")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_the_build_and_the_check_read_chunks_by_id_only(settings, store, small_embedder, monkeypatch):
    records = shortest_records(6)
    ingest([str(write_articles(settings.data_dir.parent / "a.json", records))], store, small_embedder,
           settings)
    reference = Indexes.build(store, [(i, m) for i, m, _ in store.all_records()], "reference")
    listed = store.chunk_ids()
    listing = NoListing(store.chunks)
    monkeypatch.setattr(store, "chunks", listing)
    built = Indexes.open(store, settings.data_dir)
    assert listing.by_id >= 1 and built.table.ids == reference.table.ids == listed
    assert list(built.table.texts) == list(reference.table.texts)
    assert np.array_equal(built.dense.vectors, reference.dense.vectors)
    store._bump()  # the token moved: the check fingerprints the records (still no listing)
    assert built.is_current(store)


def test_chunks_no_committed_record_names_change_neither_the_fingerprint_nor_the_indexes(
        settings, store, small_embedder):
    first, second = shortest_records(2)
    ingest([str(write_articles(settings.data_dir.parent / "a.json", [first]))], store, small_embedder,
           settings)
    before = Indexes.open(store, settings.data_dir)
    stored = store.chunks.get(ids=[before.table.ids[0]], include=["embeddings", "documents", "metadatas"])
    orphan = {**stored["metadatas"][0], "article_id": "orphan", "content_hash": "0" * 64}
    store.chunks.upsert(ids=["orphan:0000000000:0000"], embeddings=stored["embeddings"],
                        documents=["an orphan chunk about zeppelins"], metadatas=[orphan])
    store._bump()
    assert fingerprint(store) == before.fingerprint  # written by a commit killed before its record
    assert before.is_current(store)
    fresh = Indexes.build(store, [(i, m) for i, m, _ in store.all_records()], "fresh")
    assert fresh.table.ids == before.table.ids and not fresh.lexical.scores("zeppelins").any()
    ingest([str(write_articles(settings.data_dir.parent / "b.json", [second]))], store, small_embedder,
           settings)
    assert fingerprint(store) != before.fingerprint and not before.is_current(store)
    assert len(Indexes.open(store, settings.data_dir).article_ids) == 2


def test_committed_chunk_ids_are_the_ids_ingest_wrote(settings, store, small_embedder):
    records = corpus_records()[:5]
    ingest([str(write_articles(settings.data_dir.parent / "a.json", records))], store, small_embedder,
           settings)
    stored = [(i, m) for i, m, _ in store.all_records()]
    assert all(m["status"] == INDEXED for _, m in stored)
    assert committed_chunk_ids(stored) == store.chunk_ids()
    blanked = [(i, {**m, "content_hash": ""}) if n == 0 else (i, m) for n, (i, m) in enumerate(stored)]
    assert not any(c.startswith(stored[0][0] + ":") for c in committed_chunk_ids(blanked))


def test_bodies_come_in_the_order_asked_with_none_for_absent_ids(settings, store, small_embedder):
    records = shortest_records(3)
    ingest([str(write_articles(settings.data_dir.parent / "a.json", records))], store, small_embedder,
           settings)
    ids = [i for i, _, _ in store.all_records()]
    store.batch = 2  # several pages
    asked = [ids[2], "missing", ids[0], ids[1]]
    got = list(Store.bodies(store, asked))
    assert [i for i, _ in got] == asked and got[1][1] is None
    assert [b for _, b in got if b] == [store.body(i) for i in (ids[2], ids[0], ids[1])]


def test_a_build_is_served_from_the_copy_it_saved(settings, store, small_embedder):
    ingest([str(write_articles(settings.data_dir.parent / "a.json", shortest_records(4)))], store,
           small_embedder, settings)
    built = Indexes.open(store, settings.data_dir)  # nothing saved yet: built, saved, then loaded
    assert isinstance(built.dense.rows, FileRows)  # vectors read from the saved file
    reference = Indexes.build(store, [(i, m) for i, m, _ in store.all_records()], built.fingerprint)
    assert built.table.ids == reference.table.ids and built.generation == store.generation()
    assert np.array_equal(built.dense.vectors, reference.dense.vectors)
    for query in ("police said", shortest_records(4)[1]["title"]):
        assert np.array_equal(built.lexical.scores(query), reference.lexical.scores(query))
        assert np.array_equal(built.sentences.scores(query), reference.sentences.scores(query))


class NoReads:
    """A chunk collection this process must not read at all (its name still answers)."""

    def __init__(self, real: Any) -> None:
        self.name = real.name

    def __getattr__(self, attr: str) -> Any:
        raise AssertionError(f"the chunk collection was used in this process: {attr}")


def test_a_big_local_stores_chunks_are_read_by_a_child_process(settings, store, small_embedder,
                                                                monkeypatch):
    ingest([str(write_articles(settings.data_dir.parent / "a.json", shortest_records(5)))], store,
           small_embedder, settings)
    records = [(i, m) for i, m, _ in store.all_records()]
    here = Indexes.build(store, records, "fp")  # small: read in this process
    monkeypatch.setattr("assistant.chunkread.SEPARATE_MIN", 1)
    monkeypatch.setattr(store, "chunks", NoReads(store.chunks))
    child = Indexes.open(store, settings.data_dir)  # the chunks read by `python -m assistant.chunkread`
    assert child.table.ids == here.table.ids and list(child.table.texts) == list(here.table.texts)
    assert list(child.table.meta) == list(here.table.meta)
    assert np.array_equal(child.dense.vectors, here.dense.vectors)
    assert np.array_equal(child.dense.order, here.dense.order)
    folder = Indexes.folder(settings.data_dir, store)
    assert not list(folder.glob(".*")) and (folder / "meta.json").is_file()  # no request file left


def test_a_failed_child_read_names_itself_and_leaves_no_folder(settings, store, small_embedder,
                                                               monkeypatch):
    ingest([str(write_articles(settings.data_dir.parent / "a.json", shortest_records(2)))], store,
           small_embedder, settings)
    monkeypatch.setattr("assistant.chunkread.SEPARATE_MIN", 1)
    renamed = NoReads(store.chunks)
    renamed.name = "no-such-collection"
    monkeypatch.setattr(store, "chunks", renamed)
    try:
        Indexes.open(store, settings.data_dir)
    except RuntimeError as err:
        assert "child process reading the chunks failed" in str(err) and "no-such-collection" in str(err)
    else:
        raise AssertionError("the build went on without its chunks")
    index_dir = Indexes.folder(settings.data_dir, store).parent
    assert not index_dir.exists() or not list(index_dir.iterdir())  # the half-built folder was removed


def test_a_write_while_the_child_reads_fails_the_build_and_the_next_open_builds(settings, store,
                                                                                small_embedder, monkeypatch):
    ingest([str(write_articles(settings.data_dir.parent / "a.json", shortest_records(3)))], store,
           small_embedder, settings)
    monkeypatch.setattr("assistant.chunkread.SEPARATE_MIN", 1)
    real = chunkread._read_in_child

    def written_meanwhile(*args: Any) -> None:
        real(*args)
        store._bump()  # another thread of this process (an ingest) wrote while the child read

    monkeypatch.setattr(chunkread, "_read_in_child", written_meanwhile)
    with pytest.raises(RuntimeError, match="written while a child process read its chunks"):
        Indexes.open(store, settings.data_dir)
    assert not Indexes.folder(settings.data_dir, store).exists()
    monkeypatch.setattr(chunkread, "_read_in_child", real)
    assert len(Indexes.open(store, settings.data_dir).article_ids) == 3


def test_chunks_missing_from_the_store_are_reported_by_the_child(settings, store, small_embedder,
                                                                 monkeypatch, caplog):
    ingest([str(write_articles(settings.data_dir.parent / "a.json", shortest_records(3)))], store,
           small_embedder, settings)
    gone = store.chunk_ids()[0]
    store.chunks.delete(ids=[gone])  # not something newsqa does: a store damaged by hand
    monkeypatch.setattr("assistant.chunkread.SEPARATE_MIN", 1)
    with caplog.at_level(logging.WARNING, logger="newsqa.chunkread"):
        ix = Indexes.open(store, settings.data_dir)
    assert gone not in ix.table.ids and len(ix.table.ids) == len(store.chunk_ids())
    assert any("chunk reader: 1 of the" in r.getMessage() and "missing" in r.getMessage()
               for r in caplog.records)
