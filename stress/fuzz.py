"""Stress: schemathesis fuzzes every operation of the API's own OpenAPI spec, with many examples.

The harness of tests/test_fuzz.py (real store in a temp dir, real uvicorn on 127.0.0.1, every phase and
check of schemathesis plus ours), at a much larger size and with a random (reported, reusable) seed:

  1. every operation, offline answerer, /ingest with the token;
  2. /ingest without the token (all 401) and on a server with no token configured (all 403);
  3. /ask and /ask/stream answered by the scripted model server (tests/fake_openai.py), whose replies echo
     the fuzzed question with citations in and out of range.

The rate limit is off (NEWSQA_ASK_RATE_PER_MINUTE=0), else the questions would mostly be 429s.

    .venv/bin/python stress/fuzz.py [--quick] [--examples N] [--seed S]

Progress goes to stderr; the last stdout line is one JSON object: cases run, 5xx count, check violations
(with a curl to reproduce the first ones), engine errors, wall time, per-run status counts. Exits 1 when
any 5xx, violation or engine error was seen.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_openai import FakeOpenAIServer  # noqa: E402
from test_api import served  # noqa: E402
from test_fuzz import QUESTION, FuzzRun, build_service, fuzz, fuzz_settings  # noqa: E402

from assistant.answer import Answerer  # noqa: E402
from assistant.embed import OnnxEmbedder  # noqa: E402
from assistant.llm import OpenAILLM  # noqa: E402
from assistant.service import Service  # noqa: E402


def log(message: str) -> None:
    print(f"[fuzz] {message}", file=sys.stderr, flush=True)


def base(client: Any) -> str:
    return str(client.base_url).rstrip("/")


def offline(service: Service, examples: int, seed: int) -> FuzzRun:
    with served(service.settings, service) as client:
        return fuzz(base(client), examples, seed=seed)


def no_token(service: Service, examples: int, seed: int) -> FuzzRun:
    with served(service.settings, service) as client:
        return fuzz(base(client), examples, token=None, paths=["/ingest"], seed=seed)


def token_off(service: Service, examples: int, seed: int, tmp: Path) -> FuzzRun:
    settings = fuzz_settings(tmp / "off", api_token=None)
    with served(settings, service) as client:  # 403 whatever is sent: "missing header → 401" cannot hold
        return fuzz(base(client), examples, paths=["/ingest"], skip_checks=("missing_required_header",),
                    seed=seed)


def model(service: Service, examples: int, seed: int) -> tuple[FuzzRun, int]:
    with FakeOpenAIServer() as llm_server:
        llm_server.default = lambda messages: (
            f"{_last_user(messages)[:300]} [1] [2] [{random.Random(len(messages)).randint(0, 99)}].")
        with OpenAILLM("fake-model", base_url=llm_server.base_url, timeout_s=5, max_retries=0) as llm:
            answerer = Answerer(service.retriever, service.answerer.extractive, llm)
            with served(service.settings, dataclasses.replace(service, answerer=answerer)) as client:
                run = fuzz(base(client), examples, paths=["/ask", "/ask/stream"], question_prefix=QUESTION,
                           seed=seed)
        return run, len(llm_server.requests)


def _last_user(messages: list[dict[str, Any]]) -> str:
    return next((str(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")


def summarize(run: FuzzRun, wall_s: float) -> dict[str, Any]:
    statuses: dict[str, dict[str, int]] = {}
    for (op, status), n in sorted(run.statuses.items()):
        statuses.setdefault(op, {})[str(status)] = n
    return {"cases": run.cases, "server_errors": run.server_errors, "violations": len(run.failures),
            "engine_errors": len(run.errors), "wall_s": round(wall_s, 1), "statuses": statuses}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (< 1 min)")
    parser.add_argument("--examples", type=int, help="examples per operation and phase (500; quick: 10)")
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 30), help="Hypothesis seed")
    args = parser.parse_args()
    examples = args.examples or (10 if args.quick else 500)
    started = time.monotonic()
    runs: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="newsqa-fuzz-") as tmp_dir:
        tmp = Path(tmp_dir)
        os.chdir(tmp)  # nothing may land in the repo (schemathesis' and Hypothesis' own files included)
        log(f"building the store (seed article + {4 if args.quick else 12} corpus articles)")
        service = build_service(tmp / "store", OnnxEmbedder("minilm-l3", batch_size=32),
                                articles=4 if args.quick else 12)
        plan: list[tuple[str, int, Callable[[], Any]]] = [
            ("offline", examples, lambda: offline(service, examples, args.seed)),
            ("ingest_without_token", max(5, examples // 5), lambda: no_token(service, max(5, examples // 5),
                                                                             args.seed)),
            ("ingest_token_off", max(5, examples // 5), lambda: token_off(service, max(5, examples // 5),
                                                                         args.seed, tmp)),
            ("model", max(5, examples // 2), lambda: model(service, max(5, examples // 2), args.seed)),
        ]
        for name, n, step in plan:
            log(f"{name}: {n} examples per operation and phase (seed {args.seed})")
            t = time.monotonic()
            result = step()
            run, model_calls = result if isinstance(result, tuple) else (result, None)
            runs[name] = summarize(run, time.monotonic() - t)
            if model_calls is not None:
                runs[name]["model_calls"] = model_calls
            failures += [f"{name}: {line}" for line in run.report().split("\n") if run.failures or run.errors]
            log(f"{name}: {run.cases} cases, {run.server_errors} 5xx, {len(run.failures)} violations, "
                f"{runs[name]['wall_s']} s")
    totals = {key: sum(r[key] for r in runs.values())
              for key in ("cases", "server_errors", "violations", "engine_errors")}
    ok = not any(totals[k] for k in ("server_errors", "violations", "engine_errors"))
    ok = ok and runs["model"].get("model_calls", 0) > 0
    for line in failures[:40]:
        log(line)
    print(json.dumps({"ok": ok, **totals, "wall_s": round(time.monotonic() - started, 1), "seed": args.seed,
                      "examples": examples, "failures": failures[:20], "runs": runs}, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
