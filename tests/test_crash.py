"""Crash safety of `newsqa ingest`: killed with SIGKILL, then rerun, the store and its derived indexes
end exactly like a clean run's, and what a killed run leaves is never half visible to readers.

The CLI runs with a pty stderr, so it draws its progress bar (one tick per committed article). It is
killed once early (its first window embedded, nothing committed: a crashkit
hook kills it on entering `Store.commit_batch`), then when the bar passes seeded article counts
plus a seeded few ms, then exactly between a window's chunk upsert and its record write (a crashkit
hook kills it on entering `Store._write_records`). The indexes opened on that partial store show no
chunk of an uncommitted article. After the rerun the store (records, chunk ids, texts, metadata,
stats) and the indexes (chunk order, BM25 top hits and scores for fixed queries, quote entries and
their chunks, catalog) equal the clean run's, as loaded from disk and as rebuilt. Then the CLI is
killed right before the swap-in rename of its index save: the next open never uses a torn folder
and gives the clean indexes. Last, an update (and a `newsqa delete`) killed after the old chunks were
deleted and before the record was written: ingesting the stored version again must repair it.
(Random kills over a real corpus, many times over, and of the server: stress/crash.py.)
"""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest
from conftest import ROOT, cli_env, shortest_records, syndicated_copy, write_articles
from crashkit import (
    Run,
    folder_state,
    half_written,
    hooked_cli,
    index_views,
    kill_while_saving,
    open_store,
    queries_for,
    save_steps,
    snapshot,
)

from assistant.indexes import Indexes
from assistant.store import Store, make_client
from ingest.pipeline import ingest


@pytest.fixture
def runs():
    started: list[Run] = []

    def start(inputs: str, env: dict[str, str], argv: list[str] | None = None) -> Run:
        started.append(Run(inputs, env, argv))
        return started[-1]

    yield start
    for r in started:
        r.close()


def test_killed_ingest_completes_exactly_like_a_clean_run(tmp_path, settings, small_embedder, runs):
    records = shortest_records(16)
    records.insert(9, syndicated_copy(records[2]))  # a duplicate among them, committed mid-run
    n = len(records)
    inputs = str(write_articles(tmp_path / "articles.json", records))
    queries = queries_for(records)

    clean_store = Store(make_client(settings), small_embedder.name, settings.collection_prefix)
    clean = ingest([inputs], clean_store, small_embedder, settings)
    assert (clean.added, clean.duplicates, clean.failed) == (n - 1, 1, [])
    expected = snapshot(clean_store)
    expected_ix, rebuilt = index_views(clean_store, settings.data_dir, queries)
    assert rebuilt == expected_ix
    assert expected_ix["quotes"] and all(q[3] for q in expected_ix["quotes"]), "quotes, each in a chunk"
    assert any(hits[0] for key, hits in expected_ix.items() if key.startswith("bm25")), "the probes hit"

    crash_dir = tmp_path / "crashed"
    env = cli_env(crash_dir, NEWSQA_INGEST_WINDOW="3")  # small windows: many commits to land kills between
    rng = random.Random(20240607)
    first = runs(inputs, {**env, "CRASH_AT_CALL": "commit_batch:1"}, hooked_cli())
    assert first.finish(ok=(-9,)) == {}  # killed with a window embedded, before anything is committed
    assert first.ticks == 0 and open_store(crash_dir).chunk_ids() == []
    # the bar redraws at most every 0.1 s, so it may trail the commits by an article or two: leave room
    tick = rng.choice(range(2, n - 6, 3))  # one of 2, 5, 8 articles
    seen = runs(inputs, env).kill_at_tick(tick, extra_s=rng.uniform(0, 0.04))
    assert tick <= seen < n, f"the kill must land mid-commit, not after: {seen}"
    hooked = runs(inputs, {**env, "CRASH_AT_CALL": "_write_records:3"}, hooked_cli())
    assert hooked.finish(ok=(-9,)) == {}  # killed between its 2nd window's chunks and records

    partial = open_store(crash_dir)
    recorded = {i for i, _, _ in partial.all_records()}
    orphans = {cid.split(":")[0] for cid in partial.chunk_ids()} - recorded
    assert orphans, "the last kill left chunks of an article whose record was never written"
    assert half_written(partial, crash_dir) == []
    stale = shutil.copytree(Indexes.folder(crash_dir, partial), tmp_path / "stale-index")

    final_run = runs(inputs, {**env, "CRASH_AT_STEP": "0"}, hooked_cli())  # counts its index save's steps
    final = final_run.finish()
    print(f"killed after {seen} articles, then mid-commit; final run: {final}")
    assert final["failed"] == []
    assert final["unchanged"] >= seen, "articles committed before a kill are not redone"
    assert final["added"] + final["updated"] + final["unchanged"] + final["duplicates"] == n
    assert final["updated"] == 0  # nothing was ever committed in another version
    assert (final["articles"], final["chunks"]) == (clean.articles, clean.chunks)

    crashed = snapshot(open_store(crash_dir))
    assert crashed["chunk_ids"] == expected["chunk_ids"]
    assert crashed["records"] == expected["records"]
    assert crashed["chunks"] == expected["chunks"]
    assert crashed["stats"] == expected["stats"]
    assert index_views(open_store(crash_dir), crash_dir, queries) == (expected_ix, expected_ix)

    # the final run rebuilt the indexes over the stale ones saved above: kill a rerun that does the same
    # right before it renames its new folder in (the live folder is then renamed aside, i.e. absent)
    steps = save_steps(final_run.tail.decode(errors="replace"))
    renames = [i + 1 for i, event in enumerate(steps) if event == "os.rename"]
    assert len(renames) == 2, steps  # the old folder aside, the new one in
    left = kill_while_saving(crash_dir, inputs, env, stale, renames[1])
    print(f"killed before save step {renames[1]} of {len(steps)}: left {left}")
    assert left == "old,tmp"
    assert index_views(open_store(crash_dir), crash_dir, queries) == (expected_ix, expected_ix)
    assert folder_state(crash_dir) == "live", "the next open removed what the killed save left"


