"""Retrieval at scale: p50/p99 latency of hybrid retrieval and peak RSS at 10k, 100k and 1M chunks.

For each size, three fresh processes (so each peak RSS is its own):
1. generate (niced, `--nice`) — `bench/scale_corpus.py` writes a synthetic store of exactly that many
   chunks (real MultiHop-RAG text recombined, minilm-l3 vectors derived from a cached pool; see its
   docstring). Stores are kept in `--cache-dir` (default /tmp/newsqa-scale-cache, outside the repo) as
   `store-{size}-s{seed}-p{pool}/` and reused by later runs (delete the folder to regenerate);
2. build (niced) — `Indexes.open` on that store: builds and saves the derived indexes (BM25, quotes,
   catalog…) the first time, loads the saved ones when the store has not changed (`built` says which;
   the figures of the last real build are kept as `built.json` beside the store: `last_build`);
3. serve, at the caller's priority — `Indexes.open` (load) + `Retriever` with the real minilm-l3
   embedder, a warm-up, then the first `--questions` MultiHop-RAG dev queries with k=10 (filters read
   from the question, as in production). Per question: total latency, `Retrieval.timings_ms`, and
   ranking-only = total − embed (the query embedding does not depend on the corpus size), also as the
   CPU time of all the process's threads (less skewed by other processes than wall time, whose load
   average is noted; above wall time when ranking runs on several threads).
   VmHWM (peak RSS) and RSS after open.
`--profile` then runs the query loop again under pyinstrument and saves its hot spots (bench/out).

Goals (issue 6): p50 ≤ 20 ms and p99 ≤ 60 ms at 100k chunks; 1M chunks within 4 GB RSS.
Writes bench/out/scale.json and bench/out/scale.svg (latency and RSS against size). Progress on stderr;
ONE JSON object on the last stdout line; exit 1 when a phase failed or retrieval returned nothing.

    .venv/bin/python bench/scale.py [--sizes 10k,100k,1M] [--questions 200] [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
QUERIES = ROOT.parent / "shared" / "data" / "multihop-rag" / "queries-dev.json"
EMBEDDER = "minilm-l3"
GOALS = {"p50_ms_100k": 20.0, "p99_ms_100k": 60.0, "rss_mb_1M": 4096.0}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_size(text: str) -> int:
    t = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    try:
        n = int(float(t[:-1] if mult > 1 else t) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: expected e.g. 2000, 10k, 1M") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: must be at least 1 chunk")
    return n


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of values."""
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))], 2) if s else 0.0


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": pct(values, 50), "p95": pct(values, 95), "p99": pct(values, 99),
            "mean": round(statistics.fmean(values), 2) if values else 0.0, "max": pct(values, 100)}


