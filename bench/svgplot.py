"""SVG plot: a tiny dependency-free line-plot writer for the bench scripts (no matplotlib here).

`Panel` holds named series of (x, y) points, optional log axes and dashed horizontal goal lines;
`write_svg(path, panels)` lays the panels side by side in one standalone SVG file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
W, H = 460, 320  # one panel
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 36, 48


@dataclass
class Panel:
    title: str
    xlabel: str
    ylabel: str
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    logx: bool = False
    logy: bool = False
    goals: list[tuple[float, str]] = field(default_factory=list)  # dashed horizontal lines (y, label)


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / 5
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if raw <= step * m)
    return [step * i for i in range(math.floor(lo / step), math.ceil(hi / step) + 1)]


def _fmt(v: float) -> str:
    for unit, div in (("M", 1e6), ("k", 1e3)):
        if abs(v) >= div:
            return f"{v / div:g}{unit}"
    return f"{v:g}"


def _panel_svg(p: Panel, ox: int) -> list[str]:
    pts = [pt for s in p.series.values() for pt in s] + [(math.nan, g) for g, _ in p.goals]
    xs = [x for x, _ in pts if not math.isnan(x) and (x > 0 or not p.logx)]
    ys = [y for _, y in pts if y > 0 or not p.logy]
    if not xs or not ys:
        raise ValueError(f"panel {p.title!r} has no points to plot")
    xt = _ticks(min(xs), max(xs), p.logx)
    yt = _ticks(0 if not p.logy else min(ys), max(ys), p.logy)
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]
    t = (math.log10 if p.logx else float)
    u = (math.log10 if p.logy else float)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def sx(x: float) -> float:
        return ox + LEFT + (t(x) - t(x0)) / ((t(x1) - t(x0)) or 1) * pw

    def sy(y: float) -> float:
        return TOP + ph - (u(y) - u(y0)) / ((u(y1) - u(y0)) or 1) * ph

    out = [f'<text x="{ox + W / 2}" y="20" text-anchor="middle" font-weight="bold">{escape(p.title)}</text>',
           f'<rect x="{ox + LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>',
           f'<text x="{ox + LEFT + pw / 2}" y="{H - 10}" text-anchor="middle">{escape(p.xlabel)}</text>',
           f'<text transform="translate({ox + 14},{TOP + ph / 2}) rotate(-90)" text-anchor="middle">'
           f'{escape(p.ylabel)}</text>']
    for v in xt:
        out.append(f'<line x1="{sx(v):.1f}" y1="{TOP}" x2="{sx(v):.1f}" y2="{TOP + ph}" stroke="#ddd"/>'
                   f'<text x="{sx(v):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{_fmt(v)}</text>')
    for v in yt:
        out.append(f'<line x1="{ox + LEFT}" y1="{sy(v):.1f}" x2="{ox + LEFT + pw}" y2="{sy(v):.1f}" '
                   f'stroke="#ddd"/><text x="{ox + LEFT - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">'
                   f'{_fmt(v)}</text>')
    for g, label in p.goals:
        out.append(f'<line x1="{ox + LEFT}" y1="{sy(g):.1f}" x2="{ox + LEFT + pw}" y2="{sy(g):.1f}" '
                   f'stroke="#888" stroke-dasharray="5,4"/><text x="{ox + LEFT + pw - 4}" '
                   f'y="{sy(g) - 4:.1f}" text-anchor="end" fill="#666">{escape(label)}</text>')
    for n, (name, s) in enumerate(p.series.items()):
        color = COLORS[n % len(COLORS)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(s))
        out.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>')
        out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}"/>' for x, y in s]
        out.append(f'<text x="{ox + LEFT + 8}" y="{TOP + 16 + 16 * n}" fill="{color}" stroke="white" '
                   f'stroke-width="3" paint-order="stroke">{escape(name)}</text>')
    return out


def write_svg(path: Path, panels: list[Panel]) -> Path:
    """Write the panels side by side as one SVG file; return its path."""
    body = [line for i, p in enumerate(panels) for line in _panel_svg(p, i * W)]
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W * len(panels)}" height="{H}" '
           f'font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>'
           + "\n".join(body) + "</svg>\n")
    path.write_text(svg, encoding="utf-8")
    return path
