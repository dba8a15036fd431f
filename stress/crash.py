"""Stress: crash safety of ingest on a real corpus — the CLI and the server killed with SIGKILL at random
moments, then rerun, must leave exactly the store and indexes of a clean run; nothing half-written shows.

  1. CLI: `newsqa ingest` of the first N MultiHop-RAG articles (plus a syndicated copy, a duplicate) is
     killed at random moments (a random progress tick plus jitter, or a random delay), round after round;
     after every kill the partial store holds only clean-run records and chunks and its indexes show no
     uncommitted article; each round ends with a completing run compared with the clean run: records,
     chunk ids, texts, metadata, stats, and the indexes (BM25 top hits + scores for fixed queries, quote
     entries and their chunks, catalog) as loaded and as rebuilt.
  2. Index save: an unchanged rerun that must rebuild the indexes is killed right before random steps of
     its save (always incl. the swap-in rename); the next open must give the clean indexes.
  3. Server: `newsqa serve` is killed at random moments of a POST /ingest multipart upload; after each
     restart /articles shows only committed articles with all their chunks and /ask cites only those;
     the final re-upload must leave the store and indexes of a clean (unkilled) server upload.

    .venv/bin/python stress/crash.py [--quick] [--articles N] [--kills K] [--save-kills S]
                                         [--server-kills S] [--seed SEED]

Progress goes to stderr; the last stdout line is one JSON object (kills per kind, mismatches, wall
times). Exits 1 when any comparison failed.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import cli_env, corpus_records, syndicated_copy, write_articles  # noqa: E402
from crashkit import (  # noqa: E402
    Run,
    Server,
    folder_state,
    half_written,
    hooked_cli,
    index_views,
    kill_while_saving,
    open_store,
    queries_for,
    save_steps,
    snapshot,
)


def log(message: str) -> None:
    print(f"[crash {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Tally:
    """Kills made and comparisons failed, for the summary."""

    def __init__(self) -> None:
        self.kills: dict[str, int] = {}
        self.checks = 0
        self.mismatches: list[str] = []

    def kill(self, kind: str) -> None:
        self.kills[kind] = self.kills.get(kind, 0) + 1

    def check(self, ok: bool, what: str) -> None:
        self.checks += 1
        if not ok:
            self.mismatches.append(what)
            log(f"MISMATCH: {what}")


def partial_ok(data_dir: Path, expected: dict, tally: Tally, where: str) -> int:
    """Check a killed run's store against the clean one; the number of committed articles."""
    store = open_store(data_dir)
    got = snapshot(store)
    tally.check(all(expected["records"].get(i) == r for i, r in got["records"].items()),
                f"{where}: a committed record differs from the clean run's")
    problems = half_written(store, data_dir)
    tally.check(not problems, f"{where}: half-written articles visible: {problems[:3]}")
    return len(got["records"])


def complete_ok(data_dir: Path, expected: tuple[dict, dict], queries: list[str], tally: Tally,
                where: str) -> None:
    store_expected, index_expected = expected
    got = snapshot(open_store(data_dir))
    for key in ("records", "chunk_ids", "chunks", "stats"):
        tally.check(got[key] == store_expected[key], f"{where}: store {key} differ from the clean run")
    opened, rebuilt = index_views(open_store(data_dir), data_dir, queries)
    for key in index_expected:
        tally.check(opened.get(key) == index_expected[key], f"{where}: opened index {key} differs")
        tally.check(rebuilt.get(key) == index_expected[key], f"{where}: rebuilt index {key} differs")


def kill_once(run: Run, rng: random.Random, committed: int, n: int, share: int,
              clean_s: float) -> tuple[int, str]:
    """Kill a run at a random progress tick within `share` articles of what is left (plus 0-50 ms), or
    at a random moment of the time the rest should take (may hit model loading or the index save)."""
    if rng.random() < 0.7:
        tick = min(n, committed + rng.randint(1, max(1, share)))
        return run.kill_at_tick(tick, rng.uniform(0, 0.05), deadline_s=clean_s * 3), f"tick {tick}"
    delay = rng.uniform(0.3, 0.3 + clean_s * (n - committed) / n)
    return run.kill_after(delay), f"{delay:.1f}s"


