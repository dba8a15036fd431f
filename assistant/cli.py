"""CLI: the `newsqa` command (ingest, stats, articles, delete; retrieve, ask, eval in `commands`).

Exit status: 0 when everything worked, 1 when some input failed (the good ones are kept), 2 on
usage or configuration errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from assistant import commands
from assistant.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    return Settings(**overrides)


def _open_store(settings: Settings) -> Any:
    from assistant.embed import embedder_key
    from assistant.store import Store, make_client

    return Store(make_client(settings), embedder_key(settings), settings.collection_prefix)


def _progress_factory(enabled: bool) -> Callable[[int], Callable[[int], None]] | None:
    if not enabled:
        return None

    def make(total: int) -> Callable[[int], None]:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="article", file=sys.stderr, dynamic_ncols=True)

        def step(n: int) -> None:
            bar.update(n)
            if bar.n >= total:
                bar.close()

        return step

    return make


def cmd_ingest(args: argparse.Namespace) -> int:
    from assistant.embed import make_embedder
    from ingest.pipeline import ingest

    settings = _settings(args)
    embedder = make_embedder(settings)
    store = _open_store(settings)
    report = ingest(args.inputs, store, embedder, settings, _progress_factory(sys.stderr.isatty()))
    _refresh_indexes(store, settings)
    if args.json:
        print(report.model_dump_json())
    else:
        print(f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
              f"duplicates {report.duplicates}, failed {len(report.failed)}")
        for failure in report.failed:
            print(f"  failed: {failure.path}: {failure.error}")
        print(f"store: {report.articles} articles, {report.chunks} chunks")
    return 1 if report.failed else 0


def cmd_stats(args: argparse.Namespace) -> int:
    stats = _open_store(_settings(args)).stats()
    if args.json:
        print(json.dumps(stats))
    else:
        for key, value in stats.items():
            print(f"{key:>10}: {value}")
    return 0


def cmd_articles(args: argparse.Namespace) -> int:
    rows = [
        {"id": i, "title": m.get("title", ""), "source": m.get("source", ""),
         "published_at": m.get("published_at", ""), "status": m.get("status", ""),
         **({"duplicate_of": m["duplicate_of"]} if m.get("duplicate_of") else {})}
        for i, m, _ in _open_store(_settings(args)).all_records()
    ]
    rows.sort(key=lambda r: (r["published_at"], r["id"]))
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            flag = f"  [duplicate of {r['duplicate_of']}]" if r.get("duplicate_of") else ""
            print(f"{r['id']}  {r['published_at'][:10]:10}  {r['source'][:18]:18}  {r['title'][:70]}{flag}")
    return 0


def _refresh_indexes(store: Any, settings: Settings) -> None:
    """Bring BM25 and the quote index in step with the store now, not at the first question."""
    from assistant.indexes import Indexes

    Indexes.open(store, settings.data_dir)


def cmd_delete(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _open_store(settings)
    missing = [i for i in args.ids if not store.delete(i)]
    _refresh_indexes(store, settings)
    for article_id in missing:
        print(f"no article with id {article_id}", file=sys.stderr)
    if len(missing) < len(args.ids):
        print(f"deleted {len(args.ids) - len(missing)} article(s)")
    return 1 if missing else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsqa", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--data-dir", help="data folder (default: NEWSQA_DATA_DIR or ./data)")
        p.set_defaults(func=func)
        return p

    p = command("ingest", cmd_ingest, "Ingest articles from files, folders, globs or URLs.")
    p.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    p.add_argument("--json", action="store_true", help="print one JSON summary object on stdout")
    p = command("stats", cmd_stats, "Show what the store holds.")
    p.add_argument("--json", action="store_true")
    p = command("articles", cmd_articles, "List the stored articles (id, date, outlet, title).")
    p.add_argument("--json", action="store_true")
    p = command("delete", cmd_delete, "Remove articles and all their chunks.")
    p.add_argument("ids", nargs="+", metavar="ID")
    def with_settings(name: str, func: commands.Command, help_: str) -> argparse.ArgumentParser:
        return command(name, lambda args: func(args, _settings(args)), help_)

    commands.register(with_settings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ValidationError as err:
        print(f"newsqa: invalid configuration: {err}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as err:  # e.g. a bad --since date, a missing --queries file
        print(f"newsqa: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
