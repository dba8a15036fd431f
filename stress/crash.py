"""Crash check on a real corpus: ingest killed with SIGKILL at random moments, then rerun to the end,
must leave exactly the store a clean run leaves (article ids, content hashes, chunk ids, counts).

Usage: bench/crash_check.py [--limit N] [--kills K] [--embedder minilm-l3] [INPUT...]
(defaults: the seed article plus MultiHop-RAG's corpus). Prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.settings import Settings  # noqa: E402
from assistant.store import Store, make_client  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def run_cli(data_dir: Path, embedder: str, inputs: list[str], kill_after: float | None = None) -> dict | None:
    env = {**os.environ, "NEWSQA_DATA_DIR": str(data_dir), "NEWSQA_EMBEDDER": embedder,
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "ingest", *inputs, "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return None
    out, _ = proc.communicate()
    return json.loads(out.strip().splitlines()[-1])


def snapshot(data_dir: Path, embedder: str) -> dict:
    store = Store(make_client(Settings(data_dir=data_dir)), embedder)
    records = {i: (m.get("content_hash"), m.get("status"), m.get("n_chunks"))
               for i, m, _ in store.all_records()}
    return {"records": records, "chunk_ids": store.chunk_ids(), "stats": store.stats()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs", nargs="*")
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--embedder", default="minilm-l3")
    ap.add_argument("--limit", type=int, default=0, help="only the first N corpus articles")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        inputs = args.inputs
        if not inputs:
            corpus = json.loads((SHARED / "multihop-rag" / "corpus.json").read_text())
            if args.limit:
                corpus = corpus[: args.limit]
            (Path(tmp) / "corpus.json").write_text(json.dumps(corpus))
            inputs = [str(SHARED / "seed" / "000_3cd6c6f1fd595990.txt"), str(Path(tmp) / "corpus.json")]
        clean_dir, crash_dir = Path(tmp) / "clean", Path(tmp) / "crash"
        t0 = time.perf_counter()
        clean = run_cli(clean_dir, args.embedder, inputs)
        clean_s = time.perf_counter() - t0
        kills = 0
        for _ in range(args.kills):
            delay = rng.uniform(1.5, max(2.0, clean_s * 0.9))
            if run_cli(crash_dir, args.embedder, inputs, kill_after=delay) is None:
                kills += 1
        resumed = run_cli(crash_dir, args.embedder, inputs)
        again = run_cli(crash_dir, args.embedder, inputs)
        a, b = snapshot(clean_dir, args.embedder), snapshot(crash_dir, args.embedder)
        result = {
            "clean": clean, "resumed": resumed, "second_run": again, "kills": kills,
            "same_records": a["records"] == b["records"], "same_chunk_ids": a["chunk_ids"] == b["chunk_ids"],
            "same_stats": a["stats"] == b["stats"], "chunks": len(a["chunk_ids"]),
            "clean_s": round(clean_s, 1),
        }
        print(json.dumps(result))


if __name__ == "__main__":
    main()
