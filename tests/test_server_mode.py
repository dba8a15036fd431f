"""Server mode: the CLI against a real `chroma run` on loopback stores exactly what local mode stores."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import cli_env, run_cli, shortest_records, syndicated_copy, write_articles

from assistant.store import Store, make_client
from ingest.pipeline import ingest

pytestmark = pytest.mark.server
CHROMA = Path(sys.executable).parent / "chroma"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChromaServer:
    def __init__(self, path: Path, log: Path) -> None:
        self.path, self.log, self.port = path, log, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start `chroma run` and wait for its heartbeat; stop it again if it never answers."""
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1",
                 "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        url = f"http://127.0.0.1:{self.port}/api/v2/heartbeat"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200 and "nanosecond heartbeat" in json.loads(response.read()):
                        return
            except urllib.error.HTTPError as err:  # answering, not ready yet
                err.close()
                time.sleep(0.1)
            except OSError:
                time.sleep(0.1)
        status = f"exited with {self.proc.returncode}" if self.proc.poll() is not None else "did not answer"
        self.stop()
        pytest.fail(f"chroma {status} at {url}:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None


def close_http(store: Store) -> None:
    """Close an HttpClient store. chromadb's `close()` leaves the connection pools of the client and of
    the admin client it made beside it open (their sockets would raise ResourceWarning in some later
    test), so close those first."""
    for client in (store.client, getattr(store.client, "_admin_client", None)):
        session = getattr(getattr(client, "_server", None), "_session", None)
        if session is not None:
            session.close()
    store.client.close()


@pytest.fixture
def chroma_server(tmp_path):
    server = ChromaServer(tmp_path / "server-data", tmp_path / "chroma.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_cli_ingest_into_a_chroma_server(tmp_path, chroma_server, settings, small_embedder):
    records = shortest_records(6, skip=20)
    records.append(syndicated_copy(records[1]))
    inputs = str(write_articles(tmp_path / "articles.json", records))
    env = cli_env(tmp_path / "unused-data-dir", NEWSQA_CHROMA_HOST="127.0.0.1",
                  NEWSQA_CHROMA_PORT=str(chroma_server.port))

    done = run_cli("ingest", inputs, "--json", env=env)
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)
    assert (first["added"], first["duplicates"], first["unchanged"], first["failed"]) == (6, 1, 0, [])
    assert first["articles"] == 6 and first["chunks"] > 6
    assert not (tmp_path / "unused-data-dir" / "chroma").exists(), "server mode writes no local store"

    local = Store(make_client(settings), small_embedder.name, settings.collection_prefix)
    local_report = ingest([inputs], local, small_embedder, settings)
    remote_settings = settings.model_copy(update={"chroma_host": "127.0.0.1",
                                                  "chroma_port": chroma_server.port})
    remote = Store(make_client(remote_settings), small_embedder.name, settings.collection_prefix)
    assert remote.chunk_ids() == local.chunk_ids()
    assert len(remote.chunk_ids()) == first["chunks"] == local_report.chunks

    def versions(store: Store) -> dict:  # every metadata key but the time of ingest
        return {i: {k: v for k, v in m.items() if k != "ingested_at"} for i, m, _ in store.all_records()}

    assert versions(remote) == versions(local)
    assert remote.stats() == local.stats()

    stats = run_cli("stats", "--json", env=env)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout) == local.stats()

    # the server keeps what it stored across a restart; a rerun changes nothing
    close_http(remote)
    chroma_server.stop()
    chroma_server.start()
    again = run_cli("ingest", inputs, "--json", env=env)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert (second["added"], second["updated"], second["duplicates"], second["unchanged"]) == (0, 0, 0, 7)
    assert (second["articles"], second["chunks"]) == (first["articles"], first["chunks"])
    remote = Store(make_client(remote_settings), small_embedder.name, settings.collection_prefix)
    assert remote.chunk_ids() == local.chunk_ids()

    # a new version over HTTP clears the metadata keys it no longer has (upsert merges metadata)
    copy_id = next(i for i, m, _ in remote.all_records() if m["status"] == "duplicate")
    rewritten = {**records[-1], "body": shortest_records(1, skip=40)[0]["body"], "published_at": None}
    path = write_articles(tmp_path / "rewritten.json", [rewritten])
    report = ingest([str(path)], remote, small_embedder, remote_settings)
    assert (report.updated, report.duplicates) == (1, 0)
    record = remote.records([copy_id])[copy_id]
    assert record["status"] == "indexed" and "duplicate_of" not in record and "published_ts" not in record
    close_http(remote)
