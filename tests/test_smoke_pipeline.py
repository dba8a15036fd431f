"""End to end on the seed article: ingest, idempotency, update, delete, stats."""

from __future__ import annotations

import pytest
from conftest import SEED, shortest_records, write_articles

from ingest.models import IngestReport
from ingest.pipeline import ingest


def test_seed_ingest_is_idempotent(settings, store, small_embedder):
    first = ingest([str(SEED)], store, small_embedder, settings)
    assert (first.added, first.unchanged, first.failed) == (1, 0, [])
    assert first.articles == 1 and first.chunks >= 1
    ids_before = store.chunk_ids()
    second = ingest([str(SEED)], store, small_embedder, settings)
    assert isinstance(second, IngestReport)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 1)
    assert store.chunk_ids() == ids_before


def test_windows_pass_through_plan_embed_commit_in_order_and_a_failed_commit_stops_the_rest(
        settings, store, small_embedder, tmp_path):
    records = shortest_records(8)
    path = write_articles(tmp_path / "eight.json", records)
    small = settings.model_copy(update={"ingest_window": 1})  # one article per window: 8 windows
    commits: list[list[str]] = []
    real = store.commit_batch

    def failing_third(items):
        commits.append([p.article.title for p in items])
        if len(commits) == 3:
            raise RuntimeError("disk full")
        real(items)

    store.commit_batch = failing_third
    with pytest.raises(RuntimeError, match="disk full"):
        ingest([str(path)], store, small_embedder, small)
    assert commits == [[r["title"]] for r in records[:3]]  # in order; nothing after the failure
    stored = {m["title"] for _, m, _ in store.all_records()}
    assert stored == {r["title"] for r in records[:2]}
    store.commit_batch = real
    report = ingest([str(path)], store, small_embedder, small)  # a rerun completes the rest, in order
    assert (report.added, report.unchanged, report.failed) == (6, 2, [])
    assert {m["title"] for _, m, _ in store.all_records()} == {r["title"] for r in records}
