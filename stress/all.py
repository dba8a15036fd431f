"""Stress: run every stress script in turn (fuzz, hostile files, crashes, model faults, load) and collect the
one-line JSON figures each prints last into stress/out/<name>.json and one summary.

Usage: stress/all.py [--quick] [--only NAME ...]. Exits non-zero when any script's checks failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["fuzz", "hostile", "crash", "faults", "load"]


def run(name: str, quick: bool, folder: Path = HERE, python: str = sys.executable) -> dict:
    """One script's figures (its last stdout line), plus its exit code and wall time."""
    started = time.monotonic()
    cmd = [python, str(folder / f"{name}.py"), *(["--quick"] if quick else [])]
    print(f"== {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=folder.parent, stdout=subprocess.PIPE, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    try:
        figures = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        figures = {"unparsed_last_line": lines[-1][:500]}
    return {"script": name, "exit_code": proc.returncode, "wall_s": round(time.monotonic() - started, 1),
            "figures": figures}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="each script's short run (under a minute each)")
    ap.add_argument("--only", nargs="+", choices=SCRIPTS, help="run only these scripts")
    args = ap.parse_args()
    run_all(args.only or SCRIPTS, args.quick, HERE)


def run_all(names: list[str], quick: bool, folder: Path, python: dict[str, str] | None = None) -> None:
    """Run `folder/<name>.py` for each name (with `python[name]`, default this interpreter), write each
    one's figures and a summary to `folder/out/`, print the summary, exit non-zero if any failed."""
    out = folder / "out"
    out.mkdir(exist_ok=True)
    results = []
    for name in names:
        if not (folder / f"{name}.py").is_file():
            results.append({"script": name, "exit_code": 2, "wall_s": 0, "figures": {"error": "missing"}})
            continue
        result = run(name, quick, folder, (python or {}).get(name, sys.executable))
        (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"   exit {result['exit_code']} in {result['wall_s']} s", file=sys.stderr, flush=True)
        results.append(result)
    summary = {"quick": quick, "passed": all(r["exit_code"] == 0 for r in results),
               "scripts": {r["script"]: {k: r[k] for k in ("exit_code", "wall_s")} for r in results}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary))
    sys.exit(0 if summary["passed"] else 1)


if __name__ == "__main__":
    main()
