"""Inline SVG charts (line and bar) for the self-contained HTML report; text is escaped."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from codemonkeys.report.format import usd

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d")


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    ticks = []
    v = start
    while v <= hi + 1e-9:
        ticks.append(round(v, 10))
        v += step
    return ticks


@dataclass(frozen=True)
class _Plot:
    """The plotting area of a line chart: where x = 1..n and y = 0..y_max land."""

    left: float
    top: float
    width: float
    height: float
    n: int
    y_max: float

    def x(self, x: float) -> float:
        if self.n <= 1:
            return self.left + self.width / 2
        return self.left + (x - 1) / (self.n - 1) * self.width

    def y(self, y: float) -> float:
        return self.top + self.height - (y / self.y_max) * self.height


def svg_line_chart(
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 540,
    height: int = 330,
    y_max: float = 1.0,
    percent: bool = True,
) -> str:
    """A line chart as an inline SVG string; x = 1..len(values). Text is escaped."""
    left, right, top, bottom = 56, 16, 34, 48 + 18 * ((len(series) + 1) // 2)
    height = max(height, top + bottom + 160)
    n = max((len(v) for v in series.values()), default=1)
    plot = _Plot(left, top, width - left - right, height - top - bottom, n, y_max)
    out = _svg_open(width, height, title)
    out += _axes(plot, x_label, y_label, percent)
    for i, (name, values) in enumerate(series.items()):
        out += _series(plot, i, name, values, percent)
    out.append("</svg>")
    return "".join(out)


def _svg_open(width: int, height: int, title: str) -> list[str]:
    e = html.escape
    return [
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(title)}" font-family="Helvetica, Arial, sans-serif">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">{e(title)}</text>',
    ]


def _axes(plot: _Plot, x_label: str, y_label: str, percent: bool) -> list[str]:
    e = html.escape
    left, top, pw, ph = plot.left, plot.top, plot.width, plot.height
    out = []
    for t in _nice_ticks(0, plot.y_max):
        y = plot.y(t)
        label = f"{t * 100:.0f}%" if percent else f"{t:g}"
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#555">{label}</text>'
        )
    for x in range(1, plot.n + 1, max(1, math.ceil(plot.n / 12))):
        px = plot.x(x)
        out.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#555"/>'
        )
        out.append(
            f'<text x="{px:.1f}" y="{top + ph + 17}" text-anchor="middle" font-size="11" fill="#555">{x}</text>'
        )
    out.append(
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#9ca3af"/>'
    )
    out.append(
        f'<text x="{left + pw / 2}" y="{top + ph + 34}" text-anchor="middle" font-size="12">{e(x_label)}</text>'
    )
    out.append(
        f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">{e(y_label)}</text>'
    )
    return out


def _series(plot: _Plot, i: int, name: str, values: Sequence[float], percent: bool) -> list[str]:
    """One series: its line, a point (with a tooltip) per value, its legend entry."""
    e = html.escape
    color = PALETTE[i % len(PALETTE)]
    pts = [(plot.x(j + 1), plot.y(min(max(v, 0.0), plot.y_max))) for j, v in enumerate(values)]
    out = []
    if len(pts) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.2"/>')
    for j, (x, y) in enumerate(pts):
        val = f"{values[j] * 100:.1f}%" if percent else f"{values[j]:g}"
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.2" fill="{color}"><title>{e(name)}: '
            f"{j + 1} &#8594; {val}</title></circle>"
        )
    lx = plot.left + (i % 2) * (plot.width / 2)
    ly = plot.top + plot.height + 52 + 18 * (i // 2)
    out.append(
        f'<line x1="{lx:.1f}" x2="{lx + 18:.1f}" y1="{ly - 4}" y2="{ly - 4}" stroke="{color}" stroke-width="3"/>'
    )
    out.append(f'<text x="{lx + 24:.1f}" y="{ly}" font-size="12">{e(name)}</text>')
    return out


def svg_bar_chart(
    values: Mapping[str, float],
    *,
    title: str,
    width: int = 540,
    fmt: Callable[[float | None], str] = usd,
) -> str:
    """Horizontal bars (one per key) as an inline SVG string, labelled with ``fmt`` and share."""
    e = html.escape
    items = list(values.items())
    row_h, top, left, right = 26, 34, 92, 150
    height = top + row_h * max(len(items), 1) + 12
    total = sum(v for _, v in items) or 1.0
    vmax = max((v for _, v in items), default=0.0) or 1.0
    pw = width - left - right
    out = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{e(title)}" font-family="Helvetica, Arial, sans-serif">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">{e(title)}</text>',
    ]
    for i, (name, v) in enumerate(items):
        y = top + i * row_h
        w = max(v / vmax * pw, 1.0)
        color = PALETTE[i % len(PALETTE)]
        out.append(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" font-size="12">{e(name)}</text>'
        )
        out.append(
            f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" rx="3" fill="{color}">'
            f"<title>{e(name)}: {e(fmt(v))}</title></rect>"
        )
        out.append(
            f'<text x="{left + w + 6:.1f}" y="{y + 16}" font-size="12" fill="#333">'
            f"{e(fmt(v))} ({100 * v / total:.1f}%)</text>"
        )
    out.append("</svg>")
    return "".join(out)
