"""Load test of the HTTP API: /ask (scripted model) and /articles under many concurrent clients, and
an ingest over HTTP while both are queried — errors, latency percentiles, throughput, torn reads.

    .venv/bin/python stress/load.py [--quick] [--data-dir D] [--clients N] [--seconds S] [--keep-log F]

Builds a store in a temp dir (the MultiHop-RAG articles minus a held-back set, embedder minilm-l3) —
or copies the one in --data-dir (built there first if missing) — serves it with `newsqa serve` in a
subprocess (scripted model: tests/fake_openai.py, answering instantly with the first sentence of
passage [1]), then three phases of N clients each: /ask; /articles (random q, source, offset, limit;
half followed by /articles/{id}); mixed — the held-back articles POSTed to /ingest in batches while
clients ask and browse. Torn-read invariants (violations fail the run): every /articles item and
every /ask citation is fetchable by /articles/{id} with chunks 0..n-1 slicing its body; /health
counts never decrease; afterwards every ingested article is listed, and /health counts them all.
An answer the model failed on ("model failed: …") is a failure too; other fallbacks (the scripted
sentence judged not to answer the question) are only counted. The server log's tracebacks and 5xx
lines are counted (its exception lines listed).
The load generator runs on the same cores as the server (2 here): its CPU share is reported.
Prints progress to stderr and one JSON object last on stdout; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from stress.load_checks import Checker, Recorder  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CORPUS, QUERIES = DATA / "multihop-rag" / "corpus.json", DATA / "multihop-rag" / "queries-dev.json"
TOKEN = "load-test-token"
Worker = Callable[[httpx.AsyncClient, random.Random], Awaitable[None]]


def log(message: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def scripted_reply(messages: list[dict[str, Any]]) -> str:
    """The scripted model's answer: the first sentence of passage [1], citing it."""
    user = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
    found = re.search(r'<passage n="1">\s*\[1\][^\n]*\n(.*?)</passage>', user, re.S)
    text = " ".join((found.group(1) if found else "The passages report it.").split())
    return re.split(r"(?<=[.!?])\s+", text, maxsplit=1)[0].rstrip(".") + " [1]."


def async_client(base_url: str, clients: int) -> httpx.AsyncClient:
    """Idle connections are dropped well before the server closes them (uvicorn: 30 s as `newsqa serve`
    runs it), so a request never races the server closing its connection (a transport ReadError)."""
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4,
                          keepalive_expiry=2.0)
    return httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits)


async def run_workers(client: httpx.AsyncClient, workers: list[Worker], stop: asyncio.Event,
                      seed: int = 0) -> None:
    """Each worker in its own loop (own seeded rng) until `stop` is set."""
    async def loop(n: int, worker: Worker) -> None:
        rng = random.Random(seed * 1000 + n)
        while not stop.is_set():
            await worker(client, rng)

    await asyncio.gather(*(loop(n, w) for n, w in enumerate(workers)))


async def timed_phase(base_url: str, workers: list[Worker], seconds: float) -> float:
    stop = asyncio.Event()
    async with async_client(base_url, len(workers)) as client:
        t0 = time.perf_counter()
        runner = asyncio.ensure_future(run_workers(client, workers, stop))
        await asyncio.sleep(seconds)
        stop.set()
        await runner
        return time.perf_counter() - t0


async def ingest_batches(client: httpx.AsyncClient, rec: Recorder, batches: list[list[dict]],
                         pause_s: float = 1.0) -> dict[str, int]:
    """POST each batch to /ingest as one JSON file; the summed report."""
    total = {"added": 0, "duplicates": 0, "updated": 0, "unchanged": 0, "failed": 0}
    for n, batch in enumerate(batches):
        data = json.dumps(batch).encode()
        r = await rec.call(client, "ingest", "POST", "/ingest", timeout=900,
                           files=[("files", (f"batch-{n}.json", data, "application/json"))],
                           headers={"Authorization": f"Bearer {TOKEN}"})
        if r is not None:
            report = r.json()
            for key in total:
                total[key] += len(report[key]) if key == "failed" else report[key]
            log(f"ingest batch {n + 1}/{len(batches)}: {report['added']} added, store {report['articles']}")
        await asyncio.sleep(pause_s)
    return total


async def mixed_phase(base_url: str, checker: Checker, clients: int, batches: list[list[dict]],
                      min_seconds: float, tail_s: float = 3.0) -> tuple[float, dict[str, int]]:
    """Clients ask (verifying citations) and browse (verifying an item each) while batches are ingested."""
    ask: Worker = lambda c, r: checker.ask(c, r, verify=True)  # noqa: E731
    browse: Worker = lambda c, r: checker.articles(c, r, detail=1.0)  # noqa: E731
    workers = [ask if n % 2 == 0 else browse for n in range(clients)] + [checker.health]
    stop = asyncio.Event()
    async with async_client(base_url, len(workers) + 1) as client:
        t0 = time.perf_counter()
        runner = asyncio.ensure_future(run_workers(client, workers, stop, seed=7))
        await asyncio.sleep(1.0)
        report = await ingest_batches(client, checker.rec, batches)
        await asyncio.sleep(max(tail_s, min_seconds - (time.perf_counter() - t0)))
        stop.set()
        await runner
        return time.perf_counter() - t0, report


