"""Server-mode benchmark: `newsqa serve --workers N` over a real `chroma run`, against local mode.

The first N MultiHop-RAG articles holding the evidence of whole dev queries (bench/overhead.py
`multihop_set`) are written to one file and ingested (real minilm-l3) into a local store and into a
`chroma run` server on 127.0.0.1 (tests/test_server_mode.py `ChromaServer`). Local mode in this process
(a Service over the local store) answers every question first: that is the reference. The dev queries
over those articles (field "query") are then asked of `newsqa serve` subprocesses (rate limit off):
local mode with 1 worker (over a copy of the local store), server mode with 1, 2, 3 workers — offline
(extractive answers) and with the scripted OpenAI-compatible model (tests/fake_openai.py in this process,
replying at once with the first sentence of passage [1], cited). Per configuration: (1) every question
once through /ask/stream (fresh connections, C at a time): passages (chunk ids in order, scores) and
answer must equal the reference; (2) C async clients (httpx.AsyncClient) post /ask in turn for a fixed
duration, each answer checked against the reference too: requests, errors, req/s, p50/p95 latency,
requests per worker, CPU ms per request (workers + Chroma server), cores used by the workers, the
Chroma server and this process (clients and scripted model), resident memory of each worker.
A new connection per request unless `--keep-alive`. The machine's load average is reported beside.
Progress on stderr; ONE JSON object on the last stdout line; exit 1 if any answer differs or any request
failed. `--quick`: 15 articles, 3 s of load, server mode with 1 and 2 workers only (< 1 min idle).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from conftest import cli_env, write_articles  # noqa: E402
from fake_openai import FakeOpenAIServer  # noqa: E402
from overhead import multihop_set  # noqa: E402
from test_api import make_settings  # noqa: E402
from test_server_mode import ChromaServer, close_http  # noqa: E402
from test_server_workers import local_view, parse_stream, serving  # noqa: E402

from assistant.cite import REFUSAL  # noqa: E402
from assistant.embed import OnnxEmbedder  # noqa: E402
from assistant.llm import OpenAILLM  # noqa: E402
from assistant.service import open_service, open_store  # noqa: E402
from assistant.workers import WORKER_HEADER  # noqa: E402
from ingest.pipeline import ingest  # noqa: E402

PASSAGE_1 = re.compile(r'<passage n="1">\s*\[1\][^\n]*\n(.*?)</passage>', re.S)
View = tuple[list[tuple[str, float]], dict]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def model_reply(messages: list[dict[str, Any]]) -> str:
    """The scripted model: the first sentence of passage [1], cited (deterministic for a prompt)."""
    prompt = next((str(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    found = PASSAGE_1.search(prompt)
    if not found:
        return REFUSAL
    first = re.split(r"(?<=[.!?])\s+", found.group(1).strip())[0]
    return f"{first.rstrip('.')} [1]."


def comparable(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "timings_ms"}


def worker_of(response: httpx.Response, fallback: int) -> int:
    return int(response.headers.get(WORKER_HEADER, fallback))  # no header: served in the serve process


def rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return round(kb / 1024, 1)


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else 0.0


def warm(base: str, workers: int, serve_pid: int) -> set[int]:
    """GET /health on fresh connections until every worker has opened its service (at most ~60 s)."""
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(4) as pool:
        while len(seen) < workers and time.monotonic() < deadline:
            for response in pool.map(lambda _: httpx.get(f"{base}/health", timeout=60), range(4)):
                if response.status_code == 200:
                    seen.add(worker_of(response, serve_pid))
    return seen


def views(base: str, questions: list[str], concurrency: int) -> dict[str, View]:
    """Every question once through /ask/stream (fresh connections): its passages (chunk id, score) and
    its answer."""
    def one(question: str) -> View:
        response = httpx.post(f"{base}/ask/stream", json={"question": question}, timeout=120)
        assert response.status_code == 200, response.text[:500]
        return parse_stream(response.text)

    with ThreadPoolExecutor(concurrency) as pool:
        return dict(zip(questions, pool.map(one, questions), strict=True))


async def load(base: str, questions: list[str], reference: dict[str, View], duration: float,
               concurrency: int, keep_alive: bool, serve_pid: int) -> dict[str, Any]:
    """`concurrency` clients posting /ask in turn for `duration` seconds; every answer checked."""
    stop_at = time.perf_counter() + duration
    latencies: list[float] = []
    per_worker: dict[int, int] = {}
    counts = {"errors": 0, "mismatches": 0}
    limits = httpx.Limits(max_keepalive_connections=1 if keep_alive else 0)

    async def client(i: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
            n = i
            while time.perf_counter() < stop_at:
                question = questions[n % len(questions)]
                n += concurrency
                t0 = time.perf_counter()
                try:
                    response = await http.post("/ask", json={"question": question})
                except httpx.HTTPError as err:
                    counts["errors"] += 1
                    log(f"  request failed: {type(err).__name__}: {err}")
                    continue
                if response.status_code != 200:
                    counts["errors"] += 1
                    log(f"  HTTP {response.status_code}: {response.text[:200]}")
                    continue
                latencies.append((time.perf_counter() - t0) * 1e3)
                pid = worker_of(response, serve_pid)
                per_worker[pid] = per_worker.get(pid, 0) + 1
                counts["mismatches"] += comparable(response.json()) != reference[question][1]

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return {"requests": len(latencies) + counts["errors"], **counts, "seconds": round(elapsed, 2),
            "req_per_s": round(len(latencies) / elapsed, 2),
            "p50_ms": round(statistics.median(latencies), 1) if latencies else 0.0,
            "p95_ms": pct(latencies, 0.95), "requests_per_worker": sorted(per_worker.values(), reverse=True)}


def run_config(env: dict[str, str], log_path: Path, workers: int, questions: list[str],
               reference: dict[str, View], args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    with serving(env, log_path, workers) as (proc, base):
        ready = time.perf_counter() - t0
        warmed = warm(base, workers, proc.pid)
        seen = views(base, questions, args.concurrency)
        differ = [q for q in questions if seen[q] != reference[q]]
        for q in differ[:3]:
            log(f"  differs from local mode: {q!r}")
        groups = {"workers": list(warmed), "chroma": [args.chroma_pid]}
        load_before, mine = os.getloadavg()[0], time.process_time()
        before = {name: cpu_s(pids) for name, pids in groups.items()}
        figures = asyncio.run(load(base, questions, reference, args.duration, args.concurrency,
                                   args.keep_alive, proc.pid))
        used = {name: cpu_s(pids) - before[name] for name, pids in groups.items()}
        used["bench_clients_and_fake_model"] = time.process_time() - mine
        served = figures["requests"] - figures["errors"]
        figures["cpu_ms_per_request"] = round((used["workers"] + used["chroma"]) * 1e3 / max(1, served), 1)
        figures["cores_used"] = {name: round(v / figures["seconds"], 2) for name, v in used.items()}
        figures["loadavg_1m_before"] = load_before
        memory = {pid: rss_mb(pid) for pid in warmed}
        parent = rss_mb(proc.pid) if workers > 1 else None
    result = {"workers": workers, "ready_s": round(ready, 1), "workers_answering": len(warmed),
              "identity_mismatches": len(differ), **figures,
              "worker_rss_mb": sorted(v for v in memory.values() if v is not None),
              **({"supervisor_rss_mb": parent} if parent is not None else {})}
    return result


def build(tmp: Path, args: argparse.Namespace, chroma: ChromaServer, embedder: OnnxEmbedder) -> list[str]:
    """Write the articles to one file; ingest it into a local store and into the Chroma server. The local
    store is copied for `newsqa serve` (this process keeps the original open for the reference)."""
    records, questions = multihop_set(args.articles)
    corpus = str(write_articles(tmp / "corpus.json", records))
    chunks = []
    for name, extra in (("local", {}), ("server", {"chroma_host": "127.0.0.1", "chroma_port": chroma.port})):
        settings = make_settings(tmp / name, **extra)
        t0 = time.perf_counter()
        store = open_store(settings)
        report = ingest([corpus], store, embedder, settings)
        assert not report.failed, report.failed
        chunks.append(report.chunks)
        if name == "server":
            close_http(store)
        log(f"ingested {report.articles} articles, {report.chunks} chunks into the {name} store "
            f"in {time.perf_counter() - t0:.1f} s")
    assert chunks[0] == chunks[1], f"local and server stores differ: {chunks}"
    shutil.copytree(tmp / "local", tmp / "local-serve")
    return questions[: args.questions]


def references(tmp: Path, questions: list[str], fake: FakeOpenAIServer,
               embedder: OnnxEmbedder) -> dict[str, dict[str, View]]:
    """Local mode in this process (a Service over the local store, offline and with the scripted model):
    the passages and answers every configuration must give."""
    settings = make_settings(tmp / "local")
    offline = open_service(settings, embedder=embedder)
    llm = OpenAILLM("fake-model", base_url=fake.base_url, timeout_s=settings.llm_timeout_s,
                    max_retries=settings.llm_max_retries, temperature=settings.llm_temperature,
                    budget_s=settings.answer_timeout_s)
    modeled = open_service(settings, llm=llm, embedder=embedder)
    return {"offline": {q: local_view(offline, q) for q in questions},
            "model": {q: local_view(modeled, q) for q in questions}}


def plan(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """(answerer, mode, workers) of each configuration served."""
    if args.quick:
        return [("offline", "server", 1), ("offline", "server", 2), ("model", "server", 2)]
    return [(answerer, mode, w) for answerer in ("offline", "model")
            for mode, w in [("local", 1), *(("server", w) for w in args.workers)]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small store, short load, fewer configurations")
    ap.add_argument("--articles", type=int, default=0, help="MultiHop-RAG articles (100; quick 15)")
    ap.add_argument("--questions", type=int, default=0, help="dev queries asked (60; quick 12)")
    ap.add_argument("--duration", type=float, default=0, help="seconds of load per config (20; quick 3)")
    ap.add_argument("--concurrency", type=int, default=8, help="concurrent clients (8)")
    ap.add_argument("--workers", type=lambda s: [int(w) for w in s.split(",")], default=[1, 2, 3],
                    help="server-mode worker counts, comma-separated (1,2,3)")
    ap.add_argument("--keep-alive", action="store_true", help="each client keeps its connection")
    args = ap.parse_args()
    args.articles = args.articles or (15 if args.quick else 100)
    args.questions = args.questions or (12 if args.quick else 60)
    args.duration = args.duration or (3.0 if args.quick else 20.0)
    results: dict[str, Any] = {"concurrency": args.concurrency, "keep_alive": args.keep_alive,
                               "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-server-") as name, FakeOpenAIServer() as fake:
        tmp = Path(name)
        fake.default = model_reply
        chroma = ChromaServer(tmp / "chroma-data", tmp / "chroma.log")
        try:
            chroma.start()
            embedder = OnnxEmbedder("minilm-l3", batch_size=32)
            questions = build(tmp, args, chroma, embedder)
            results |= {"articles": args.articles, "questions": len(questions)}
            reference = references(tmp, questions, fake, embedder)
            assert chroma.proc is not None
            args.chroma_pid, args.chroma_port = chroma.proc.pid, chroma.port  # its CPU time counts too
            run_all(tmp, questions, reference, fake, args, results)
        finally:
            chroma.stop()
    configs = [c for mode in ("offline", "model") for c in results.get(mode, {}).values() if "errors" in c]
    mismatches = sum(c["mismatches"] + c["identity_mismatches"] for c in configs)
    errors = sum(c["errors"] for c in configs)
    results |= {"mismatches": mismatches, "errors": errors, "identical": mismatches == 0 and bool(configs),
                "loadavg": os.getloadavg()}
    print(json.dumps(results))
    return 0 if results["identical"] and errors == 0 else 1


def run_all(tmp: Path, questions: list[str], reference: dict[str, dict[str, View]], fake: FakeOpenAIServer,
            args: argparse.Namespace, results: dict[str, Any]) -> None:
    remote = {"NEWSQA_CHROMA_HOST": "127.0.0.1", "NEWSQA_CHROMA_PORT": str(args.chroma_port)}
    for answerer, mode, workers in plan(args):
        extra = {"NEWSQA_ASK_RATE_PER_MINUTE": "0", **(remote if mode == "server" else {})}
        if answerer == "model":
            extra |= {"NEWSQA_MODEL": "fake-model", "OPENAI_BASE_URL": fake.base_url}
        env = cli_env(tmp / ("server" if mode == "server" else "local-serve"), **extra)
        label = f"{mode}-{workers}w"
        log(f"{answerer} {label}: starting")
        result = run_config(env, tmp / f"serve-{answerer}-{label}.log", workers, questions,
                            reference[answerer], args)
        results.setdefault(answerer, {})[label] = result
        log(f"{answerer} {label}: {json.dumps(result)}")
    for answerer in ("offline", "model"):
        configs = results.get(answerer, {})
        if "server-1w" in configs:
            one = configs["server-1w"]["req_per_s"] or 1.0
            configs["ratios"] = {f"{k.split('-')[1]}/1w": round(v["req_per_s"] / one, 2)
                                 for k, v in configs.items() if k.startswith("server-") and k != "server-1w"}


if __name__ == "__main__":
    sys.exit(main())
