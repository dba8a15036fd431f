"""Crash safety: an ingest killed with SIGKILL at several moments, then rerun, ends exactly like a clean run.

The CLI runs in a subprocess whose stderr is a pseudo-terminal, so it draws its progress bar (one
tick per committed article); the test kills it once early (while models load and chunks are embedded)
and then when the bar passes seeded article counts, each plus a seeded few milliseconds, so the kills
land inside the commit loop at different points of an article's commit.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import random
import re
import select
import struct
import subprocess
import termios
import time

import pytest
from conftest import PYTHON, ROOT, cli_env, shortest_records, syndicated_copy, write_articles

from assistant.store import Store, make_client
from ingest.pipeline import ingest

_TICK = re.compile(rb"(\d+)/(\d+)")


def snapshot(store: Store) -> dict:
    """Everything that must match between the clean and the crashed-then-completed store."""
    records = {i: (m["content_hash"], m["status"], m.get("duplicate_of"), m["n_chunks"])
               for i, m, _ in store.all_records()}
    got = store.chunks.get(include=["documents", "metadatas"])
    chunks = {i: (d, m["article_id"], m["content_hash"], m["chunk_index"])
              for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)}
    return {"records": records, "chunk_ids": store.chunk_ids(), "chunks": chunks, "stats": store.stats()}


class Run:
    """`newsqa ingest --json` in a subprocess with a pty for stderr; reads its progress ticks."""

    def __init__(self, inputs: str, env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        self.proc = subprocess.Popen([PYTHON, "-m", "assistant.cli", "ingest", inputs, "--json"], env=env,
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
        os.close(slave)
        self.master, self.ticks, self.started = master, 0, time.monotonic()

    def _read(self, timeout: float) -> bool:
        """Read what the bar drew; False once the process has closed the pty."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the child is gone
            return False
        if not data:
            return False
        if found := _TICK.findall(data):
            self.ticks = max(self.ticks, int(found[-1][0]))
        return True

    def kill_after(self, seconds: float) -> int:
        while time.monotonic() - self.started < seconds and self.proc.poll() is None:
            self._read(0.01)
        return self.kill()

    def kill_at_tick(self, tick: int, extra_s: float, deadline_s: float = 40) -> int:
        while self.ticks < tick and self.proc.poll() is None and time.monotonic() - self.started < deadline_s:
            if not self._read(0.2):
                break
        time.sleep(extra_s)
        return self.kill()

    def kill(self) -> int:
        """SIGKILL the process (if it still runs); the ticks seen, i.e. articles known committed."""
        self.proc.kill()
        self.proc.wait(timeout=30)
        while self._read(0):
            pass
        return self.ticks

    def finish(self) -> dict:
        out, _ = self.proc.communicate(timeout=120)
        while self._read(0):
            pass
        assert self.proc.returncode == 0, out
        return json.loads(out)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if self.proc.stdout:
            self.proc.stdout.close()
        os.close(self.master)


@pytest.fixture
def runs():
    started: list[Run] = []

    def start(inputs: str, env: dict[str, str]) -> Run:
        started.append(Run(inputs, env))
        return started[-1]

    yield start
    for r in started:
        r.close()


def test_killed_ingest_completes_exactly_like_a_clean_run(tmp_path, settings, small_embedder, runs):
    records = shortest_records(16)
    records.insert(9, syndicated_copy(records[2]))  # a duplicate among them, committed mid-run
    n = len(records)
    inputs = str(write_articles(tmp_path / "articles.json", records))

    clean_store = Store(make_client(settings), small_embedder.name, settings.collection_prefix)
    clean = ingest([inputs], clean_store, small_embedder, settings)
    assert (clean.added, clean.duplicates, clean.failed) == (n - 1, 1, [])
    expected = snapshot(clean_store)

    crash_dir = tmp_path / "crashed"
    env = cli_env(crash_dir, NEWSQA_INGEST_WINDOW="3")  # small windows: many commits to land kills between
    rng = random.Random(20240607)
    assert runs(inputs, env).kill_after(rng.uniform(0.5, 2.5)) == 0  # before anything is committed
    committed = []
    # the bar redraws at most every 0.1 s, so it may trail the commits by an article or two: leave room
    for tick in sorted(rng.sample(range(2, n - 4, 3), 3)):  # three of 2, 5, 8, 11 articles
        seen = runs(inputs, env).kill_at_tick(tick, extra_s=rng.uniform(0, 0.04))
        assert tick <= seen <= n
        committed.append(seen)
    assert sum(seen < n for seen in committed) >= 2, f"kills must land mid-commit, not after: {committed}"

    final = runs(inputs, env).finish()
    print("kills after", committed, "articles; final run:", final)
    assert final["failed"] == []
    assert final["unchanged"] >= committed[-1], "articles committed before a kill are not redone"
    assert final["added"] + final["updated"] + final["unchanged"] + final["duplicates"] == n
    assert final["updated"] == 0  # nothing was ever committed in another version
    assert (final["articles"], final["chunks"]) == (clean.articles, clean.chunks)

    again = runs(inputs, env).finish()
    assert (again["added"], again["updated"], again["duplicates"], again["unchanged"]) == (0, 0, 0, n)

    crashed_settings = settings.model_copy(update={"data_dir": crash_dir})
    crashed = snapshot(Store(make_client(crashed_settings), small_embedder.name, settings.collection_prefix))
    assert crashed["chunk_ids"] == expected["chunk_ids"]
    assert crashed["records"] == expected["records"]
    assert crashed["chunks"] == expected["chunks"]
    assert crashed["stats"] == expected["stats"]
