"""Stress: hostile input files mixed with good articles, ingested by the real CLI (issue 5).

`stress/hostile_gen.py: generate(folder, n_bad, n_good)` writes hostile inputs across 30+ families and
good MultiHop-RAG articles, with a manifest of what each must yield (titles; for a bad one, a regex its
failure reason matches). `check(manifest, failures, stored)` lists every way the run fell short of it.

    .venv/bin/python stress/hostile.py [--quick] [--bad N] [--good N]

The full run ingests the folder with `python -m assistant.cli ingest DIR --json` in a subprocess (timeout,
peak RSS from RUSAGE_CHILDREN). Progress on stderr; the last stdout line is one JSON object; exit 1 when
a check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from stress.hostile_gen import SECRET, Expect, Manifest, generate  # noqa: E402


# --- checking a run against the manifest ----------------------------------------------------------------
def _norm(title: str) -> str:
    return re.sub(r"\s+", " ", title).strip()


def _owner(path: str, known: dict[str, Expect]) -> Expect | None:
    """The manifest entry of a failure path (`file`, `file#3` item, `file:7` line)."""
    for candidate in (path, path.rsplit("#", 1)[0], path.rsplit(":", 1)[0]):
        if candidate in known:
            return known[candidate]
    return None


def check(manifest: Manifest, failures: list[dict], stored: list[tuple[str, str]]) -> list[str]:
    """Every way a run fell short: `failures` as the report's, `stored` as (title, body) of the store."""
    known = {e.path: e for e in manifest.files}
    problems, seen = [], Counter[str]()
    for failure in failures:
        owner = _owner(failure["path"], known)
        if owner is None or owner.reason is None:
            problems.append(f"unexpected failure: {failure['path']}: {failure['error']}")
        elif not re.search(owner.reason, failure["error"], re.I):
            problems.append(f"{owner.family}: reason does not name the problem: {failure['error']!r}")
        if owner is not None:
            seen[owner.path] += 1
    titles = {_norm(t) for t, _ in stored}
    for e in manifest.files:
        if e.reason is not None and not seen[e.path]:
            problems.append(f"{e.family}: bad input not reported: {e.path}")
        problems.extend(
            f"{e.family}: article missing from the store: {t!r}" for t in e.titles if _norm(t) not in titles
        )
    for title, body in stored:
        if SECRET in body or SECRET in title or "root:x:0:0" in body:
            problems.append(f"a local file's content reached the store (XXE or link): {title!r}")
    return problems


def stored_articles(data_dir: Path) -> list[tuple[str, str]]:
    """(title, body) of every article in the store under `data_dir` (the minilm-l3 collections)."""
    from assistant.embed import embedder_key
    from assistant.settings import Settings
    from assistant.store import Store, make_client

    settings = Settings(data_dir=data_dir, embedder="minilm-l3")
    store = Store(make_client(settings), embedder_key(settings), settings.collection_prefix)
    return [(meta.get("title", ""), body or "") for _, meta, body in store.all_records(include_body=True)]


def run_cli(folder: Path, data_dir: Path, timeout: float) -> tuple[dict, float, float]:
    """(report, wall seconds, peak RSS MB of the child) of `newsqa ingest folder --json`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")}
    env.update(NEWSQA_DATA_DIR=str(data_dir), NEWSQA_EMBEDDER="minilm-l3", PYTHONPATH=str(ROOT))
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "ingest", str(folder), "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall = time.monotonic() - start
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"ingest exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall, rss_mb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="~300 hostile + 20 good, no 50 MB file (< 1 min)")
    ap.add_argument("--bad", type=int, default=None)
    ap.add_argument("--good", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--rss-limit-mb", type=float, default=1536)
    args = ap.parse_args()
    n_bad, n_good = (args.bad or (300 if args.quick else 1200)), (args.good or (20 if args.quick else 110))
    with tempfile.TemporaryDirectory(prefix="newsqa-hostile-") as tmp:
        folder = Path(tmp) / "inputs"
        t0 = time.monotonic()
        manifest = generate(
            folder, n_bad, n_good, big=not args.quick, feed_items=1000 if args.quick else 10_000
        )
        gen_s = time.monotonic() - t0
        bad = [e for e in manifest.files if e.reason is not None]
        print(
            f"generated {len(manifest.files)} inputs ({len(bad)} bad) in {gen_s:.1f}s; ingesting…",
            file=sys.stderr,
        )
        report, wall, rss_mb = run_cli(folder, Path(tmp) / "data", args.timeout)
        stored = stored_articles(Path(tmp) / "data")
    problems = check(manifest, report["failed"], stored)
    if rss_mb > args.rss_limit_mb:
        problems.append(f"peak RSS {rss_mb:.0f} MB over the {args.rss_limit_mb:.0f} MB bound")
    reasons = Counter(re.sub(r"[\d,]+", "N", f["error"])[:90] for f in report["failed"])
    for line in problems[:40]:
        print("PROBLEM:", line, file=sys.stderr)
    print(
        json.dumps(
            {
                "ok": not problems,
                "inputs": len(manifest.files),
                "bad_inputs": len(bad),
                "good_articles_expected": sum(len(e.titles) for e in manifest.files),
                "families": manifest.by_family(),
                "report": {
                    k: report[k]
                    for k in ("added", "updated", "unchanged", "duplicates", "articles", "chunks")
                },
                "failures": len(report["failed"]),
                "top_reasons": dict(reasons.most_common(25)),
                "problems": problems[:40],
                "n_problems": len(problems),
                "generate_s": round(gen_s, 1),
                "ingest_wall_s": round(wall, 1),
                "peak_rss_mb": round(rss_mb),
                "rss_limit_mb": args.rss_limit_mb,
            }
        )
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
