"""Inline SVG charts (line and bar) for the self-contained HTML report; text is escaped."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence

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
    e = html.escape
    left, right, top, bottom = 56, 16, 34, 48 + 18 * ((len(series) + 1) // 2)
    height = max(height, top + bottom + 160)
    pw, ph = width - left - right, height - top - bottom
    n = max((len(v) for v in series.values()), default=1)
    x_of = (lambda x: left + pw / 2) if n <= 1 else (lambda x: left + (x - 1) / (n - 1) * pw)  # noqa: E731

    def y_of(y: float) -> float:
        return top + ph - (y / y_max) * ph

    out = [
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(title)}" font-family="Helvetica, Arial, sans-serif">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">{e(title)}</text>',
    ]
    for t in _nice_ticks(0, y_max):
        y = y_of(t)
        label = f"{t * 100:.0f}%" if percent else f"{t:g}"
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#555">{label}</text>'
        )
    step = max(1, math.ceil(n / 12))
    for x in range(1, n + 1, step):
        px = x_of(x)
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
    for i, (name, values) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        pts = [(x_of(j + 1), y_of(min(max(v, 0.0), y_max))) for j, v in enumerate(values)]
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.2"/>'
            )
        for j, (x, y) in enumerate(pts):
            val = f"{values[j] * 100:.1f}%" if percent else f"{values[j]:g}"
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.2" fill="{color}"><title>{e(name)}: '
                f"{j + 1} &#8594; {val}</title></circle>"
            )
        lx = left + (i % 2) * (pw / 2)
        ly = top + ph + 52 + 18 * (i // 2)
        out.append(
            f'<line x1="{lx:.1f}" x2="{lx + 18:.1f}" y1="{ly - 4}" y2="{ly - 4}" stroke="{color}" stroke-width="3"/>'
        )
        out.append(f'<text x="{lx + 24:.1f}" y="{ly}" font-size="12">{e(name)}</text>')
    out.append("</svg>")
    return "".join(out)


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
