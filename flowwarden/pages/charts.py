"""Inline SVG charts drawn here, so a report needs no script library and no network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flowwarden.pages.markup import esc, tag

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 14, 44
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Bar:
    """One bar: its axis label, tooltip and value."""

    label: str
    tooltip: str
    value: int


def bar_chart(bars: Sequence[Bar], *, title: str, chart_id: str) -> str:
    """A vertical bar chart as an `<svg>`; every bar is a `rect.bar` carrying `data-value`.

    >>> svg = bar_chart([Bar("a", "a: 1", 1), Bar("b", "b: 3", 3)], title="t", chart_id="c")
    >>> svg.count('class="bar"')
    2
    """
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max((b.value for b in bars), default=0) or 1
    step = plot_w / max(len(bars), 1)
    gap = min(step * 0.2, 6)
    parts = [_axes(plot_w, plot_h, top)]
    every = max(1, -(-len(bars) // MAX_X_LABELS))
    for index, bar in enumerate(bars):
        height = plot_h * bar.value / top
        x = LEFT + index * step + gap / 2
        rect = tag("rect", tag("title", esc(bar.tooltip)), class_="bar", x=f"{x:.1f}",
                   y=f"{TOP + plot_h - height:.1f}", width=f"{max(step - gap, 1):.1f}",
                   height=f"{height:.1f}", data_value=bar.value, data_label=bar.label)
        parts.append(rect)
        if index % every == 0:
            parts.append(tag("text", esc(bar.label), class_="x-label", x=f"{x:.1f}",
                             y=str(HEIGHT - BOTTOM + 16)))
    return tag("svg", tag("title", esc(title)) + "".join(parts), id=chart_id, class_="chart",
               role="img", viewBox=f"0 0 {WIDTH} {HEIGHT}", width=WIDTH, height=HEIGHT,
               xmlns="http://www.w3.org/2000/svg", data_bars=len(bars))


def _axes(plot_w: float, plot_h: float, top: int) -> str:
    base = TOP + plot_h
    lines = [
        tag("line", class_="axis", x1=LEFT, y1=base, x2=LEFT + plot_w, y2=base),
        tag("line", class_="axis", x1=LEFT, y1=TOP, x2=LEFT, y2=base),
        tag("text", str(top), class_="y-label", x=LEFT - 6, y=TOP + 4),
        tag("text", "0", class_="y-label", x=LEFT - 6, y=base + 4),
    ]
    return "".join(lines)
