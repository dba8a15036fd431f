"""Startup benchmark: import time of each heavy dependency, and launch → first answer of `newsqa serve`.

(a) Each module is imported in a fresh interpreter (`python -X importtime -c 'import X'`); its own
cumulative import time is read from the importtime log, and the wall time of the process minus a bare
interpreter's is reported too. (b) A temp store gets the seed article (default embedder, NEWSQA_* cleared);
then `python -m assistant.cli serve --port P` is launched several times and timed to: the port accepting
(process start + imports + app creation), the first 200 of GET /health (opens the service: store,
embedder, indexes), and the first 200 of POST /ask. Alternate runs post /ask first, so "first answer"
includes the lazy service open. The same launches with a model configured (NEWSQA_MODEL, the scripted
OpenAI-compatible server of tests/fake_openai.py on loopback), so the first answer includes importing
the openai SDK and a model call. (c) The in-process breakdown of one cold start (import, create_app,
open store, load embedder, open indexes, first ask) in a fresh subprocess.
Progress on stderr; ONE JSON object on the last stdout line. `--quick`: fewer modules and runs (< 1 min).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from fake_openai import FakeOpenAIServer  # noqa: E402

SEED = ROOT.parent / "shared" / "data" / "seed" / "000_3cd6c6f1fd595990.txt"
PYTHON = sys.executable
QUESTION = "What did Qureshi say about Russia?"
MODULES = ["numpy", "pydantic", "fastapi", "uvicorn", "openai", "tiktoken", "tokenizers", "onnxruntime",
           "bm25s", "chromadb", "trafilatura", "feedparser", "jinja2", "httpx", "assistant.settings",
           "assistant.service", "assistant.api", "ingest.pipeline"]
QUICK_MODULES = ["numpy", "fastapi", "openai", "onnxruntime", "chromadb", "assistant.api"]
BREAKDOWN = r"""
import json, sys, time
t = {}; t0 = time.perf_counter()
from assistant.settings import Settings
from assistant.api import create_app
t["import_api"] = time.perf_counter() - t0; t1 = time.perf_counter()
settings = Settings(); app = create_app(settings)
t["create_app"] = time.perf_counter() - t1; t1 = time.perf_counter()
import chromadb
t["import_chromadb"] = time.perf_counter() - t1; t1 = time.perf_counter()
from assistant.service import open_store, extractive_for
from assistant.embed import make_embedder
from assistant.indexes import Indexes
from assistant.retrieve import Retriever
from assistant.answer import Answerer
store = open_store(settings)
t["open_store"] = time.perf_counter() - t1; t1 = time.perf_counter()
embedder = make_embedder(settings)
t["load_embedder"] = time.perf_counter() - t1; t1 = time.perf_counter()
indexes = Indexes.open(store, settings.data_dir)
t["open_indexes"] = time.perf_counter() - t1; t1 = time.perf_counter()
answerer = Answerer(Retriever(store, embedder, indexes), extractive_for(indexes), None)
answer = answerer.ask(sys.argv[1])
t["first_ask"] = time.perf_counter() - t1; t1 = time.perf_counter()
answer = answerer.ask(sys.argv[1])
t["second_ask"] = time.perf_counter() - t1
t["in_process_total"] = time.perf_counter() - t0
print(json.dumps({k: round(v * 1e3, 1) for k, v in t.items()} | {"refused": answer.refused}))
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")}
    env.update({"NEWSQA_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)})
    return env


def run_wall(code: str, env: dict[str, str], cwd: Path, flags: tuple[str, ...] = ()) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([PYTHON, *flags, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                          check=True)
    return time.perf_counter() - t0, proc.stderr


def self_cumulative_us(importtime_log: str, module: str) -> int:
    """The cumulative import time (µs) of `module` itself from a -X importtime log."""
    for line in importtime_log.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == module:
            return int(parts[1].strip())
    return -1


def import_times(modules: list[str], repeats: int, env: dict[str, str], cwd: Path) -> dict[str, dict]:
    bare = min(run_wall("pass", env, cwd)[0] for _ in range(repeats))
    out: dict[str, dict] = {"_bare_python": {"wall_ms": round(bare * 1e3, 1)}}
    for module in modules:
        walls, cums = [], []
        for _ in range(repeats):
            wall, err = run_wall(f"import {module}", env, cwd, ("-X", "importtime"))
            walls.append(wall)
            cums.append(self_cumulative_us(err, module) / 1e3)
        out[module] = {"importtime_ms": round(min(cums), 1),
                       "wall_minus_bare_ms": round((min(walls) - bare) * 1e3, 1)}
        log(f"import {module}: {out[module]}")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen, deadline: float) -> None:
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("the server did not listen in time")


def launch_once(env: dict[str, str], cwd: Path, health_first: bool) -> dict[str, float]:
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([PYTHON, "-m", "assistant.cli", "serve", "--port", str(port)], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc, t0 + 60)
        got = {"listening_ms": time.perf_counter() - t0}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            if health_first:
                response = client.get("/health")
                assert response.status_code == 200, response.text
                got["health_ms"] = time.perf_counter() - t0
            response = client.post("/ask", json={"question": QUESTION})
            assert response.status_code == 200 and not response.json()["refused"], response.text
            got["first_answer_ms"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            assert client.post("/ask", json={"question": QUESTION}).status_code == 200
            got["second_answer_only_ms"] = time.perf_counter() - t1
        return {k: round(v * 1e3, 1) for k, v in got.items()}
    finally:
        proc.terminate()
        proc.wait(10)


def summarize(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = {k for r in runs for k in r if k != "health_first"}
    return {k: {"median": round(statistics.median(v), 1), "min": min(v), "max": max(v)}
            for k in sorted(keys) for v in [[r[k] for r in runs if k in r]]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer modules and launches (< 1 min)")
    ap.add_argument("--launches", type=int, default=0, help="server launches (default 6, quick 2)")
    args = ap.parse_args()
    launches = args.launches or (2 if args.quick else 6)
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-startup-") as tmp:
        cwd, data = Path(tmp), Path(tmp) / "data"
        env = clean_env(data)
        imports = import_times(QUICK_MODULES if args.quick else MODULES, 1 if args.quick else 3, env, cwd)
        log("ingesting the seed article (default embedder)")
        subprocess.run([PYTHON, "-m", "assistant.cli", "ingest", str(SEED), "--json"], env=env, cwd=cwd,
                       check=True, capture_output=True)
        runs, with_model = [], []
        with FakeOpenAIServer() as fake:
            model_env = {**env, "NEWSQA_MODEL": "scripted", "OPENAI_BASE_URL": fake.base_url,
                         "OPENAI_API_KEY": "unused"}
            for i in range(launches):
                runs.append({"health_first": i % 2 == 0, **launch_once(env, cwd, health_first=i % 2 == 0)})
                log(f"launch {i}: {runs[-1]}")
                with_model.append(launch_once(model_env, cwd, health_first=False))
                log(f"launch {i} with a model: {with_model[-1]}")
            assert fake.requests, "the model was never asked"
        proc = subprocess.run([PYTHON, "-c", BREAKDOWN, QUESTION], env=env, cwd=cwd, capture_output=True,
                              text=True, check=True)
        breakdown = json.loads(proc.stdout.strip().splitlines()[-1])
        log(f"in-process breakdown: {breakdown}")
    ask_first = [r for r in runs if not r["health_first"]]
    health_first = [r for r in runs if r["health_first"]]
    worst_first = max(r["first_answer_ms"] for r in runs)
    worst_model = max(r["first_answer_ms"] for r in with_model)
    result = {"imports": imports, "launch_ask_first": summarize(ask_first),
              "launch_health_first": summarize(health_first), "launch_with_model": summarize(with_model),
              "breakdown_ms": breakdown, "first_answer_ms_max": worst_first,
              "goal_first_answer_le_3000ms": worst_first <= 3000,
              "with_model_first_answer_ms_max": worst_model,
              "loadavg": os.getloadavg(), "launches": launches}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