async def findable(base_url: str, checker: Checker, records: list[dict], base_articles: int,
                   report: dict[str, int]) -> dict[str, Any]:
    """After the ingest: each new article listed by its title and fetchable; /health counts them all."""
    rec, found = checker.rec, 0
    async with async_client(base_url, 4) as client:
        for record in records:
            params = {"q": record["title"], "limit": 100}
            r = await rec.call(client, "after", "GET", "/articles", params=params)
            item = next((i for i in r.json()["items"] if i["title"] == record["title"]), None) if r else None
            if item is not None and await checker.article(client, item["id"], "after"):
                found += 1
        r = await rec.call(client, "after", "GET", "/health")
        articles = r.json()["articles"] if r else -1
    if report["failed"] or report["added"] + report["duplicates"] != len(records):
        rec.violation("ingest_report", f"{report} for {len(records)} articles")
    if found != report["added"] or articles != base_articles + report["added"]:
        rec.violation("findable_after", f"{found} listed of {report['added']} added; health {articles}"
                      f" != {base_articles} + {report['added']}")
    return {"listed": found, "health_articles": articles}


# --- the store, the server and the run ------------------------------------------------------------------


def split_corpus(quick: bool, hold: int) -> tuple[list[dict], list[dict]]:
    """(records for the initial store, records held back for the mixed phase)."""
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    if quick:
        corpus = sorted(corpus, key=lambda r: (len(r["body"]), r["url"]))[:36]
    held = random.Random(5).sample(corpus, hold)
    urls = {r["url"] for r in held}
    return [r for r in corpus if r["url"] not in urls], held


def server_env(data_dir: Path, llm_url: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSQA_", "OPENAI_"))}
    env.update(NEWSQA_DATA_DIR=str(data_dir), NEWSQA_EMBEDDER="minilm-l3", NEWSQA_ASK_RATE_PER_MINUTE="0",
               NEWSQA_MODEL="scripted", NEWSQA_API_TOKEN=TOKEN, OPENAI_BASE_URL=llm_url,
               OPENAI_API_KEY="unused", PYTHONPATH=str(ROOT))
    return env


def build_store(data_dir: Path, records: list[dict], work: Path) -> None:
    """Ingest `records` into data_dir with the CLI (skipped when it already holds a store)."""
    if (data_dir / "chroma").is_dir():
        log(f"reusing the store in {data_dir}")
        return
    source = work / "initial.json"
    source.write_text(json.dumps(records), encoding="utf-8")
    log(f"ingesting {len(records)} articles into {data_dir} (minilm-l3)")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "assistant.cli", "ingest", str(source), "--json"], cwd=work,
                   env=server_env(data_dir), check=True, stdout=subprocess.DEVNULL)
    log(f"ingested in {time.perf_counter() - t0:.0f} s")


def start_server(data_dir: Path, llm_url: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (work / "server.log").open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--host", "127.0.0.1",
                                 "--port", str(port)], cwd=work, env=server_env(data_dir, llm_url),
                                stdout=out, stderr=subprocess.STDOUT)
    base_url, deadline, last = f"http://127.0.0.1:{port}", time.monotonic() + 120, ""
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            response = httpx.get(f"{base_url}/health", timeout=5)
            if response.status_code == 200:
                return proc, base_url
            last = f"HTTP {response.status_code} {response.text[:300]}"
        except httpx.HTTPError as err:
            last = repr(err)
        time.sleep(0.2)
    proc.kill()
    proc.wait(10)
    raise RuntimeError(f"the server did not come up ({last}): {(work / 'server.log').read_text()[-3000:]}")


