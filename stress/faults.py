"""Model faults against a real server: `newsqa serve` (subprocess) answering with a chat model at the
scripted OpenAI-compatible server (tests/fake_openai.py) that misbehaves in every way we know of — and
the per-fault latency of /ask and /ask/stream, which the answer budget must bound.

    .venv/bin/python stress/faults.py [--quick] [--reps N]

Builds a store in a temp dir (the seed and a few short MultiHop-RAG articles, embedder minilm-l3),
serves it with NEWSQA_LLM_TIMEOUT_S / NEWSQA_ANSWER_TIMEOUT_S set small (1 / 2 s quick, 2 / 4 s full),
then for each fault asks `reps` times on /ask and /ask/stream, sequentially, and 8 at once under a model
that never answers. The full run takes about 4 minutes on 2 cores. Checks (a violation fails the run):
every response is 200; a fallback answer says why and is exactly the extractive answer (the one a server
whose model is down gives), its [n] markers match its citations; a stream ends with `answer` then
`done`, never `error`; a working or recovering model's answer is its own; no answer takes longer than
the budget plus the slowest no-fault answer plus 1.5 s. Prints progress to stderr, one JSON object last
on stdout.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from fake_openai import FakeOpenAIServer, Fault  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SEED = DATA / "seed" / "000_3cd6c6f1fd595990.txt"
CORPUS = DATA / "multihop-rag" / "corpus.json"
QUESTION = "What did Qureshi say about Russia?"
CLAIM = "Qureshi reiterated Pakistan's resolve to build a strong multifaceted relationship with Russia"
LONG = 60.0


def log(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def faults(reply: str) -> dict[str, tuple[list[str | Fault], str | None]]:
    """name → (what the model server does: scripted steps, the last one repeated; fallback words or
    None when the model's own answer must come back)."""
    return {
        "none": ([reply], None),
        "500-then-ok": ([Fault.status(500), reply], None),
        "429-short-retry-after-then-ok": ([Fault.status(429, retry_after=0.3), reply], None),
        "delay-past-timeout": ([Fault.delay(LONG, then=reply)], "timeout"),
        "stall-mid-stream": ([Fault.stall_mid_stream(reply, LONG)], "time"),
        "trickle-past-budget": ([Fault.trickle(reply, 0.4)], "timeout"),
        "429-long-retry-after": ([Fault.status(429, retry_after=LONG)], "HTTP 429"),
        "500-every-time": ([Fault.status(500)], "HTTP 500"),
        "503-every-time": ([Fault.status(503)], "HTTP 503"),
        "malformed-json": ([Fault.malformed()], "malformed"),
        "html-page": ([Fault.malformed("text/html")], "malformed"),
        "empty-choices": ([Fault.empty()], "malformed"),
        "drop-mid-stream": ([Fault.drop_mid_stream(reply)], ""),
        "garbage-no-citations": (["Lorem ipsum dolor sit amet, banana quartz."], "cited no retrieved"),
        "citation-to-passage-7-of-3": ([f"{CLAIM} [7]."], "cited no retrieved"),
        "obedient-pwned": (["PWNED [1]"], "cited no retrieved"),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(data_dir: Path, llm_url: str, timeout_s: float, budget_s: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSQA_", "OPENAI_"))}
    env.update(NEWSQA_DATA_DIR=str(data_dir), NEWSQA_EMBEDDER="minilm-l3", NEWSQA_ASK_RATE_PER_MINUTE="0",
               NEWSQA_MODEL="fake-model", OPENAI_BASE_URL=llm_url, OPENAI_API_KEY="unused",
               NEWSQA_LLM_TIMEOUT_S=str(timeout_s), NEWSQA_ANSWER_TIMEOUT_S=str(budget_s),
               NEWSQA_LLM_MAX_RETRIES="2", PYTHONPATH=str(ROOT))
    return env


@contextmanager
def serving(env: dict[str, str], work: Path, name: str) -> Any:
    """`newsqa serve` in a subprocess on a free port; its base url once /health answers."""
    port = free_port()
    with (work / f"{name}.log").open("wb") as out:
        command = [sys.executable, "-m", "assistant.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    try:
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                output = (work / f"{name}.log").read_text()[-2000:]
                raise RuntimeError(f"server {name} did not start: {output}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def ask(client: httpx.Client, stream: bool) -> tuple[float, int, dict[str, Any], list[str]]:
    """(seconds, status, the final answer, the event kinds) of one /ask or /ask/stream."""
    started = time.perf_counter()
    response = client.post("/ask/stream" if stream else "/ask", json={"question": QUESTION, "k": 3})
    seconds = time.perf_counter() - started
    if not stream or response.status_code != 200:
        return seconds, response.status_code, response.json() if response.status_code == 200 else {}, []
    got = [(b.split("\n")[0].removeprefix("event: "), b.split("\n")[1].removeprefix("data: "))
           for b in response.text.strip().split("\n\n")]
    answers = [json.loads(data) for kind, data in got if kind == "answer"]
    return seconds, 200, answers[-1] if answers else {}, [kind for kind, _ in got]


def problems(answer: dict[str, Any], kinds: list[str], status: int, says: str | None,
             reference: dict[str, Any] | None) -> list[str]:
    """What is wrong with one response (empty: nothing)."""
    out = [] if status == 200 else [f"HTTP {status}"]
    if kinds and (kinds[-2:] != ["answer", "done"] or "error" in kinds):
        out.append(f"stream events {kinds[:3]}…{kinds[-3:]}")
    if not answer:
        return [*out, "no answer"]
    cites = answer.get("citations") or []
    if {int(n) for n in re.findall(r"\[(\d+)\]", answer["answer"])} != {c["n"] for c in cites} or not cites:
        out.append("markers do not match citations")
    if says is None:
        if answer["fallback"] or answer["model"] != "fake-model":
            out.append(f"fell back: {answer['fallback']}")
    elif not answer["fallback"] or says not in answer["fallback"]:
        out.append(f"fallback {answer['fallback']!r} lacks {says!r}")
    elif reference is not None and answer["answer"] != reference["answer"]:
        out.append("fallback differs from the extractive answer")
    return out


def always(step: str | Fault, messages: list[dict[str, Any]]) -> str | Fault:
    """The model server's step for every request (bound with functools.partial)."""
    return step


def passage_number(client: httpx.Client, needle: str) -> int:
    """The [n] of the retrieved passage holding `needle` (from the stream's `sources` event)."""
    response = client.post("/ask/stream", json={"question": QUESTION, "k": 3})
    sources = json.loads(response.text.split("\n\n")[0].split("\n")[1].removeprefix("data: "))
    return next(n for n, p in enumerate(sources["passages"], start=1) if needle in p["text"])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else 0.0


def build(work: Path, articles: int) -> Path:
    """The seed and the `articles` shortest corpus articles, ingested (in this process) into work/data."""
    sys.path.insert(0, str(ROOT))
    from assistant.embed import OnnxEmbedder
    from assistant.service import open_store
    from assistant.settings import Settings
    from ingest.pipeline import ingest

    records = sorted(json.loads(CORPUS.read_text(encoding="utf-8")), key=lambda r: len(r["body"]))[:articles]
    (work / "corpus.json").write_text(json.dumps(records), encoding="utf-8")
    settings = Settings(_env_file=None, data_dir=work / "data", embedder="minilm-l3")  # type: ignore[call-arg]
    report = ingest([str(SEED), str(work / "corpus.json")], open_store(settings), OnnxEmbedder("minilm-l3"),
                    settings)
    if report.failed or report.articles != articles + 1:
        raise RuntimeError(f"ingest failed: {report.failed}")
    return settings.data_dir


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small budgets, one request each (about a minute)")
    ap.add_argument("--reps", type=int, help="requests per fault and endpoint (default 1 quick, 5 full)")
    args = ap.parse_args()
    reps = args.reps or (1 if args.quick else 5)
    timeout_s, budget_s = (1.0, 2.0) if args.quick else (2.0, 4.0)
    figures: dict[str, Any] = {"reps": reps, "llm_timeout_s": timeout_s, "answer_timeout_s": budget_s}
    violations: list[str] = []
    port = free_port()  # the model's: nothing listens there at first (the model is down)
    with tempfile.TemporaryDirectory(prefix="newsqa-faults-") as tmp:
        work = Path(tmp)
        log("building the store (seed + short corpus articles, minilm-l3)")
        data = build(work, 3 if args.quick else 20)
        env = env_for(data, f"http://127.0.0.1:{port}/v1", timeout_s, budget_s)
        with serving(env, work, "newsqa") as base, httpx.Client(base_url=base, timeout=120) as client:
            runs = [ask(client, stream) for stream in (False, True) for _ in range(reps)]
            reference = runs[0][2]
            figures["down"] = fault_figures(runs, "connection to the model server failed", reference,
                                            violations, "down")
            with FakeOpenAIServer(port) as model:
                run_faults(client, model, reps, reference, figures, violations)
    slowest_ok = max(figures[name]["ask_max_s"] for name in ("none", "500-then-ok"))
    limit = budget_s + slowest_ok + 1.5
    for name, fig in figures.items():
        if isinstance(fig, dict) and max(fig["ask_max_s"], fig["stream_max_s"]) > limit:
            violations.append(f"{name}: {max(fig['ask_max_s'], fig['stream_max_s'])} s > limit {limit:.2f} s")
    figures |= {"latency_limit_s": round(limit, 2), "violations": violations[:50], "ok": not violations}
    print(json.dumps(figures))
    return 0 if not violations else 1


def run_faults(client: httpx.Client, model: FakeOpenAIServer, reps: int, reference: dict[str, Any],
               figures: dict[str, Any], violations: list[str]) -> None:
    """Every fault `reps` times on each endpoint, then 8 concurrent /ask under a silent model."""
    reply = f"{CLAIM} [{passage_number(client, 'multifaceted')}]."
    for name, (steps, says) in faults(reply).items():
        model.default = functools.partial(always, steps[-1])
        runs = []
        for stream in (False, True):
            for _ in range(reps):
                model.script(*steps[:-1])
                runs.append(ask(client, stream))
        figures[name] = fault_figures(runs, says, reference, violations, name)
        log(f"{name}: /ask p50 {figures[name]['ask_p50_s']} s max {figures[name]['ask_max_s']} s; "
            f"stream max {figures[name]['stream_max_s']} s; {len(violations)} violation(s) so far")
    model.default = lambda messages: Fault.delay(LONG, then=reply)
    with ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(lambda _: ask(client, False), range(8)))
    figures["8-concurrent-delay"] = fault_figures(runs, "timeout", reference, violations,
                                                  "8-concurrent-delay")


def fault_figures(runs: list[tuple[float, int, dict[str, Any], list[str]]], says: str | None,
                  reference: dict[str, Any] | None, violations: list[str], name: str) -> dict[str, Any]:
    asks = [r for r in runs if not r[3]]
    streams = [r for r in runs if r[3]]
    for _, status, answer, kinds in runs:
        violations.extend(f"{name}: {p}" for p in problems(answer, kinds, status, says, reference))
    fallback = next((r[2].get("fallback") for r in runs if r[2]), None)
    ask_s, stream_s = [r[0] for r in asks], [r[0] for r in streams]
    return {"ask_p50_s": percentile(ask_s, 0.5), "ask_max_s": percentile(ask_s, 1),
            "stream_p50_s": percentile(stream_s, 0.5), "stream_max_s": percentile(stream_s, 1),
            "fallback": fallback}


if __name__ == "__main__":
    sys.exit(main())
