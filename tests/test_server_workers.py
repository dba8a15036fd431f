"""`newsqa serve --workers 2` over a real `chroma run` on loopback: two worker processes answer, each exactly
as local mode does (same passages, chunk ids in order, scores, and answers), both follow an ingest made
afterwards through the CLI, and nothing is left running. Several workers over a local store are refused;
each worker reads back exactly the settings the command resolved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import PYTHON, ROOT, SEED, cli_env, run_cli, shortest_records, write_articles
from test_server_mode import chroma_server, close_http, free_port  # noqa: F401  (chroma_server: a fixture)

from assistant.indexes import Indexes, fingerprint
from assistant.service import Service, open_service, open_store
from assistant.workers import WORKER_HEADER
from ingest.pipeline import ingest

pytestmark = pytest.mark.server
QUESTIONS = ["What did Qureshi say about Russia?", "What did Lavrov discuss with Imran Khan?",
             "Why is Russia important to Pakistan according to Qureshi?"]


@contextmanager
def serving(env: dict[str, str], log: Path, workers: int) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`newsqa serve --workers N` in its own process group; stopped (and its group killed if need be)."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen([PYTHON, "-m", "assistant.cli", "serve", "--port", str(port),
                                 "--workers", str(workers)], env=env, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while not _healthy(base):
            assert proc.poll() is None, f"serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"serve did not answer:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield proc, base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        deadline = time.monotonic() + 10  # multiprocessing's resource tracker exits just after its parent
        while (leftover := group_members(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if leftover:  # never leave a worker behind, even when the test failed
            os.killpg(proc.pid, signal.SIGKILL)
        assert not leftover, f"processes {leftover} outlived `newsqa serve`"


def group_members(pgid: int) -> list[int]:
    """The live processes of process group `pgid` (zombies excluded)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def ask_stream(base: str, question: str) -> tuple[int, list[tuple[str, float]], dict]:
    """One /ask/stream on a fresh connection: (worker pid, passages as (chunk id, score), final answer)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        response = client.post("/ask/stream", json={"question": question})
        assert response.status_code == 200, response.text
    return int(response.headers[WORKER_HEADER]), *parse_stream(response.text)


def parse_stream(text: str) -> tuple[list[tuple[str, float]], dict]:
    """The passages (chunk id, score) and the final answer (without timings) of an /ask/stream body."""
    events = {}
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events[lines["event"]] = json.loads(lines["data"])
    assert set(events) - {"token"} == {"sources", "answer", "done"}, events.keys()
    return [(p["chunk_id"], p["score"]) for p in events["sources"]["passages"]], _comparable(events["answer"])


def _comparable(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "timings_ms"}


def local_view(service: Service, question: str) -> tuple[list[tuple[str, float]], dict]:
    passages = service.retriever.retrieve(question, k=service.settings.top_k).passages
    answer = service.answerer.ask(question, k=service.settings.top_k)
    return [(p.chunk_id, p.score) for p in passages], _comparable(answer.model_dump(mode="json"))


def ask_everywhere(base: str, questions: list[str], expected: dict) -> dict[int, int]:
    """Ask every question from 4 threads (fresh connections), round after round until two workers have
    answered (the second may still be starting: at most ~60 s); every answer must be the local one.
    Returns answers per worker pid."""
    seen: dict[int, int] = {}
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(4) as pool:
        while len(seen) < 2 and time.monotonic() < deadline:
            batch = questions * 2
            for (pid, passages, answer), question in zip(pool.map(lambda q: ask_stream(base, q), batch),
                                                        batch, strict=True):
                assert (passages, answer) == expected[question], f"worker {pid} differs on {question!r}"
                seen[pid] = seen.get(pid, 0) + 1
    return seen


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_two_workers_answer_like_local_mode_and_follow_the_store(tmp_path, chroma_server,  # noqa: F811
                                                                settings, small_embedder):
    records = shortest_records(4, skip=30)
    first = write_articles(tmp_path / "first.json", records)
    later_record = shortest_records(1, skip=50)[0]
    later = write_articles(tmp_path / "later.json", [later_record])
    remote = {"NEWSQA_CHROMA_HOST": "127.0.0.1", "NEWSQA_CHROMA_PORT": str(chroma_server.port)}
    done = run_cli("ingest", str(SEED), str(first), "--json", env=cli_env(tmp_path / "cli-data", **remote))
    assert done.returncode == 0, done.stderr

    local_report = ingest([str(SEED), str(first)], open_store(settings), small_embedder, settings)
    assert json.loads(done.stdout)["chunks"] == local_report.chunks
    service = open_service(settings, embedder=small_embedder)
    questions = QUESTIONS + [f"What did {r['source']} report about {r['title']}?" for r in records[:2]]
    expected = {q: local_view(service, q) for q in questions}
    assert sum(not answer["refused"] for _, answer in expected.values()) >= 3, "too few answered to compare"

    env = cli_env(tmp_path / "server-data", NEWSQA_ASK_RATE_PER_MINUTE="0", **remote)
    with serving(env, tmp_path / "serve.log", workers=2) as (proc, base):
        seen = ask_everywhere(base, questions, expected)
        assert len(seen) == 2, f"only worker(s) {sorted(seen)} answered"
        assert all(parent_of(pid) == proc.pid for pid in seen), "the answers came from the serve's workers"
        plain = httpx.post(f"{base}/ask", json={"question": questions[0]}, timeout=60)
        assert _comparable(plain.json()) == expected[questions[0]][1]

        # an ingest through the CLI afterwards: both workers pick it up (their background check of the
        # store, then each rebuilds and saves the indexes to the same folder at about the same time)
        assert run_cli("ingest", str(later), env=cli_env(tmp_path / "cli-data", **remote)).returncode == 0
        ingest([str(later)], open_store(settings), small_embedder, settings)
        assert service.refresh()
        follow = f"What did {later_record['source']} report about {later_record['title']}?"
        expected[follow] = local_view(service, follow)
        found = service.retriever.retrieve(follow, k=settings.top_k).passages
        assert later_record["title"] in {p.title for p in found}, "locally, the new article is found"
        updated = _until_both_updated(base, follow, expected, set(seen))
        assert updated == set(seen), f"workers {set(seen) - updated} never saw the new article"
        pids = set(seen)

    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()[-3000:]
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "a worker outlived the serve"
    remote_settings = {"chroma_host": "127.0.0.1", "chroma_port": chroma_server.port}
    shared = open_store(settings.model_copy(update=remote_settings))
    folder = Indexes.folder(tmp_path / "server-data", shared)
    assert json.loads((folder / "meta.json").read_text())["fingerprint"] == fingerprint(shared)
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name], "no torn or leftover save"
    close_http(shared)


def _until_both_updated(base: str, question: str, expected: dict, workers: set[int]) -> set[int]:
    """Ask `question` until every worker answers it as local mode does now (at most ~45 s)."""
    updated: set[int] = set()
    deadline = time.monotonic() + 45
    with ThreadPoolExecutor(4) as pool:
        while updated != workers and time.monotonic() < deadline:
            for pid, passages, answer in pool.map(lambda q: ask_stream(base, q), [question] * 4):
                if (passages, answer) == expected[question]:
                    updated.add(pid)
            time.sleep(0.5)
    return updated


def test_several_workers_need_a_chroma_server(tmp_path):
    env = cli_env(tmp_path / "data")
    refused = run_cli("serve", "--workers", "2", "--port", str(free_port()), env=env, timeout=60)
    assert refused.returncode == 2
    assert "--workers 2 needs a Chroma server (NEWSQA_CHROMA_HOST)" in refused.stderr
    bad = run_cli("serve", "--workers", "0", env=env)
    assert bad.returncode == 2 and "not a number of workers from 1 to 64: '0'" in bad.stderr


def test_workers_get_the_settings_the_command_resolved(tmp_path, monkeypatch):
    """What `serve` exports is what each worker's factory reads back, whatever else its environment says."""
    from assistant.settings import Settings
    from assistant.workers import SETTINGS_ENV, export_settings, imported_settings

    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    with pytest.raises(RuntimeError, match=f"{SETTINGS_ENV} is not set"):
        imported_settings()
    resolved = Settings(_env_file=None, data_dir=tmp_path / "flag-dir", chroma_host="10.0.0.5",  # type: ignore[call-arg]
                        chroma_port=8123, top_k=7, model="m", api_token="t0ken", ask_rate_per_minute=0,
                        cors_origins=["https://news.example"], embedder="minilm-l3")
    monkeypatch.setenv(SETTINGS_ENV, "")  # so that monkeypatch removes what export_settings sets
    export_settings(resolved)
    for key, value in (("NEWSQA_DATA_DIR", "elsewhere"), ("NEWSQA_TOP_K", "3"), ("NEWSQA_CHROMA_HOST", "x")):
        monkeypatch.setenv(key, value)
    (tmp_path / ".env").write_text("NEWSQA_MODEL=from-dotenv\n")
    monkeypatch.chdir(tmp_path)
    assert imported_settings() == resolved