def test_killed_update_or_delete_then_the_stored_version_ingested_again_ends_like_a_clean_run(
        tmp_path, settings, small_embedder, runs):
    """v1 stored; an update to v2 killed after v1's chunks were deleted and before v2's record was
    written; then v1 ingested again (the edit reverted): the store must be a clean ingest of v1's. Same
    for `newsqa delete` killed after the chunks went and before the record did, then v1 ingested again."""
    records = shortest_records(4, skip=40)
    v1 = str(write_articles(tmp_path / "v1.json", records))
    edited = [dict(r) for r in records]
    edited[1]["body"] += "\n\nCorrection: an earlier version of this story misstated a figure."
    v2 = str(write_articles(tmp_path / "v2.json", edited))
    queries = queries_for(records)
    clean_store = Store(make_client(settings), small_embedder.name, settings.collection_prefix)
    ingest([v1], clean_store, small_embedder, settings)
    expected, expected_ix = snapshot(clean_store), index_views(clean_store, settings.data_dir, queries)[0]
    crash_dir = tmp_path / "crashed"
    crash_settings = settings.model_copy(update={"data_dir": crash_dir})
    ingest([v1], open_store(crash_dir), small_embedder, crash_settings)
    env = cli_env(crash_dir)

    killed = runs(v2, {**env, "CRASH_AT_CALL": "_write_records:1"}, hooked_cli())
    assert killed.finish(ok=(-9,)) == {}
    partial = open_store(crash_dir)
    article_id = next(i for i, m, _ in partial.all_records() if m["url"] == records[1]["url"])
    v1_chunks = {c for c in expected["chunk_ids"] if c.startswith(article_id + ":")}
    assert v1_chunks and not v1_chunks & set(partial.chunk_ids()), "killed after v1's chunks were deleted"
    assert half_written(partial, crash_dir) == []
    again = ingest([v1], partial, small_embedder, crash_settings)
    assert (again.updated, again.unchanged) == (1, 3), "the half-replaced article is redone"
    assert snapshot(open_store(crash_dir)) == expected
    assert index_views(open_store(crash_dir), crash_dir, queries) == (expected_ix, expected_ix)

    # delete: Store.delete, chunks.delete, then articles.delete (copies) is the 3rd call named `delete`
    deleting = {**env, "CRASH_AT_CALL": "delete:3", "CRASH_IN_MAIN": "1"}
    done = subprocess.run([*hooked_cli(), "delete", article_id], env=deleting, cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == -9, done.stderr[-2000:]
    partial = open_store(crash_dir)
    assert partial.records([article_id]) and not [c for c in partial.chunk_ids() if c.startswith(article_id)]
    again = ingest([v1], partial, small_embedder, crash_settings)
    assert (again.updated, again.unchanged) == (1, 3), "the half-deleted article is redone"
    assert snapshot(open_store(crash_dir)) == expected