def cpu_s(pid: int | None = None) -> float:
    """CPU seconds used so far by process `pid` (None: this process)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(name: str, server_pid: int, run: Callable[[], Awaitable[Any]]) -> tuple[Any, dict]:
    log(f"phase {name} ...")
    before = (cpu_s(server_pid), cpu_s())
    result = await run()
    seconds = result[0] if isinstance(result, tuple) else result
    cpu = {"server_cores": round((cpu_s(server_pid) - before[0]) / seconds, 2),
           "load_generator_cores": round((cpu_s() - before[1]) / seconds, 2)}
    return result, {"seconds": round(seconds, 1), "cpu": cpu}


def checker_for(held: list[dict], corpus: list[dict]) -> Checker:
    questions = [q["query"] for q in json.loads(QUERIES.read_text(encoding="utf-8"))]
    vocab = sorted({w.lower() for r in corpus for w in re.findall(r"[A-Za-z]{4,}", r["title"])})
    sources = sorted({r["source"] for r in corpus})
    return Checker(Recorder(), questions, vocab, sources, model="scripted")


async def phases(args: argparse.Namespace, base_url: str, pid: int, held: list[dict],
                 corpus: list[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    health = httpx.get(f"{base_url}/health", timeout=30).json()
    out["store"] = {"articles": health["articles"], "chunks": health["chunks"]}
    n, seconds = args.clients, args.seconds
    checker = checker_for(held, corpus)
    _, out["ask"] = await measured("ask", pid, lambda: timed_phase(base_url, [checker.ask] * n, seconds))
    out["ask"]["endpoints"] = checker.rec.summary(out["ask"]["seconds"])
    await verify_cited(base_url, checker, out["ask"])
    browse = checker_for(held, corpus)
    _, out["articles"] = await measured("articles", pid,
                                        lambda: timed_phase(base_url, [browse.articles] * n, seconds))
    out["articles"]["endpoints"] = browse.rec.summary(out["articles"]["seconds"])
    mixed = checker_for(held, corpus)
    mixed.questions += [f"What did {r['source']} report in \"{r['title']}\"?" for r in held] * 20
    size = -(-len(held) // args.batches)
    batches = [held[i : i + size] for i in range(0, len(held), size)]
    (_, report), out["mixed"] = await measured(
        "mixed", pid, lambda: mixed_phase(base_url, mixed, n, batches, seconds))
    out["mixed"]["endpoints"] = mixed.rec.summary(out["mixed"]["seconds"])
    out["mixed"]["ingest"] = {**report, "batches": len(batches)}
    out["mixed"]["after"] = await findable(base_url, mixed, held, out["store"]["articles"], report)
    for name, c in (("ask", checker), ("articles", browse), ("mixed", mixed)):
        out[name].update(violations=c.rec.violations, samples=c.rec.samples, fallbacks=c.fallbacks)
    out["ok"] = not (checker.rec.failures or browse.rec.failures or mixed.rec.failures)
    return out


async def verify_cited(base_url: str, checker: Checker, phase: dict[str, Any]) -> None:
    """After the /ask phase: every cited article fetchable, with chunks slicing its body."""
    async with async_client(base_url, 8) as client:
        for article_id in sorted(checker.cited):
            await checker.article(client, article_id, "article(cited, after)")
    phase["cited_articles"] = len(checker.cited)


def server_log_errors(path: Path) -> dict[str, Any]:
    """Tracebacks and 5xx responses in the server's log, and its distinct exception lines (counted)."""
    text = path.read_text(errors="replace")
    raised: dict[str, int] = {}
    for line in re.findall(r"^[A-Za-z_][\w.]*(?:Error|Exception)\b.*$", text, re.M):
        raised[line[:160]] = raised.get(line[:160], 0) + 1
    return {"tracebacks": text.count("Traceback"), "http_5xx": len(re.findall(r'" 5\d\d ', text)),
            "exceptions": dict(sorted(raised.items(), key=lambda kv: -kv[1])[:10])}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="10 clients x 10 s over a 30-article store")
    p.add_argument("--data-dir", type=Path, help="build the base store here once, reuse it after (copied)")
    p.add_argument("--clients", type=int)
    p.add_argument("--seconds", type=float)
    p.add_argument("--hold-back", type=int, help="articles ingested during the mixed phase")
    p.add_argument("--batches", type=int, default=4, help="POST /ingest calls in the mixed phase")
    p.add_argument("--keep-log", type=Path, help="copy the server's log here")
    args = p.parse_args()
    args.clients = args.clients or (10 if args.quick else 50)
    args.seconds = args.seconds or (10.0 if args.quick else 60.0)
    args.hold_back = args.hold_back or (6 if args.quick else 40)
    return args


def main() -> int:
    args = parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from fake_openai import FakeOpenAIServer

    initial, held = split_corpus(args.quick, args.hold_back)
    with tempfile.TemporaryDirectory(prefix="newsqa-load-") as tmp, FakeOpenAIServer() as llm:
        work = Path(tmp)
        llm.default = scripted_reply
        data_dir = work / "data"
        if args.data_dir:
            build_store(args.data_dir.resolve(), initial, work)
            shutil.copytree(args.data_dir.resolve(), data_dir)
        else:
            build_store(data_dir, initial, work)
        proc, base_url = start_server(data_dir, llm.base_url, work)
        try:
            log("warming up (the server opens the store and its indexes on first use)")
            httpx.post(f"{base_url}/ask", json={"question": "warm up"}, timeout=600)
            out = asyncio.run(phases(args, base_url, proc.pid, held, initial + held))
        finally:
            proc.terminate()
            proc.wait(30)
        out = {"mode": "quick" if args.quick else "full", "clients": args.clients, "cores": os.cpu_count(),
               "note": "server and load generator share these cores", **out,
               "server_log": server_log_errors(work / "server.log")}
        out["ok"] = out["ok"] and not (out["server_log"]["tracebacks"] or out["server_log"]["http_5xx"])
        if args.keep_log:
            shutil.copy(work / "server.log", args.keep_log)
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
