"""Report: write an `EvalResult` to a folder a person can read and a script can diff.

`write_report` writes `report.md` (summary tables, a chart, one row per query), `summary.json`
(`EvalResult.summary()`), `rows.jsonl` (one `QueryRow` per line) and `hits_by_type.svg`, a grouped bar
chart drawn by hand (no plotting library). MultiHop-RAG queries get the dataset's attribution in the footer.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from assistant.evaluate import MULTIHOP, RETRIEVAL_KEYS, EvalResult, QueryRow

CHART = "hits_by_type.svg"
ATTRIBUTION = ("Queries from MultiHop-RAG (Tang & Yang, 2024, \"MultiHop-RAG: Benchmarking "
               "Retrieval-Augmented Generation for Multi-Hop Queries\", arXiv:2401.15391), "
               "dataset licensed ODC-BY 1.0.")
# (summary key, colour) of the chart's bars; colours from Paul Tol's colour-blind-safe palette
SERIES = (("hits@4", "#4477AA"), ("hits@10", "#66CCEE"), ("mrr@10", "#228833"), ("complete@10", "#CCBB44"))
BAR, BAR_GAP, GROUP_GAP = 16, 2, 28
LEFT, RIGHT, TOP, BOTTOM, PLOT_H = 64, 24, 64, 60, 220


def label(key: str, k: int) -> str:
    """A summary key as a column heading, with the real cut-off: "hits@10" at k=5 is "Hits@5"."""
    name, cut = key.split("@")
    name = {"hits": "Hits", "mrr": "MRR", "map": "MAP"}.get(name, name)
    return f"{name}@{k if cut == '10' else cut}"


# --- chart -----------------------------------------------------------------------------------------------


def _groups(summary: dict[str, Any]) -> list[tuple[str, int, dict[str, Any]]]:
    """(name, n, scores) for "all" and each question type, skipping empty ones."""
    retrieval = summary["retrieval"]
    overall = sum(s["n"] for s in retrieval["by_type"].values())
    groups = [("all", overall, retrieval)] + [(t, s["n"], s) for t, s in retrieval["by_type"].items()]
    return [g for g in groups if g[1]]


def _text(x: float, y: float, text: str, anchor: str = "middle", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def _axes(width: int, k: int) -> list[str]:
    parts = [_text(width / 2, 22, f"Retrieval by question type (top {k})", extra=' font-weight="bold"')]
    for i in range(5):
        value = i / 4
        y = TOP + PLOT_H * (1 - value)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{width - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(_text(LEFT - 6, y + 4, f"{value:.2f}", anchor="end"))
    bottom = TOP + PLOT_H
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#333"/>')
    parts.append(f'<line x1="{LEFT}" y1="{bottom}" x2="{width - RIGHT}" y2="{bottom}" stroke="#333"/>')
    mid = TOP + PLOT_H / 2
    parts.append(_text(16, mid, "score (share of queries)", extra=f' transform="rotate(-90 16 {mid:.1f})"'))
    parts.append(_text(width / 2, TOP + PLOT_H + BOTTOM - 8, "question type (n = queries scored)"))
    return parts


def _legend(k: int) -> list[str]:
    parts = []
    for i, (key, colour) in enumerate(SERIES):
        x = LEFT + i * 110
        parts.append(f'<rect x="{x}" y="36" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + 14, 45, label(key, k), anchor="start"))
    return parts


def _bars(groups: list[tuple[str, int, dict[str, Any]]], k: int) -> list[str]:
    parts, group_w = [], len(SERIES) * (BAR + BAR_GAP) - BAR_GAP + GROUP_GAP
    for g, (name, n, scores) in enumerate(groups):
        x0 = LEFT + GROUP_GAP / 2 + g * group_w
        for i, (key, colour) in enumerate(SERIES):
            value = scores[key] or 0.0
            h = PLOT_H * value
            parts.append(f'<rect class="bar" x="{x0 + i * (BAR + BAR_GAP):.1f}" y="{TOP + PLOT_H - h:.1f}" '
                         f'width="{BAR}" height="{h:.1f}" fill="{colour}">'
                         f'<title>{escape(f"{name}: {label(key, k)} = {value:.3f}")}</title></rect>')
        centre = x0 + (group_w - GROUP_GAP) / 2
        parts.append(_text(centre, TOP + PLOT_H + 16, name.removesuffix("_query")))
        parts.append(_text(centre, TOP + PLOT_H + 30, f"n={n}", extra=' fill="#555"'))
    return parts


def chart_svg(summary: dict[str, Any], k: int) -> str:
    """Grouped bars of Hits@4, Hits@k, MRR@k and complete@k for all queries and each question type."""
    groups = _groups(summary)
    group_w = len(SERIES) * (BAR + BAR_GAP) - BAR_GAP + GROUP_GAP
    width = max(LEFT + len(groups) * group_w + RIGHT, LEFT + 110 * len(SERIES) + RIGHT)
    height = TOP + PLOT_H + BOTTOM
    body = [*_axes(width, k), *_legend(k), *_bars(groups, k)]
    if not groups:
        body.append(_text(width / 2, TOP + PLOT_H / 2, "no retrieval-scored queries"))
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">')
    background = f'<rect width="{width}" height="{height}" fill="white"/>'
    return "\n".join([head, background, *body, "</svg>"]) + "\n"


# --- markdown --------------------------------------------------------------------------------------------


def cell(value: Any) -> str:
    """A value as a Markdown table cell: floats to 3 places, None as "–", pipes escaped."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return " ".join(str(value).split()).replace("|", "\\|")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def _retrieval_section(summary: dict[str, Any], k: int) -> list[str]:
    retrieval, keys = summary["retrieval"], list(RETRIEVAL_KEYS)
    by_type = retrieval["by_type"]
    rows = [["all", sum(s["n"] for s in by_type.values()), *(retrieval[key] for key in keys)]]
    rows += [[t, s["n"], *(s[key] for key in keys)] for t, s in by_type.items()]
    return ["## Retrieval", "", *_table(["question type", "n", *(label(key, k) for key in keys)], rows), "",
            f"![Hits@4, Hits@{k}, MRR@{k} and complete@{k} by question type]({CHART})", ""]


