"""Crash-test kit: what a crashed-then-completed store and its indexes must match, and ways to kill newsqa.

Shared by tests/test_crash*.py and stress/crash.py. `snapshot` is the store's content, `index_view`
the content of its derived indexes (chunk order, BM25 top hits and scores for fixed queries, quote
entries with their chunks, catalog), `half_written` lists anything a reader could see of an article
that is not fully committed. `Run` is `newsqa ingest` with a pty progress bar to kill at a tick;
`hooked_cli` runs the CLI so that it SIGKILLs itself at an exact point (before its N-th file-system
change while saving the indexes, or on entering a given function); `Server` is `newsqa serve`.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

import numpy as np
from conftest import PYTHON, ROOT

from assistant.indexes import Indexes
from assistant.settings import Settings
from assistant.store import INDEXED, Store, make_client

_TICK = re.compile(rb"(\d+)/(\d+)")


def open_store(data_dir: Path) -> Store:
    """A new client on the local store under data_dir (Chroma's per-path client cache is dropped first,
    so nothing cached from before another process wrote is reused)."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    return Store(make_client(Settings(_env_file=None, data_dir=data_dir)), "minilm-l3")  # type: ignore[call-arg]


def snapshot(store: Store) -> dict:
    """Everything of the store that must match between the clean and the crashed-then-completed run."""
    records = {i: (m["content_hash"], m["status"], m.get("duplicate_of"), m["n_chunks"])
               for i, m, _ in store.all_records()}
    got = store.chunks.get(include=["documents", "metadatas"])
    chunks = {i: (d, m["article_id"], m["content_hash"], m["chunk_index"])
              for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)}
    return {"records": records, "chunk_ids": store.chunk_ids(), "chunks": chunks, "stats": store.stats()}


def _top(scores: np.ndarray, names: list[str], k: int = 10) -> list[tuple[str, float]]:
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))[:k]
    return [(names[i], round(float(scores[i]), 6)) for i in order if scores[i] > 0]


def quote_entries(ix: Indexes) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(article id, speaker, quoted text, ids of the chunks holding the quote) in index order."""
    out = []
    for article in map(json.loads, ix.quotes.lines()):
        n = ix.article_index.get(article["id"])
        rows = ix.article_chunks[n].tolist() if n is not None else []
        for q in article["quotes"]:
            holders = tuple(ix.table.ids[i] for i in rows
                            if ix.table.meta[i]["char_start"] <= q["start"] < ix.table.meta[i]["char_end"])
            out.append((article["id"], q["speaker"], q["text"], holders))
    return out


class Close:
    """Chunk embeddings compared with a tolerance (batches of another composition round differently)."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = np.asarray(vectors)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Close) and self.vectors.shape == other.vectors.shape
                and bool(np.allclose(self.vectors, other.vectors, atol=1e-5)))

    def __repr__(self) -> str:
        return f"Close({self.vectors.shape})"


def index_view(ix: Indexes, queries: list[str]) -> dict[str, Any]:
    """The content of a set of indexes: equal views answer every question identically."""
    t = ix.table
    sentence_names = [f"{t.ids[c]}#{n}" for n, c in enumerate(ix.sentence_chunk.tolist())]
    view: dict[str, Any] = {
        "fingerprint": ix.fingerprint, "chunk_ids": t.ids, "texts": list(t.texts), "meta": list(t.meta),
        "vectors": Close(ix.dense.vectors),
        "ts": [None if np.isnan(x) else x for x in t.ts.tolist()], "article_ids": ix.article_ids,
        "sentences": sentence_names, "quotes": quote_entries(ix), "catalog": ix.catalog}
    for q in queries:
        view[f"bm25 {q!r}"] = (_top(ix.lexical.scores(q), t.ids), _top(ix.articles.scores(q), ix.article_ids),
                               _top(ix.sentences.scores(q), sentence_names))
    return view


def queries_for(records: list[dict]) -> list[str]:
    """Fixed BM25 probes: a few titles of the input and common news words."""
    return [r["title"] for r in records[:3]] + ["said the company", "police officials reported on Monday"]


def index_views(store: Store, data_dir: Path, queries: list[str]) -> tuple[dict, dict]:
    """(`Indexes.open` now, a fresh build from the store): both must be the clean run's."""
    opened = Indexes.open(store, data_dir)
    records = [(i, m) for i, m, _ in store.all_records()]
    return index_view(opened, queries), index_view(Indexes.build(store, records, opened.fingerprint), queries)


def half_written(store: Store, data_dir: Path) -> list[str]:
    """What readers of the indexes would see of articles not fully committed (empty when none)."""
    ix = Indexes.open(store, data_dir)
    records = {i: m for i, m, _ in store.all_records()}
    got = store.chunks.get(include=["metadatas"])
    chunk_hash = {i: m["content_hash"] for i, m in zip(got["ids"], got["metadatas"], strict=True)}
    problems: list[str] = []
    seen: dict[str, list[int]] = {}
    for cid, m in zip(ix.table.ids, ix.table.meta, strict=True):
        rec = records.get(m["article_id"])
        if rec is None or rec.get("status") != INDEXED or rec.get("content_hash") != chunk_hash[cid]:
            problems.append(f"chunk {cid} of an uncommitted version of {m['article_id']} is searchable")
        seen.setdefault(m["article_id"], []).append(int(m["chunk_index"]))
    for aid, rows in seen.items():  # (a record whose version has no chunk yet is simply not searchable)
        n = records[aid]["n_chunks"] if aid in records else "?"
        if sorted(rows) != list(range(len(rows))) or len(rows) != n:
            problems.append(f"article {aid}: {len(rows)} of {n} chunks searchable")
    if (catalog := {a.id for a in ix.catalog.articles}) != set(seen):
        problems.append(f"catalog and searchable articles differ: {sorted(catalog ^ set(seen))[:5]}")
    return problems