def cli_phase(work: Path, inputs: str, n: int, expected: tuple[dict, dict], queries: list[str],
              args: argparse.Namespace, rng: random.Random, tally: Tally, clean_s: float) -> Path:
    """Rounds of random kills, each completed and compared, until --kills; returns the last data dir."""
    made, r, crash_dir = 0, 0, work / "crashed-0"
    while made < args.kills:
        crash_dir = work / f"crashed-{r}"
        env = cli_env(crash_dir, NEWSQA_INGEST_WINDOW=str(rng.choice([8, 32, 128])))
        committed, quota = 0, min(args.kills_per_round, args.kills - made)
        for k in range(quota):
            run = Run(inputs, env)
            try:
                seen, how = kill_once(run, rng, committed, n, (n - committed) // (quota - k), clean_s)
            finally:
                run.close()
            made, before = made + 1, committed
            committed = partial_ok(crash_dir, expected[0], tally, f"cli round {r} kill {k}")
            tally.kill("cli " + ("before a commit" if committed == before else
                                 "after the last commit" if committed == n else "mid-ingest"))
            log(f"round {r} kill {k} at {how}: bar {seen}/{n}, store has {committed} articles")
            if committed == n:
                break  # all committed: further kills of this round would find nothing to do
        final = Run(inputs, env)
        try:
            report = final.finish()
        finally:
            final.close()
        tally.check(report["failed"] == [] and report["updated"] == 0, f"round {r}: final report {report}")
        complete_ok(crash_dir, expected, queries, tally, f"cli round {r}")
        log(f"round {r} completed: {report}")
        r += 1
    return crash_dir


def save_phase(crash_dir: Path, inputs: str, expected_ix: dict, queries: list[str], args: argparse.Namespace,
               rng: random.Random, tally: Tally, work: Path) -> None:
    """Kill unchanged reruns right before random steps of their index save; the next open must be clean."""
    env = cli_env(crash_dir)
    folder = crash_dir / "index" / "newsqa-chunks-minilm-l3"
    stale = work / "stale-index"
    shutil.copytree(folder, stale)  # with another fingerprint: each rerun must rebuild and save
    (stale / "meta.json").write_text(json.dumps({"fingerprint": "stale", "version": 0}))
    counted = Run(inputs, {**env, "CRASH_AT_STEP": "0"}, hooked_cli())
    try:
        shutil.rmtree(folder)
        shutil.copytree(stale, folder)
        counted.finish()
    finally:
        counted.close()
    steps = save_steps(counted.tail.decode(errors="replace"))
    renames = [i + 1 for i, e in enumerate(steps) if e == "os.rename"]
    picks = sorted(set(renames[1:]) | set(rng.sample(range(1, len(steps) + 1), args.save_kills)))
    for step in picks:
        left = kill_while_saving(crash_dir, inputs, env, stale, step)
        tally.kill("index-save")
        opened, rebuilt = index_views(open_store(crash_dir), crash_dir, queries)
        tally.check(opened == expected_ix and rebuilt == expected_ix, f"save kill at {step}: indexes differ")
        tally.check(folder_state(crash_dir) == "live", f"save kill at step {step}: leftovers stay")
        log(f"killed before save step {step}/{len(steps)} ({steps[step - 1]}): left {left}; next open clean")


TOKEN = "stress-crash-token"


def upload(url: str, files: list[Path]) -> dict | None:
    """POST /ingest the files (multipart); the report, or None when the server died meanwhile."""
    parts = [("files", (f.name, f.read_bytes(), "application/json")) for f in files]
    try:
        with httpx.Client(timeout=600) as client:
            got = client.post(f"{url}/ingest", files=parts, headers={"Authorization": f"Bearer {TOKEN}"})
    except httpx.TransportError:
        return None
    assert got.status_code == 200, got.text[:500]
    return got.json()


def restarted_ok(server: Server, client: httpx.Client, data_dir: Path, expected: dict, records: list[dict],
                 rng: random.Random, tally: Tally, where: str) -> None:
    """After a restart: /articles = the committed articles, each with all its chunks; /ask cites only them."""
    committed = {i for i, m, _ in open_store(data_dir).all_records() if m["status"] == "indexed"}
    listed = client.get(f"{server.url}/articles", params={"limit": 1}).json()["total"]
    tally.check(listed == len(committed), f"{where}: /articles lists {listed}, committed {len(committed)}")
    for article_id in rng.sample(sorted(committed), min(10, len(committed))):
        chunks = client.get(f"{server.url}/articles/{article_id}").json()["chunks"]
        tally.check(len(chunks) == expected["records"][article_id][3], f"{where}: {article_id} lacks chunks")
    for record in rng.sample(records, 2):
        got = client.post(f"{server.url}/ask", json={"question": record["title"]}, timeout=120)
        cited = {c["article_id"] for c in got.json()["citations"]} if got.status_code == 200 else {"?"}
        tally.check(cited <= committed, f"{where}: /ask {got.status_code}, cites {cited - committed}")


def server_phase(work: Path, records: list[dict], expected: tuple[dict, dict], queries: list[str],
                 kills: int, rng: random.Random, tally: Tally, request_s: float) -> None:
    """Kill `newsqa serve` at random moments of an upload, restart, check; the last upload must match a
    clean one (files in input order: the server ingests them as the clean CLI run did its one file)."""
    size = -(-len(records) // 8)
    files = [write_articles(work / f"upload-{n}.json", records[n * size : (n + 1) * size])
             for n in range(8) if records[n * size : (n + 1) * size]]
    env = {"NEWSQA_API_TOKEN": TOKEN, "NEWSQA_INGEST_WINDOW": "16"}
    with httpx.Client(timeout=120) as client:
        crash_dir, committed, made, late = work / "server-crashed", 0, 0, 0
        while made < kills and late < 3 * kills:
            server = Server(cli_env(crash_dir, **env), work / "server.log")
            try:
                server.wait_ready(client)
                if made:
                    restarted_ok(server, client, crash_dir, expected[0], records, rng, tally, f"kill {made}")
                left = 1 - committed / len(records)
                delay = rng.uniform(0.05, 0.7 * request_s * max(left, 0.1))  # (request_s: a whole CLI run)
                finished = kill_during_upload(server, files, delay)
            finally:
                server.kill()
            if finished:  # not a kill during the request: start again from an empty store
                late += 1
                shutil.rmtree(crash_dir)
                committed, request_s = 0, delay  # the whole upload took less than that
                log(f"server kill after {delay:.1f}s came after the upload finished: starting afresh")
                continue
            made += 1
            before = committed
            committed = partial_ok(crash_dir, expected[0], tally, f"server kill {made}")
            tally.kill("server " + ("before a commit" if committed == before else
                                    "after the last commit" if committed == len(records) else "mid-ingest"))
            log(f"server killed {delay:.1f}s into the upload: {committed} articles committed")
        server = Server(cli_env(crash_dir, **env), work / "server.log")
        try:
            server.wait_ready(client)
            restarted_ok(server, client, crash_dir, expected[0], records, rng, tally, "last restart")
            report = upload(server.url, files)
            tally.check(report is not None and report["failed"] == [], f"re-upload: {report}")
            log(f"re-upload: {report}")
        finally:
            server.kill()
        complete_ok(crash_dir, expected, queries, tally, "server")


def kill_during_upload(server: Server, files: list[Path], delay: float) -> bool:
    """Upload the files and SIGKILL the server `delay` s later; whether the upload had finished by then."""
    result: list[dict | None] = []
    thread = threading.Thread(target=lambda: result.append(upload(server.url, files)))
    thread.start()
    thread.join(delay)
    server.kill()
    thread.join(60)
    return bool(result and result[0] is not None)


def inputs_for(work: Path, n: int) -> tuple[list[dict], str]:
    records = corpus_records()[: n - 1]
    records.insert(len(records) // 2, syndicated_copy(records[3]))
    return records, str(write_articles(work / "articles.json", records))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small run (< 1 min)")
    ap.add_argument("--articles", type=int, default=200)
    ap.add_argument("--kills", type=int, default=20, help="CLI ingest kills")
    ap.add_argument("--kills-per-round", type=int, default=10)
    ap.add_argument("--save-kills", type=int, default=6, help="kills while saving the indexes")
    ap.add_argument("--server-kills", type=int, default=5)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    if args.quick:
        args.articles, args.kills, args.kills_per_round, args.save_kills, args.server_kills = 12, 2, 2, 0, 1
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng, tally, started = random.Random(seed), Tally(), time.perf_counter()
    timings: dict[str, float] = {}
    log(f"seed {seed}: {args.articles} articles, {args.kills} CLI kills, {args.save_kills} save kills, "
        f"{args.server_kills} server kills")
    with tempfile.TemporaryDirectory(prefix="newsqa-crash-") as tmp:
        work = Path(tmp)
        records, inputs = inputs_for(work, args.articles)
        queries = queries_for(records)
        t0 = time.perf_counter()
        clean_run = Run(inputs, cli_env(work / "clean"))
        try:
            clean = clean_run.finish()
        finally:
            clean_run.close()
        timings["clean_ingest_s"] = clean_s = time.perf_counter() - t0
        clean_store = open_store(work / "clean")
        expected = (snapshot(clean_store), index_views(clean_store, work / "clean", queries)[0])
        log(f"clean run: {clean} in {clean_s:.1f}s")
        t0 = time.perf_counter()
        crash_dir = cli_phase(work, inputs, len(records), expected, queries, args, rng, tally, clean_s)
        timings["cli_kills_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        save_phase(crash_dir, inputs, expected[1], queries, args, rng, tally, work)
        timings["save_kills_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        server_phase(work, records, expected, queries, args.server_kills, rng, tally, clean_s)
        timings["server_kills_s"] = time.perf_counter() - t0
    result = {"seed": seed, "articles": len(records), "chunks": clean["chunks"], "kills": tally.kills,
              "total_kills": sum(tally.kills.values()), "checks": tally.checks,
              "mismatches": len(tally.mismatches), "first_mismatches": tally.mismatches[:5],
              **{k: round(v, 1) for k, v in timings.items()},
              "wall_s": round(time.perf_counter() - started, 1)}
    print(json.dumps(result))
    return 1 if tally.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