def _answers_by_type(rows: list[QueryRow]) -> list[list[Any]]:
    groups: dict[str, list[QueryRow]] = defaultdict(list)
    for row in rows:
        if row.refused is not None:
            groups[row.type].append(row)
    table = []
    for kind in sorted(groups):
        graded = [r.correct for r in groups[kind] if r.correct is not None]
        refused = [bool(r.refused) for r in groups[kind]]
        table.append([kind, len(groups[kind]), sum(graded) / len(graded) if graded else None,
                      sum(refused) / len(refused)])
    return table


def _answers_section(result: EvalResult, summary: dict[str, Any]) -> list[str]:
    answers = summary["answers"]
    if not any(row.refused is not None for row in result.rows):
        return ["## Answers", "", "Answers were not evaluated (retrieval only).", ""]
    return ["## Answers", "", *_table(["metric", "value"], [[key, v] for key, v in answers.items()]), "",
            *_table(["question type", "n", "accuracy", "refused"], _answers_by_type(result.rows)), ""]


def _rows_section(rows: list[QueryRow]) -> list[str]:
    table = [[i, r.type, "n/a" if r.hits is None else r.first_hit or "miss", r.recall, r.refused, r.correct,
              r.question] for i, r in enumerate(rows, start=1)]
    return ["## Per query", "", *_table(["#", "type", "hit rank", "recall", "refused", "correct", "question"],
                                        table), ""]


def render_markdown(result: EvalResult, title: str) -> str:
    summary = result.summary()
    scored = sum(r.hits is not None for r in result.rows)
    intro = (f"{summary['n']} queries; retrieval scored on {scored} (top k = {result.k}) by MultiHop-RAG's "
             "rule: a passage is a hit when a gold fact occurs in it, spaces and newlines removed. Answers "
             "are correct when they share a lowercase word with the gold answer; questions that must be "
             "refused are correct only when refused.")
    lines = [f"# {title}", "", intro, "", *_retrieval_section(summary, result.k),
             *_answers_section(result, summary), *_rows_section(result.rows)]
    if MULTIHOP in result.datasets:
        lines += ["---", "", ATTRIBUTION, ""]
    return "\n".join(lines)


def write_report(result: EvalResult, out_dir: Path, title: str = "newsqa evaluation") -> Path:
    """Write report.md, summary.json, rows.jsonl and hits_by_type.svg into `out_dir`; return report.md."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out_dir / "rows.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in result.rows),
                                        encoding="utf-8")
    (out_dir / CHART).write_text(chart_svg(summary, result.k), encoding="utf-8")
    report = out_dir / "report.md"
    report.write_text(render_markdown(result, title), encoding="utf-8")
    return report