class CpuTimedEmbedder:
    """The real embedder, noting the CPU time (all threads of the process) spent inside it, so that the
    CPU time of ranking alone can be told."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.dim, self.cpu_s = inner, inner.name, inner.dim, 0.0

    def embed(self, texts: Any) -> Any:
        t = time.process_time()
        try:
            return self.inner.embed(texts)
        finally:
            self.cpu_s += time.process_time() - t


# --- phases run in their own processes ---------------------------------------------------------------
def _open(data_dir: Path) -> tuple[Any, Any, dict[str, float]]:
    sys.path.insert(0, str(ROOT))
    from assistant.indexes import Indexes
    from assistant.settings import Settings
    from assistant.store import Store, make_client

    settings = Settings(data_dir=data_dir, embedder=EMBEDDER)
    t0 = time.perf_counter()
    store = Store(make_client(settings), EMBEDDER, settings.collection_prefix)
    t1 = time.perf_counter()
    indexes = Indexes.open(store, data_dir)
    t2 = time.perf_counter()
    return store, indexes, {"store_open_s": round(t1 - t0, 2), "indexes_open_s": round(t2 - t1, 2)}


def phase_build(data_dir: Path) -> dict[str, Any]:
    def saves() -> set[tuple[str, int]]:
        return {(str(m), m.stat().st_mtime_ns) for m in (data_dir / "index").glob("*/meta.json")}

    before = saves()
    store, indexes, times = _open(data_dir)
    from assistant.indexes import fingerprint  # (importable once _open has put the project on the path)

    peak, held = rss_mb("VmHWM"), rss_mb()  # before the reads below (the count loads Chroma's HNSW)
    t = time.perf_counter()
    same = fingerprint(store) == indexes.fingerprint  # what a change check costs once the token moved
    return {**times, "built": saves() != before, "chunks": len(indexes.table.ids),
            "fingerprint_s": round(time.perf_counter() - t, 2), "fingerprint_matches": same,
            "store_chunks": store.chunks.count(), "peak_rss_mb": peak, "rss_mb": held,
            # the child process that read the chunks out of a big local store (assistant/chunkread.py)
            "child_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}


def phase_serve(data_dir: Path, questions: int, profile: Path | None) -> dict[str, Any]:
    store, indexes, times = _open(data_dir)
    rss_open = rss_mb()
    sys.path.insert(0, str(ROOT))
    from assistant.embed import OnnxEmbedder
    from assistant.retrieve import Retriever

    t0 = time.perf_counter()
    embedder = CpuTimedEmbedder(OnnxEmbedder(EMBEDDER))
    retriever = Retriever(store, embedder, indexes)
    times["embedder_load_s"] = round(time.perf_counter() - t0, 2)
    qs = [q["query"] for q in json.loads(QUERIES.read_text())][:questions]
    for q in qs[-5:]:  # warm-up (not among the first measured ones when there are enough)
        retriever.retrieve(q, k=10)
    totals, ranks, rank_cpu, empty = [], [], [], 0
    stages: dict[str, list[float]] = {}
    t_loop = time.perf_counter()
    for q in qs:
        t, cpu, emb = time.perf_counter(), time.process_time(), embedder.cpu_s
        got = retriever.retrieve(q, k=10)
        ms = (time.perf_counter() - t) * 1e3
        rank_cpu.append((time.process_time() - cpu - (embedder.cpu_s - emb)) * 1e3)
        totals.append(ms)
        ranks.append(ms - got.timings_ms.get("embed", 0.0))
        for key, v in got.timings_ms.items():
            stages.setdefault(key, []).append(v)
        empty += not got.passages
    loop_s = time.perf_counter() - t_loop
    load = [round(x, 2) for x in os.getloadavg()]
    hot: dict[str, Any] = {}
    if profile is not None:  # a second pass, profiled (the timed one above ran without the profiler)
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        for q in qs:
            retriever.retrieve(q, k=10)
        session = profiler.stop()
        hot = hot_spots(session.root_frame())
        profile.write_text(profiler.output_text(unicode=False, color=False, show_all=False)
                           + "\n" + json.dumps(hot, indent=1))
        (profile.with_suffix(".html")).write_text(profiler.output_html())
    return {**({"hot_spots": hot} if hot else {}), **times, "rss_after_open_mb": rss_open,
            "peak_rss_mb": rss_mb("VmHWM"), "rss_end_mb": rss_mb(), "rss_anon_mb": rss_mb("RssAnon"),
            "rss_file_mb": rss_mb("RssFile"), "questions": len(qs),
            "queries_s": round(loop_s, 2), "loadavg_1_5_15": load, "empty": empty,
            "total_ms": summary(totals),
            "ranking_ms": summary(ranks), "ranking_cpu_ms": summary(rank_cpu),
            "stages_ms": {k: summary(v) for k, v in stages.items()},
            "chunks": len(indexes.table.ids)}


def hot_spots(root: Any, n: int = 15) -> dict[str, Any]:
    """The functions of a pyinstrument tree with the largest self and inclusive shares (%) of the time,
    over the whole loop and over ranking only (the query embedding, assistant/embed.py, left out)."""

    def is_embed(frame: Any) -> bool:  # the embedder, or CpuTimedEmbedder.embed around it
        path = frame.file_path_short or ""
        wrapper = frame.function == "embed" and path.endswith("scale.py")
        return path.endswith("assistant/embed.py") or wrapper

    embed_time: dict[int, float] = {}  # id(frame) -> time spent embedding inside it

    def embedding(frame: Any) -> float:
        if id(frame) not in embed_time:
            inner = sum(embedding(c) for c in frame.children)
            embed_time[id(frame)] = frame.time if is_embed(frame) else inner
        return embed_time[id(frame)]

    def shares(skip_embed: bool) -> dict[str, Any]:
        own: dict[str, float] = {}
        incl: dict[str, float] = {}
        stack: list[tuple[Any, frozenset[str]]] = [(root, frozenset())]
        while stack:
            frame, above = stack.pop()
            if skip_embed and is_embed(frame):
                continue
            key = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
            real = [c for c in frame.children if not c.is_synthetic]
            own[key] = own.get(key, 0.0) + frame.time - sum(c.time for c in real)
            if key not in above:  # recursion counted once
                incl[key] = incl.get(key, 0.0) + frame.time - (embedding(frame) if skip_embed else 0.0)
            stack += [(c, above | {key}) for c in real]
        total = max(root.time - (embedding(root) if skip_embed else 0.0), 1e-9)

        def top(d: dict[str, float]) -> list[str]:
            return [f"{100 * v / total:5.1f}%  {k}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:n]]

        return {"seconds": round(total, 3), "self": top(own), "inclusive": top(incl)}

    return {"all": shares(False), "ranking": shares(True)}


# --- the driver --------------------------------------------------------------------------------------
def _child(args: list[str], timeout: float, nice: int = 0) -> dict[str, Any]:
    """Run a phase in a fresh interpreter (`nice`: lower its priority); its last stdout line is its JSON."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False,
                          preexec_fn=(lambda: os.nice(nice)) if nice else None)
    for line in proc.stderr.splitlines()[-40:]:
        log(f"    | {line}")
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"{args[0]} {args[1:3]} failed with status {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_size(size: int, a: argparse.Namespace) -> dict[str, Any]:
    folder = a.cache_dir / f"store-{size}-s{a.seed}-p{a.pool_articles}"
    marker = folder / "generated.json"
    row: dict[str, Any] = {"size": size, "store": str(folder)}
    if marker.is_file():
        row["generate"] = {**json.loads(marker.read_text()), "reused": True}
        log(f"[{size:,}] reusing the store in {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
        log(f"[{size:,}] generating {folder}")
        t = time.perf_counter()
        gen = _child([str(ROOT / "bench" / "scale_corpus.py"), "--chunks", str(size), "--out", str(folder),
                      "--seed", str(a.seed), "--pool-articles", str(a.pool_articles),
                      "--cache", str(a.cache_dir)], a.timeout, a.nice)
        gen["wall_s"] = round(time.perf_counter() - t, 2)
        marker.write_text(json.dumps(gen))
        row["generate"] = {**gen, "reused": False}
    log(f"[{size:,}] generate: {row['generate']}")
    t = time.perf_counter()
    row["build"] = _child([__file__, "--phase", "build", "--dir", str(folder)], a.timeout, a.nice)
    row["build"]["wall_s"] = round(time.perf_counter() - t, 2)
    if row["build"]["built"]:  # the figures of the last real build, kept beside the store
        (folder / "built.json").write_text(json.dumps(row["build"]))
    if (folder / "built.json").is_file():
        row["last_build"] = json.loads((folder / "built.json").read_text())
    log(f"[{size:,}] build: {row['build']}")
    prof = ["--profile-out", str(OUT / f"scale-profile-{size}.txt")] if a.profile else []
    t = time.perf_counter()
    row["serve"] = _child([__file__, "--phase", "serve", "--dir", str(folder),
                           "--questions", str(a.questions), *prof], a.timeout)
    row["serve"]["wall_s"] = round(time.perf_counter() - t, 2)
    log(f"[{size:,}] serve: {json.dumps(row['serve'])}")
    return row


def check(rows: list[dict[str, Any]]) -> list[str]:
    problems = []
    for r in rows:
        if r["build"]["chunks"] != r["size"]:
            problems.append(f"{r['size']}: the indexes hold {r['build']['chunks']} chunks")
        if r["serve"]["empty"] > r["serve"]["questions"] // 2:
            problems.append(f"{r['size']}: {r['serve']['empty']} of {r['serve']['questions']} "
                            "questions got no passage")
    return problems


def goals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by = {r["size"]: r for r in rows}
    out: dict[str, Any] = {}
    if 100_000 in by:
        s = by[100_000]["serve"]["total_ms"]
        out["p50_100k_ok"] = s["p50"] <= GOALS["p50_ms_100k"]
        out["p99_100k_ok"] = s["p99"] <= GOALS["p99_ms_100k"]
    if 1_000_000 in by:
        row = by[1_000_000]
        out["rss_1M_ok"] = row["serve"]["peak_rss_mb"] <= GOALS["rss_mb_1M"]  # serving the questions
        build = row.get("last_build", row["build"])  # a build (reading the whole store through Chroma)
        out["rss_1M_build_ok"] = build["peak_rss_mb"] <= GOALS["rss_mb_1M"]
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    sys.path.append(str(ROOT / "bench"))
    from svgplot import Panel, write_svg

    lat = Panel("Retrieval latency (k=10)", "chunks", "ms", logx=True,
                goals=[(GOALS["p50_ms_100k"], "p50 goal"), (GOALS["p99_ms_100k"], "p99 goal")])
    mem = Panel("Peak RSS", "chunks", "MB", logx=True, goals=[(GOALS["rss_mb_1M"], "4 GB goal")])
    for name, key, q in (("total p50", "total_ms", "p50"), ("total p99", "total_ms", "p99"),
                         ("ranking p50", "ranking_ms", "p50"), ("ranking p99", "ranking_ms", "p99"),
                         ("ranking CPU p50", "ranking_cpu_ms", "p50")):
        lat.series[name] = [(r["size"], r["serve"][key][q]) for r in rows]
    for name, phase in (("serve", "serve"), ("index build", "last_build"), ("generate", "generate")):
        mem.series[name] = [(r["size"], r[phase]["peak_rss_mb"]) for r in rows if phase in r]
    write_svg(path, [lat, mem])


def code_version() -> dict[str, Any]:
    """The commit measured, and the files of the retrieval code changed in the working tree."""
    def git(*args: str) -> str:
        got = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return got.stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "changed": git("status", "--porcelain", "--", "assistant", "ingest").splitlines()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10k,100k,1M", help="comma-separated chunk counts (2000, 10k, 1M)")
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="2k and 10k chunks, 40 questions, 40-article pool")
    ap.add_argument("--profile", action="store_true", help="pyinstrument over the query loop (bench/out)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool-articles", type=int, default=0, help="real articles in the pool (0 = all 609)")
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/newsqa-scale-cache"))
    ap.add_argument("--nice", type=int, default=10, help="niceness of the generate and build phases "
                    "(the serve phase, which is timed, runs at the caller's)")
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="seconds allowed to each phase")
    ap.add_argument("--phase", choices=["build", "serve"], help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.phase:
        res = phase_build(a.dir) if a.phase == "build" else phase_serve(a.dir, a.questions, a.profile_out)
        print(json.dumps(res))
        return
    if a.quick:
        a.sizes, a.questions, a.pool_articles = "2000,10k", min(a.questions, 40), a.pool_articles or 40
    sizes = sorted({parse_size(s) for s in a.sizes.split(",") if s.strip()})
    OUT.mkdir(parents=True, exist_ok=True)
    a.cache_dir.mkdir(parents=True, exist_ok=True)
    rows, failed = [], []
    for size in sizes:
        try:
            rows.append(run_size(size, a))
        except (RuntimeError, subprocess.TimeoutExpired) as err:
            log(f"[{size:,}] FAILED: {err}")
            failed.append(f"{size}: {err}")
    problems = failed + check(rows)
    name = "scale-quick" if a.quick else "scale"
    result = {"sizes": sizes, "questions": a.questions, "code": code_version(), "rows": rows,
              "goals": goals(rows), "problems": problems, "json": str(OUT / f"{name}.json"),
              "svg": str(OUT / f"{name}.svg")}
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=1))
    if rows:
        plot(rows, OUT / f"{name}.svg")
    print(json.dumps(result))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
