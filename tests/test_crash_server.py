"""Crash safety of `newsqa serve` during POST /ingest: a server killed with SIGKILL in the middle of an
upload's commits shows nothing half-written after a restart, and the re-upload ends like a clean run.

The server is a subprocess (`python -m assistant.cli serve` under the crashkit hook, NEWSQA_INGEST_WINDOW=3)
that kills itself on entering its 3rd `Store._write_records` — right after the chunks of the upload's
second window are written and before their article records are, the worst moment of a commit. After a
restart: /articles lists only committed articles, each with all its chunks; /ask about the uncommitted
article's title cites only committed articles. After the re-upload the store and its indexes (as
crashkit compares them) equal a clean ingest of the same files, and /ask finds the completed article.
(Kills at random moments of the request, many times over: stress/crash.py.)
"""

from __future__ import annotations

import httpx
from conftest import cli_env, shortest_records, write_articles
from crashkit import Server, half_written, hooked_cli, index_views, open_store, queries_for, snapshot

from assistant.store import INDEXED, Store, make_client
from ingest.pipeline import ingest

TOKEN = "crash-test-token"


def upload(client: httpx.Client, server: Server, files: list) -> httpx.Response:
    parts = [("files", (f.name, f.read_bytes(), "application/json")) for f in files]
    return client.post(f"{server.url}/ingest", files=parts, headers={"Authorization": f"Bearer {TOKEN}"},
                       timeout=300)


def test_server_killed_mid_upload_shows_nothing_half_written_and_reupload_matches_clean(
        tmp_path, settings, small_embedder):
    records = shortest_records(9, skip=20)
    files = [write_articles(tmp_path / f"batch-{n}.json", records[n * 3 : n * 3 + 3]) for n in range(3)]
    clean_store = Store(make_client(settings), small_embedder.name, settings.collection_prefix)
    clean = ingest([str(f) for f in files], clean_store, small_embedder, settings)
    assert (clean.added, clean.failed) == (9, [])
    expected = snapshot(clean_store)
    ids = {m["url"]: i for i, m, _ in clean_store.all_records()}
    queries = queries_for(records)
    expected_ix, _ = index_views(clean_store, settings.data_dir, queries)

    crash_dir, log = tmp_path / "crashed", tmp_path / "server.log"
    env = cli_env(crash_dir, NEWSQA_API_TOKEN=TOKEN, NEWSQA_INGEST_WINDOW="3")
    with httpx.Client() as client:
        server = Server({**env, "CRASH_AT_CALL": "_write_records:3"}, log, hooked_cli())
        server.wait_ready(client)
        try:
            got = upload(client, server, files)
            raise AssertionError(f"the server answered instead of dying: {got.status_code} {got.text[:300]}")
        except httpx.TransportError:
            pass  # the connection died with the server
        server.kill()
        assert server.proc.returncode == -9, log.read_text()[-2000:]

        partial = open_store(crash_dir)
        committed = {i for i, m, _ in partial.all_records() if m["status"] == INDEXED}
        orphans = {cid.split(":")[0] for cid in partial.chunk_ids()} - committed
        assert committed and orphans, (committed, orphans)  # a commit was cut between chunks and records
        assert half_written(partial, crash_dir) == []

        server = Server(env, log)
        try:
            assert server.wait_ready(client)["articles"] == len(committed)
            listed = client.get(f"{server.url}/articles", params={"limit": 100}).json()["items"]
            assert {a["id"] for a in listed} == committed
            for article_id in committed:
                detail = client.get(f"{server.url}/articles/{article_id}").json()
                assert len(detail["chunks"]) == expected["records"][article_id][3], article_id
            orphan = next(r for r in records if ids[r["url"]] in orphans)
            assert client.get(f"{server.url}/articles/{ids[orphan['url']]}").status_code == 404
            answer = client.post(f"{server.url}/ask", json={"question": orphan["title"]})
            assert answer.status_code == 200, answer.text
            cited = {c["article_id"] for c in answer.json()["citations"]}
            assert cited <= committed, f"cited an uncommitted article: {cited - committed}"

            report = upload(client, server, files)
            assert report.status_code == 200, report.text
            done = report.json()
            assert done["failed"] == [] and done["updated"] == 0
            assert done["unchanged"] == len(committed) and done["added"] == 9 - len(committed)
            assert (done["articles"], done["chunks"]) == (clean.articles, clean.chunks)
            answer = client.post(f"{server.url}/ask", json={"question": orphan["title"]})
            assert answer.status_code == 200, answer.text
            assert ids[orphan["url"]] in {c["article_id"] for c in answer.json()["citations"]}
        finally:
            server.kill()

    crashed = open_store(crash_dir)
    assert snapshot(crashed) == expected
    assert index_views(crashed, crash_dir, queries) == (expected_ix, expected_ix)

