"""Shared fixtures: real Chroma stores in temp dirs, the small real embedder, the shared data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SEED = DATA / "seed" / "000_3cd6c6f1fd595990.txt"
CORPUS = DATA / "multihop-rag" / "corpus.json"


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


PYTHON = sys.executable
