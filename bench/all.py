"""Bench: run every benchmark in turn and collect the one-line JSON figures each prints last into
bench/out/<name>.json and one summary (the runner is stress/all.py's).

  ingest      pipeline vs the embedder alone (alternating rounds)
  llamaindex  newsqa's ingest vs LlamaIndex's IngestionPipeline, same corpus/embedder/Chroma
  embedders   the offline embedders' retrieval quality and speed
  startup     import time per dependency, launch → first answer
  overhead    /ask overhead beyond the model, stream first token
  scale       hybrid retrieval latency and RSS at 10k/100k/1M synthetic chunks (+ SVG plot)
  server      a `chroma run` server with 1-3 uvicorn workers vs local mode

LlamaIndex is never installed in the project's env: `llamaindex` runs in BENCH_VENV (default
.venv-bench), created on first use as a venv that sees this interpreter's packages plus the pinned
bench/requirements-llamaindex.txt.
Usage: bench/all.py [--quick] [--only NAME ...]. Exits non-zero when any bench failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import site
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["ingest", "llamaindex", "embedders", "startup", "overhead", "scale", "server"]


def _runner():
    spec = importlib.util.spec_from_file_location("stress_all", HERE.parent / "stress" / "all.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_venv(path: Path) -> str:
    """The python of a venv seeing this interpreter's packages plus LlamaIndex (made if missing)."""
    python = path / "bin" / "python"
    if not python.exists():
        print(f"== creating {path} for the LlamaIndex bench", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        inner = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                               check=True, capture_output=True, text=True).stdout.strip()
        # `import` lines of a .pth run at startup: addsitedir also reads the project env's own .pth files
        dirs = ", ".join(repr(d) for d in site.getsitepackages())
        Path(inner, "newsqa-env.pth").write_text(f"import site; list(map(site.addsitedir, ({dirs},)))\n")
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r",
                        str(HERE / "requirements-llamaindex.txt")], check=True)
    return str(python)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="each bench's short run (under a minute each)")
    ap.add_argument("--only", nargs="+", choices=BENCHES, help="run only these benches")
    args = ap.parse_args()
    names = args.only or BENCHES
    python = {}
    if "llamaindex" in names:
        python["llamaindex"] = bench_venv(Path(os.environ.get("BENCH_VENV", HERE.parent / ".venv-bench")))
    _runner().run_all(names, args.quick, HERE, python)


if __name__ == "__main__":
    main()