class Run:
    """`newsqa ingest --json` in a subprocess with a pty for stderr; reads its progress ticks."""

    def __init__(self, inputs: str, env: dict[str, str], argv: list[str] | None = None) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        argv = argv or [PYTHON, "-m", "assistant.cli"]
        self.proc = subprocess.Popen([*argv, "ingest", inputs, "--json"], env=env, cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
        os.close(slave)
        self.master, self.ticks, self.started, self.tail = master, 0, time.monotonic(), b""

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
        self.tail = (self.tail + data)[-4000:]
        if found := _TICK.findall(data):
            self.ticks = max(self.ticks, int(found[-1][0]))
        return True

    def kill_after(self, seconds: float) -> int:
        while time.monotonic() - self.started < seconds and self.proc.poll() is None:
            self._read(0.01)
        return self.kill()

    def kill_at_tick(self, tick: int, extra_s: float, deadline_s: float = 60) -> int:
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

    def finish(self, ok: tuple[int, ...] = (0,)) -> dict:
        out, _ = self.proc.communicate(timeout=1800)
        while self._read(0):
            pass
        assert self.proc.returncode in ok, (self.proc.returncode, out, self.tail[-2000:])
        return json.loads(out) if self.proc.returncode == 0 else {}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if self.proc.stdout:
            self.proc.stdout.close()
        os.close(self.master)


# Runs the CLI and SIGKILLs it at an exact point. CRASH_AT_STEP=N: right before the N-th file-system
# change counted from the first one under an `index` folder (rmtree unlinks relative to a dir fd, so
# every change from then on counts; the count goes to stderr at exit). CRASH_AT_CALL=name:K: on entering
# the K-th call of the Python function `name` (in a thread started later; CRASH_IN_MAIN=1: also in the
# main thread), e.g. `_write_records`.
_HOOK = r"""
import atexit, os, signal, sys, threading
stop, marker, steps = int(os.environ.get("CRASH_AT_STEP", "0")), os.sep + "index" + os.sep, []
CHANGES = {"os.remove", "os.rmdir", "os.rename", "os.replace", "os.mkdir", "shutil.rmtree"}
def hook(event, args):
    if event == "open":
        if not (isinstance(args[1], str) and any(c in args[1] for c in "wax+")):
            return
    elif event not in CHANGES:
        return
    if not steps and marker not in str(args[0]):
        return
    steps.append(event)
    if len(steps) == stop:
        os.kill(os.getpid(), signal.SIGKILL)
sys.addaudithook(hook)
atexit.register(lambda: print("CRASHKIT_STEPS=" + ",".join(steps), file=sys.stderr))
name, _, nth = os.environ.get("CRASH_AT_CALL", "").partition(":")
calls = [0]
def profile(frame, event, arg):
    if event == "call" and frame.f_code.co_name == name:
        calls[0] += 1
        if calls[0] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
from assistant.cli import main
if name:  # threads started from now on (the ingest's writer thread, the server's workers)
    threading.setprofile(profile)
    if os.environ.get("CRASH_IN_MAIN"):  # and the main thread (slow: every call is profiled)
        import assistant.store, chromadb  # imported before, not profiled
        sys.setprofile(profile)
sys.exit(main())
"""


def hooked_cli() -> list[str]:
    """argv prefix for the CLI under the kill hook (set CRASH_AT_STEP or CRASH_AT_CALL in its env)."""
    return [PYTHON, "-c", _HOOK]


def save_steps(stderr: str) -> list[str]:
    """The file-system changes a hooked run made while saving its indexes (audit event names, in order)."""
    found = re.findall(r"CRASHKIT_STEPS=([\w.,]*)", stderr)
    assert found, f"no step list in: {stderr[-500:]}"
    return found[-1].split(",") if found[-1] else []


def kill_while_saving(data_dir: Path, inputs: str, env: dict[str, str], stale: Path, step: int) -> str:
    """Put a stale index folder back, run an ingest of `inputs` (already all stored) that rebuilds and
    saves the indexes, killed right before its save's step `step`; what it left (see folder_state)."""
    folder = data_dir / "index" / "newsqa-chunks-minilm-l3"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(stale, folder)
    done = subprocess.run([*hooked_cli(), "ingest", inputs, "--json"], cwd=ROOT, capture_output=True,
                          env={**env, "CRASH_AT_STEP": str(step)}, text=True, timeout=300, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    return folder_state(data_dir)


def folder_state(data_dir: Path) -> str:
    """What a kill left under data_dir/index: which folders exist (for reporting which phase was hit)."""
    base = data_dir / "index"
    return ",".join(sorted(p.name.split(".", 1)[1].split("-", 1)[0] if "." in p.name else "live"
                           for p in base.iterdir())) if base.is_dir() else "none"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`newsqa serve` in a subprocess on a free loopback port (killed with SIGKILL by `kill`)."""

    def __init__(self, env: dict[str, str], log: Path, argv: list[str] | None = None) -> None:
        self.port = free_port()
        self.log = log.open("ab")
        argv = [*(argv or [PYTHON, "-m", "assistant.cli"]), "serve", "--host", "127.0.0.1",
                "--port", str(self.port)]
        self.proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, client: Any, timeout: float = 90) -> dict:
        """Wait until /health answers (it opens the store, embedder and indexes); its body."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited with {self.proc.returncode}"
            try:
                got = client.get(f"{self.url}/health", timeout=60)
                if got.status_code == 200:
                    return got.json()
            except Exception:  # not listening yet
                time.sleep(0.05)
        raise AssertionError("server did not become ready")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.log.close()
