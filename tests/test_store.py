"""Store and pipeline on a real local Chroma: updates, deletes, duplicates, stats, metadata, no default EF."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from conftest import cli_env, corpus_record, run_cli, syndicated_copy, write_articles

from assistant.store import DUPLICATE, INDEXED, Store, make_client
from ingest.formats import article_from_record
from ingest.pipeline import ingest

SWIFT_TIME = "Taylor Swift is Time’s Person of the Year"
SWIFT_KELCE = "Taylor Swift reveals secret start to her relationship with Travis Kelce"
APPLE_BLACK_FRIDAY = "The best Apple Black Friday deals on iPads, AirPods, Apple Watches and more"
APPLE_CYBER_MONDAY = ("The best Apple Cyber Monday deals of 2023: Save on AirPods, iPads, "
                      "Apple Watches and more")
ASX = "ASX set to drop as Wall Street’s September slump deepens"


@pytest.fixture
def run(tmp_path, store, small_embedder, settings):
    """Ingest a list of records (written as one JSON file) into the test store; returns the report."""
    counter = iter(range(1000))

    def _run(*records: dict):
        path = write_articles(tmp_path / f"input-{next(counter)}.json", list(records))
        return ingest([str(path)], store, small_embedder, settings)

    return _run


def article_id(record: dict) -> str:
    return article_from_record(record, "x").id


def chunks_of(store: Store, aid: str) -> dict[str, tuple[str, dict]]:
    got = store.chunks.get(where={"article_id": aid}, include=["documents", "metadatas"])
    return {i: (d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)}


def test_update_replaces_every_chunk_of_the_old_version(run, store):
    old = corpus_record(ASX)
    paragraphs = old["body"].split("\n\n")
    assert len(paragraphs) >= 6
    dropped = paragraphs.pop(3)
    new_sentence = "Late on Tuesday the exchange said trading in all listed miners would be paused."
    paragraphs.insert(1, new_sentence)
    new = {**old, "body": "\n\n".join(paragraphs[:-2])}  # shorter too: fewer chunks than before
    aid = article_id(old)
    other = corpus_record(SWIFT_TIME)

    first = run(old, other)
    assert (first.added, first.updated) == (2, 0)
    old_chunks = chunks_of(store, aid)
    other_chunks = chunks_of(store, article_id(other))

    report = run(new, other)
    assert (report.added, report.updated, report.unchanged, report.duplicates) == (0, 1, 1, 0)
    new_article = article_from_record(new, "x")
    current = chunks_of(store, aid)
    assert current and not set(current) & set(old_chunks)
    assert all(cid.startswith(f"{aid}:{new_article.content_hash[:10]}:") for cid in current)
    for text, meta in current.values():
        assert new_article.body[meta["char_start"] : meta["char_end"]] == text
        assert meta["content_hash"] == new_article.content_hash
        assert dropped[:60] not in text
    assert any(new_sentence in text for text, _ in current.values())
    assert sorted(m["chunk_index"] for _, m in current.values()) == list(range(len(current)))
    record = store.records([aid])[aid]
    assert record["n_chunks"] == len(current) and record["content_hash"] == new_article.content_hash
    assert store.body(aid) == new_article.body
    assert chunks_of(store, article_id(other)) == other_chunks
    assert store.chunks.count() == len(current) + len(other_chunks) == report.chunks
    assert report.articles == 2


def test_delete_removes_the_article_and_all_its_chunks(run, store):
    a, b = corpus_record(ASX), corpus_record(SWIFT_TIME)
    run(a, b)
    kept = chunks_of(store, article_id(b))
    assert chunks_of(store, article_id(a))
    assert store.delete(article_id(a)) is True
    assert chunks_of(store, article_id(a)) == {}
    assert store.records([article_id(a)]) == {}
    assert chunks_of(store, article_id(b)) == kept
    assert store.stats()["articles"] == 1 and store.chunks.count() == len(kept)
    assert store.delete(article_id(a)) is False
    again = run(a, b)  # a deleted article comes back as new
    assert (again.added, again.unchanged) == (1, 1)


def test_cli_delete(run, store, settings):
    a, b = corpus_record(ASX), corpus_record(SWIFT_TIME)
    run(a, b)
    env = cli_env(settings.data_dir)
    done = run_cli("delete", article_id(a), env=env)
    assert done.returncode == 0, done.stderr
    assert "deleted 1 article(s)" in done.stdout
    assert chunks_of(store, article_id(a)) == {} and store.records([article_id(a)]) == {}

    mixed = run_cli("delete", "no-such-article", article_id(b), env=env)  # the known one still goes
    assert mixed.returncode == 1
    assert "no article with id no-such-article" in mixed.stderr
    assert "deleted 1 article(s)" in mixed.stdout
    assert store.stats() == {"articles": 0, "chunks": 0, "sources": 0, "first_date": None, "last_date": None}


def test_syndicated_copy_is_recorded_as_a_duplicate(run, store, settings):
    original = corpus_record(SWIFT_TIME)
    copy = syndicated_copy(original)
    assert copy["body"] != original["body"] and copy["title"] != original["title"]
    first = run(original)
    assert first.added == 1
    before = store.stats()

    report = run(copy)  # a later run: the original is found through the stored signatures
    assert (report.added, report.duplicates) == (0, 1)
    assert store.stats() == before
    assert chunks_of(store, article_id(copy)) == {}
    record = store.records([article_id(copy)])[article_id(copy)]
    assert record["status"] == DUPLICATE and record["duplicate_of"] == article_id(original)
    assert record["n_chunks"] == 0

    listed = run_cli("articles", "--json", env=cli_env(settings.data_dir))
    assert listed.returncode == 0, listed.stderr
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert rows[article_id(copy)]["duplicate_of"] == article_id(original)
    assert rows[article_id(copy)]["status"] == DUPLICATE
    assert rows[article_id(original)]["status"] == INDEXED
    assert "duplicate_of" not in rows[article_id(original)]

    again = run(copy)
    assert (again.unchanged, again.duplicates, again.added) == (1, 0, 0)


def test_deleting_an_original_lets_its_copy_be_indexed(run, store):
    original, copy = corpus_record(SWIFT_TIME), syndicated_copy(corpus_record(SWIFT_TIME))
    assert run(original, copy).duplicates == 1
    assert store.delete(article_id(original))
    assert store.records([article_id(original), article_id(copy)]) == {}  # copy's record went with it
    assert store.stats()["articles"] == 0 and store.chunk_ids() == []
    again = run(copy)
    assert (again.added, again.duplicates) == (1, 0)
    assert chunks_of(store, article_id(copy))


def test_copy_whose_original_vanished_is_planned_afresh(run, store):
    original, copy = corpus_record(SWIFT_TIME), syndicated_copy(corpus_record(SWIFT_TIME))
    run(original, copy)
    store.articles.delete(ids=[article_id(original)])  # as if removed by another tool
    store.chunks.delete(where={"article_id": article_id(original)})
    again = run(copy)
    assert (again.unchanged, again.updated, again.duplicates) == (0, 1, 0)
    assert store.records([article_id(copy)])[article_id(copy)]["status"] == INDEXED


def test_same_id_twice_in_one_run_is_reported_not_crashed(run, store):
    first = {**corpus_record(SWIFT_TIME), "id": "story-1"}
    second = {**corpus_record(SWIFT_KELCE), "id": "story-1"}
    report = run(first, first, second)
    assert (report.added, report.unchanged, len(report.failed)) == (1, 1, 1)
    assert "already read from" in report.failed[0].error and "different content" in report.failed[0].error
    assert store.body(article_id(first)) == first["body"].strip()


def test_near_identical_articles_in_one_run(run, store):
    original = corpus_record(SWIFT_TIME)
    copy = syndicated_copy(original, outlet="Another Wire")
    report = run(original, copy)
    assert (report.added, report.duplicates) == (1, 1)
    assert report.articles == 1
    assert chunks_of(store, article_id(copy)) == {}
    assert store.records([article_id(copy)])[article_id(copy)]["duplicate_of"] == article_id(original)


@pytest.mark.parametrize(("first", "second"), [(SWIFT_TIME, SWIFT_KELCE),
                                               (APPLE_BLACK_FRIDAY, APPLE_CYBER_MONDAY)])
def test_articles_on_the_same_topic_are_not_duplicates(run, store, first, second):
    # the Apple pair shares two thirds of its word 5-grams: a MinHash candidate, rejected exactly
    one = run(corpus_record(first))
    two = run(corpus_record(second))
    assert (one.added, two.added, two.duplicates) == (1, 1, 0)
    assert store.stats()["articles"] == 2


def test_an_article_rewritten_as_a_copy_is_no_longer_a_duplicate_target(run, store):
    a, c = corpus_record(ASX), corpus_record(SWIFT_TIME)
    run(a, c)
    rewritten = {**a, "body": syndicated_copy(c)["body"]}  # a's id now carries a copy of c
    copy_of_old_a = syndicated_copy(a)  # the story a used to hold, from another outlet
    report = run(rewritten, copy_of_old_a)
    assert (report.duplicates, report.added) == (1, 1)
    assert store.records([article_id(a)])[article_id(a)]["duplicate_of"] == article_id(c)
    record = store.records([article_id(copy_of_old_a)])[article_id(copy_of_old_a)]
    assert record["status"] == INDEXED and record["n_chunks"] > 0
    assert chunks_of(store, article_id(copy_of_old_a))


def test_a_new_version_leaves_no_stale_metadata(run, store, settings):
    # Chroma's upsert merges metadata: keys the new version lacks must be removed explicitly
    original = corpus_record(SWIFT_TIME)
    copy = syndicated_copy(original)
    run(original, copy)
    assert store.records([article_id(copy)])[article_id(copy)]["duplicate_of"] == article_id(original)
    rewritten = {**copy, "body": corpus_record(ASX)["body"], "published_at": None}  # own story, no date
    report = run(rewritten)
    assert (report.updated, report.duplicates) == (1, 0)
    record = store.records([article_id(copy)])[article_id(copy)]
    assert record["status"] == INDEXED and record["n_chunks"] > 0
    assert "duplicate_of" not in record and "published_ts" not in record and record["published_at"] == ""
    listed = run_cli("articles", "--json", env=cli_env(settings.data_dir))
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert "duplicate_of" not in rows[article_id(copy)]
    assert all("published_ts" not in meta for _, meta in chunks_of(store, article_id(copy)).values())


def test_stats_json_has_exact_keys_and_values(run, store, settings):
    base = corpus_record(ASX)
    records = [
        {**base, "url": "https://x.example/1", "source": "Outlet A",
         "published_at": "2023-12-25T23:30:00-05:00"},
        {**corpus_record(SWIFT_KELCE), "source": "Outlet A", "published_at": "2023-12-26T02:00:00+00:00"},
        {**corpus_record(APPLE_BLACK_FRIDAY), "source": "Outlet B",
         "published_at": "2023-12-26T09:00:00+09:00"},
    ]
    dup = {**syndicated_copy(records[0], outlet="Outlet C"), "published_at": "2024-06-01T00:00:00+00:00"}
    report = run(*records, dup)
    assert (report.added, report.duplicates) == (3, 1)
    done = run_cli("stats", "--json", env=cli_env(settings.data_dir))
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert set(stats) == {"articles", "chunks", "sources", "first_date", "last_date"}
    n_chunks = sum(m["n_chunks"] for _, m, _ in store.all_records())
    assert stats == {
        "articles": 3, "chunks": n_chunks, "sources": 2,
        # instants: 2023-12-26 00:00Z is the earliest and 04:30Z the latest, whatever the strings say
        "first_date": "2023-12-26T09:00:00+09:00", "last_date": "2023-12-25T23:30:00-05:00",
    }
    assert n_chunks == len(store.chunk_ids()) == report.chunks


def test_chunk_metadata_and_date_range_filter(run, store, small_embedder):
    records = [corpus_record(t) for t in (ASX, SWIFT_TIME, APPLE_CYBER_MONDAY)]
    run(*records)
    by_id = {article_id(r): article_from_record(r, "x") for r in records}
    got = store.chunks.get(include=["metadatas"])
    assert len(got["ids"]) == store.chunks.count() > 3
    for meta in got["metadatas"]:
        article = by_id[meta["article_id"]]
        assert meta["title"] == article.title and meta["source"] == article.source
        assert meta["published_at"] == article.published_iso
        assert datetime.fromisoformat(meta["published_at"]) == article.published_at
        assert isinstance(meta["published_ts"], int)
        assert meta["published_ts"] == int(article.published_at.timestamp())

    cutoff = int(datetime.fromisoformat("2023-11-01T00:00:00+00:00").timestamp())
    late = {aid for aid, a in by_id.items() if a.published_ts >= cutoff}
    assert 0 < len(late) < len(by_id)
    window = store.chunks.get(where={"published_ts": {"$gte": cutoff}}, include=["metadatas"])
    assert {m["article_id"] for m in window["metadatas"]} == late
    assert len(window["ids"]) == sum(len(chunks_of(store, aid)) for aid in late)
    before = {"$and": [{"published_ts": {"$gte": 0}}, {"published_ts": {"$lt": cutoff}}]}
    early = store.chunks.get(where=before, include=["metadatas"])
    assert {m["article_id"] for m in early["metadatas"]} == set(by_id) - late
    hits = store.chunks.query(query_embeddings=small_embedder.embed(["Taylor Swift Time magazine"]),
                              n_results=5, where={"published_ts": {"$lt": cutoff}}, include=["metadatas"])
    assert hits["ids"][0] and all(m["published_ts"] < cutoff for m in hits["metadatas"][0])


def test_collections_never_fall_back_to_a_default_embedding_function(store, settings):
    for collection in (store.chunks, store.articles):
        with pytest.raises(ValueError, match="embedding function"):
            collection.add(ids=["x"], documents=["some text that nobody embedded"])
        with pytest.raises(ValueError, match="embedding function"):
            collection.upsert(ids=["x"], documents=["some text that nobody embedded"])
        assert collection.count() == 0
    reopened = Store(make_client(settings), "minilm-l3", settings.collection_prefix)
    with pytest.raises(ValueError, match="embedding function"):
        reopened.chunks.add(ids=["y"], documents=["still no embedding function"])
    assert reopened.chunks.count() == 0
