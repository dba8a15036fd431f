"""Packaging and configuration: resources found from a checkout and a wheel, Settings from env/.env."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import PYTHON, ROOT, cli_env
from pydantic import ValidationError

from assistant.resources import resource_dir
from assistant.settings import Settings


def test_resources_found_in_checkout():
    assert resource_dir("prompts") == ROOT / "prompts"
    assert resource_dir("web") == ROOT / "web"


def test_resources_prefer_wheel_layout_and_name_where_they_looked(tmp_path):
    pkg = tmp_path / "site" / "assistant"
    (pkg / "_data" / "prompts").mkdir(parents=True)
    assert resource_dir("prompts", pkg) == pkg / "_data" / "prompts"
    with pytest.raises(FileNotFoundError, match=r"web/ not found; looked in .*_data/web"):
        resource_dir("web", pkg)


def test_wheel_carries_packages_resources_and_console_script(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("newsqa-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "assistant/_data/prompts/README.md" in names
    assert "assistant/_data/web/README.md" in names
    assert {"assistant/cli.py", "ingest/pipeline.py", "ingest/read.py"} <= names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "newsqa = assistant.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert not any(n.startswith(("tests/", "samples/")) for n in names)


def test_settings_from_env_and_dotenv(tmp_path, monkeypatch):
    for key in ("NEWSQA_DATA_DIR", "NEWSQA_CHUNK_TOKENS", "NEWSQA_CHROMA_HOST", "NEWSQA_EMBEDDER"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    Path(".env").write_text("NEWSQA_CHUNK_TOKENS=300\nNEWSQA_CHROMA_HOST=127.0.0.1\n")
    monkeypatch.setenv("NEWSQA_DATA_DIR", str(tmp_path / "elsewhere"))
    settings = Settings()
    assert settings.chunk_tokens == 300 and settings.chroma_host == "127.0.0.1"
    assert settings.data_dir == tmp_path / "elsewhere"
    assert settings.embedder == "minilm-l6-int8"


def test_settings_reject_bad_values_by_name():
    with pytest.raises(ValidationError, match="chunk_overlap"):
        Settings(chunk_tokens=64, chunk_overlap=64)
    with pytest.raises(ValidationError, match="embedder"):
        Settings(embedder="word2vec")


def test_cli_reports_bad_configuration_with_exit_2(tmp_path):
    env = cli_env(tmp_path / "data", NEWSQA_CHUNK_TOKENS="10")
    proc = subprocess.run([PYTHON, "-m", "assistant.cli", "stats"], env=env, cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "invalid configuration" in proc.stderr and "chunk_tokens" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_env_example_lists_every_setting():
    text = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"NEWSQA_{name.upper()}" in text, name
