"""Shared fixtures: real Chroma stores in temp dirs, the small real embedder, the shared data."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SEED = DATA / "seed" / "000_3cd6c6f1fd595990.txt"
CORPUS = DATA / "multihop-rag" / "corpus.json"


def pytest_configure(config):
    if not (DATA / "multihop-rag" / "corpus.json").is_file() or not SEED.is_file():
        raise pytest.UsageError(f"the shared data is missing: expected it at {DATA} (beside the project)")
PYTHON = sys.executable


@pytest.fixture(scope="session")
def small_embedder():
    """The real paraphrase-MiniLM-L3 ONNX embedder (fast enough for tests)."""
    from assistant.embed import OnnxEmbedder

    return OnnxEmbedder("minilm-l3", batch_size=32)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    from assistant.settings import Settings

    for key in list(os.environ):
        if key.startswith("NEWSQA_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return Settings(data_dir=tmp_path / "data", embedder="minilm-l3")


@pytest.fixture
def store(settings, small_embedder):
    from assistant.store import Store, make_client

    return Store(make_client(settings), small_embedder.name, settings.collection_prefix)


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for running `python -m assistant.cli` in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")}
    env.update({"NEWSQA_DATA_DIR": str(data_dir), "NEWSQA_EMBEDDER": "minilm-l3",
                "PYTHONPATH": str(ROOT), **extra})
    return env


# --- helpers for tests that build inputs from the MultiHop-RAG corpus and run the CLI -----------------


@functools.cache
def _corpus() -> tuple[dict, ...]:
    return tuple(json.loads(CORPUS.read_text(encoding="utf-8")))


def corpus_records() -> list[dict]:
    """The 609 MultiHop-RAG article records (fresh copies, safe to edit)."""
    return [dict(r) for r in _corpus()]


def corpus_record(title: str) -> dict:
    """The corpus record with this exact title."""
    return next(r for r in corpus_records() if r["title"] == title)


def shortest_records(n: int, skip: int = 0) -> list[dict]:
    """`n` real corpus records among the shortest bodies (fast to embed), in corpus order."""
    ranked = sorted(corpus_records(), key=lambda r: (len(r["body"]), r["url"]))[skip : skip + n]
    urls = {r["url"] for r in ranked}
    return [r for r in corpus_records() if r["url"] in urls]


def write_articles(path: Path, records: list[dict]) -> Path:
    """Write records as a JSON list (the MultiHop-RAG format the reader takes)."""
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def syndicated_copy(record: dict, outlet: str = "Wire Reprints Daily") -> dict:
    """The same wire story as another outlet runs it: own title, url and outlet, a new first line,
    one word changed mid-story and a sign-off appended."""
    lines = record["body"].split("\n")
    first = lines[0].split(". ", 1)
    lines[0] = "NEW YORK (Newswire) - The following report was distributed to member papers. " + (
        first[1] if len(first) > 1 else "")
    body = "\n".join(lines)
    middle = body.find(" the ", len(body) // 2)
    if middle > 0:
        body = body[:middle] + " this " + body[middle + len(" the "):]
    body += "\n\nDistributed by Newswire. Reporting by Jane Roe; editing by Sam Poe."
    return {**record, "title": f"Wire: {record['title']}", "source": outlet,
            "url": record["url"].replace("https://", "https://reprints.example/"), "body": body}


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m assistant.cli ARGS` to completion, capturing its output."""
    return subprocess.run([PYTHON, "-m", "assistant.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture
def fake_llm_server():
    """A started scripted OpenAI-compatible chat server on 127.0.0.1 (tests/fake_openai.py)."""
    from fake_openai import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        yield server
