"""Inline SVG bar charts for the HTML reports: no JavaScript, no fonts or files fetched. Formatting only.

Every bar is a ``<g class="bar">`` carrying data-provider, data-source and data-as-of attributes, a
``<title>`` tooltip, and a visible label that names its source and as-of date.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 960
LABEL_W = 210  # category labels on the left
VALUE_W = 300  # value + provenance labels on the right
PLOT_W = WIDTH - LABEL_W - VALUE_W
BAR_H = 16
BAR_GAP = 3
GROUP_GAP = 14
TOP = 40  # title and legend
BOTTOM = 34  # axis ticks and axis label


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its series (legend entry), value, the label shown after it, and its provenance."""

    series: str
    value: float
    label: str
    provider: str
    source: str
    as_of: str
    tooltip: str


@dataclass(frozen=True, slots=True)
class Group:
    """Bars drawn together under one category label (a provider, a GPU model)."""

    label: str
    sublabel: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True, slots=True)
class StackedRow:
    """One stacked bar: (series, value) segments summed left to right, then a total label."""

    label: str
    sublabel: str
    segments: tuple[tuple[str, float], ...]
    total_label: str
    provider: str
    source: str
    as_of: str
    tooltip: str


def _a(value: object) -> str:
    return escape(str(value), quote=True)


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Axis ticks from 0 past ``maximum`` at a round step (1, 2, 2.5 or 5 x 10^k)."""
    if not maximum > 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(maximum / step - 1e-9) + 1)]


def _clip(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _legend(series: dict[str, str]) -> str:
    parts, x = [], LABEL_W
    for name, color in series.items():
        parts.append(f'<rect x="{x}" y="24" width="12" height="12" fill="{_a(color)}"/>'
                     f'<text x="{x + 16}" y="34" class="legend">{_a(name)}</text>')
        x += 24 + 7 * len(name)
    return "".join(parts)


def _axis(ticks: list[float], scale: Callable[[float], float], y_top: int, y_bottom: int, axis: str,
          fmt: Callable[[float], str]) -> str:
    out = []
    for t in ticks:
        x = LABEL_W + scale(t)
        out.append(f'<line x1="{x:.1f}" y1="{y_top}" x2="{x:.1f}" y2="{y_bottom}" class="grid"/>'
                   f'<text x="{x:.1f}" y="{y_bottom + 13}" class="tick" text-anchor="middle">{_a(fmt(t))}</text>')
    out.append(f'<text x="{LABEL_W + PLOT_W / 2:.1f}" y="{y_bottom + 28}" class="axis" '
               f'text-anchor="middle">{_a(axis)}</text>')
    return "".join(out)


def _frame(chart_id: str, title: str, height: int, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" id="{_a(chart_id)}" role="img" '
            f'aria-labelledby="{_a(chart_id)}-title" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}"><title id="{_a(chart_id)}-title">{_a(title)}</title>'
            f'<text x="0" y="14" class="chart-title">{_a(title)}</text>{body}</svg>')


def _category(y: float, height: float, label: str, sublabel: str) -> str:
    mid = y + height / 2
    text = f'<text x="{LABEL_W - 8}" y="{mid - (2 if sublabel else -4):.1f}" class="cat" text-anchor="end">' \
           f'<title>{_a(label)}</title>{_a(_clip(label, 28))}</text>'
    if sublabel:
        text += (f'<text x="{LABEL_W - 8}" y="{mid + 11:.1f}" class="sub" text-anchor="end">'
                 f'<title>{_a(sublabel)}</title>{_a(_clip(sublabel, 31))}</text>')
    return text


def grouped_bar_chart(groups: Sequence[Group], series: dict[str, str], *, chart_id: str, title: str, axis: str,
                      fmt: Callable[[float], str]) -> str:
    """Horizontal bars, one group per category, one bar per series present in the group."""
    values = [b.value for g in groups for b in g.bars]
    ticks = nice_ticks(max(values, default=0.0))
    top = ticks[-1] or 1.0

    def scale(v: float) -> float:
        return max(0.0, v) / top * PLOT_W

    y = TOP + 8
    body = [_legend(series)]
    for g in groups:
        height = max(1, len(g.bars)) * (BAR_H + BAR_GAP) - BAR_GAP
        body.append(_category(y, max(height, 26), g.label, g.sublabel))
        by = y + max(0, (26 - height) / 2)
        for b in g.bars:
            width = scale(b.value)
            body.append(
                f'<g class="bar" data-series="{_a(b.series)}" data-provider="{_a(b.provider)}" '
                f'data-source="{_a(b.source)}" data-as-of="{_a(b.as_of)}" data-value="{b.value:.6g}">'
                f'<title>{_a(b.tooltip)}</title>'
                f'<rect x="{LABEL_W}" y="{by:.1f}" width="{max(width, 1):.1f}" height="{BAR_H}" '
                f'fill="{_a(series.get(b.series, "#666"))}"/>'
                f'<text x="{LABEL_W + width + 5:.1f}" y="{by + BAR_H - 4:.1f}" class="val">{_a(b.label)}</text></g>')
            by += BAR_H + BAR_GAP
        y += max(height, 26) + GROUP_GAP
    plot_bottom = int(y - GROUP_GAP + 6)
    body.insert(1, _axis(ticks, scale, TOP + 2, plot_bottom, axis, fmt))
    return _frame(chart_id, title, plot_bottom + BOTTOM, "".join(body))


def stacked_bar_chart(rows: Sequence[StackedRow], series: dict[str, str], *, chart_id: str, title: str, axis: str,
                      fmt: Callable[[float], str]) -> str:
    """Horizontal stacked bars, one per row, segments in series order, total and provenance after the bar."""
    totals = [sum(max(0.0, v) for _, v in r.segments) for r in rows]
    ticks = nice_ticks(max(totals, default=0.0))
    top = ticks[-1] or 1.0

    def scale(v: float) -> float:
        return max(0.0, v) / top * PLOT_W

    y = TOP + 8
    body = [_legend(series)]
    row_h = 26
    for r, total in zip(rows, totals, strict=True):
        body.append(_category(y, row_h, r.label, r.sublabel))
        x = float(LABEL_W)
        segs = []
        for name, value in r.segments:
            width = scale(value)
            if width <= 0:
                continue
            segs.append(f'<rect x="{x:.1f}" y="{y + 5:.1f}" width="{width:.1f}" height="{BAR_H}" '
                        f'fill="{_a(series.get(name, "#666"))}" data-series="{_a(name)}"/>')
            x += width
        body.append(
            f'<g class="bar" data-provider="{_a(r.provider)}" data-source="{_a(r.source)}" '
            f'data-as-of="{_a(r.as_of)}" data-value="{total:.6g}"><title>{_a(r.tooltip)}</title>{"".join(segs)}'
            f'<text x="{LABEL_W + scale(total) + 5:.1f}" y="{y + 5 + BAR_H - 4:.1f}" class="val">'
            f'{_a(r.total_label)}</text></g>')
        y += row_h + 6
    plot_bottom = int(y)
    body.insert(1, _axis(ticks, scale, TOP + 2, plot_bottom, axis, fmt))
    return _frame(chart_id, title, plot_bottom + BOTTOM, "".join(body))
