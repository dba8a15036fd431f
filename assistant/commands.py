"""Commands: `newsqa retrieve`, `ask`, `eval` and `serve` — the answer layer on the command line."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.schema import Answer, Filters, Passage
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.service import Service


def iso_date(value: str) -> date:
    """argparse type: a YYYY-MM-DD date (a bad one exits 2 naming the option and the value)."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def filters_from(args: argparse.Namespace) -> Filters | None:
    f = Filters(since=args.since, until=args.until,
                sources=list(args.source or []), categories=list(args.category or []))
    return None if f.is_empty() else f


def add_filter_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=int, default=None, help="passages to retrieve (default: NEWSQA_TOP_K)")
    p.add_argument("--since", type=iso_date, help="earliest publication date, YYYY-MM-DD")
    p.add_argument("--until", type=iso_date, help="latest publication date, YYYY-MM-DD")
    p.add_argument("--source", action="append", help="only this outlet (repeatable)")
    p.add_argument("--category", action="append", help="only this category (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _service(settings: Settings) -> Service:
    from assistant.service import open_service

    return open_service(settings)


def cmd_retrieve(args: argparse.Namespace, settings: Settings) -> int:
    service = _service(settings)
    result = service.retriever.retrieve(args.question, k=args.k or settings.top_k, filters=filters_from(args))
    if args.json:
        print(json.dumps({"question": args.question, "filters": result.filters_report(),
                          "passages": [p.model_dump() for p in result.passages],
                          "timings_ms": result.timings_ms}))
        return 0
    _print_filters(result.filters_report())
    for n, p in enumerate(result.passages, 1):
        print(f"[{n}] {p.score:.4f}  {p.title}  — {p.source}, {p.published_at[:10]}  ({p.article_id})")
        print(textwrap.indent(textwrap.shorten(p.text, 400), "     "))
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    service = _service(settings)
    answer = service.answerer.ask(args.question, filters=filters_from(args), k=args.k or settings.top_k)
    if args.json:
        print(answer.model_dump_json())
    else:
        print_answer(answer)
    return 0


def print_answer(answer: Answer) -> None:
    print(textwrap.fill(answer.answer, width=100))
    if answer.fallback:
        print(f"\n(offline extractive answer: {answer.fallback})")
    if answer.unsupported:
        print("\nNot verified against the cited passages:")
        for sentence in answer.unsupported:
            print(f"  - {sentence}")
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            print(f"  [{c.n}] {c.title} — {c.source}, {c.published_at[:10]}  {c.url}".rstrip())
            if c.quote:
                print(textwrap.indent(textwrap.fill(f"“{c.quote}”", width=94), "       "))


def _print_filters(report: dict) -> None:
    for note in report.get("from_question", []):
        print(f"filter: {note}")
    if report.get("unknown_sources"):
        print(f"not in the store: {', '.join(report['unknown_sources'])}")


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.evaluate import load_queries, run_eval
    from assistant.report import write_report

    queries = load_queries(Path(args.queries))
    if args.limit:
        queries = queries[: args.limit]
    service = _service(settings)
    k = args.k or settings.top_k

    def retrieve(question: str, k: int) -> list[Passage]:
        return service.retriever.retrieve(question, k=k).passages

    answer = None if args.no_answers else (lambda q: service.answerer.ask(q, k=k))
    bar = _bar(len(queries))
    result = run_eval(queries, retrieve, answer, k=k, progress=bar)
    summary = result.summary()
    if args.out:
        path = write_report(result, Path(args.out))
        print(f"report: {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    else:
        print(json.dumps(summary, indent=2))
    return 0


def _bar(total: int) -> Callable[[int], None]:
    from tqdm import tqdm

    bar = tqdm(total=total, unit="query", file=sys.stderr, disable=not sys.stderr.isatty())

    def step(n: int = 1) -> None:
        bar.update(n)
        if bar.n >= total:
            bar.close()

    return step


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.workers import serve

    serve(settings, host=args.host, port=args.port, workers=args.workers)
    return 0


def worker_count(value: str) -> int:
    """argparse type: a number of worker processes, 1 to 64."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= 64:
        raise argparse.ArgumentTypeError(f"not a number of workers from 1 to 64: {value!r}")
    return n


Command = Callable[[argparse.Namespace, Settings], int]


def register(command: Callable[[str, Command, str], argparse.ArgumentParser]) -> None:
    """Add retrieve, ask, eval and serve through the CLI's `command(name, func, help)` helper."""
    p = command("retrieve", cmd_retrieve, "Show the passages retrieved for a question.")
    p.add_argument("question")
    add_filter_args(p)
    p = command("ask", cmd_ask, "Answer a question from the articles, with citations.")
    p.add_argument("question")
    add_filter_args(p)
    p = command("eval", cmd_eval, "Score retrieval and answers on a question set.")
    p.add_argument("--queries", required=True, help="MultiHop-RAG JSON, or our YAML/JSONL format")
    p.add_argument("--k", type=int, default=None)
    p.add_argument("--limit", type=int, default=0, help="only the first N queries")
    p.add_argument("--no-answers", action="store_true", help="score retrieval only")
    p.add_argument("--out", help="folder for report.md, the plot and per-query rows")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p = command("serve", cmd_serve, "Serve the web UI and the HTTP API (docs at /docs).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument("--workers", type=worker_count, default=1,
                   help="worker processes (default: 1, in this process); more than 1 needs a Chroma "
                        "server (NEWSQA_CHROMA_HOST)")
