"""End to end on the seed article: ingest, idempotency, update, delete, stats."""

from __future__ import annotations

from conftest import SEED

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
