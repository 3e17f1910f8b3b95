"""Server-side SVG charts of the weekly series for the operation dashboard: inline markup, no
script and nothing fetched from elsewhere, so the page works offline and prints as seen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH = 720
HEIGHT = 240
LEFT = 48
BOTTOM = 36
TOP = 16
RIGHT = 12
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


def _n(value: float) -> str:
    """A coordinate with one decimal."""
    return f"{value:.1f}"


def _scale_top(value: int) -> int:
    """A round axis maximum at or above `value` (1, 2, 5 x 10^n)."""
    top, step = 1, 1
    while top < value:
        for factor in (2, 5, 10):
            top = step * factor
            if top >= value:
                break
        step *= 10
    return top


def _frame(kind: str, label: str, weeks: Sequence[str], top: int, bars: list[Bar], legend: SafeString) -> SafeString:
    plot_h = HEIGHT - TOP - BOTTOM
    grid = format_html_join(
        "",
        '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>'
        '<text class="axis" x="{}" y="{}" text-anchor="end" font-size="10">{}</text>',
        (
            (
                LEFT,
                WIDTH - RIGHT,
                TOP + plot_h * (1 - f),
                TOP + plot_h * (1 - f),
                LEFT - 4,
                TOP + plot_h * (1 - f) + 3,
                v,
            )
            for f, v in ((0, "0"), (0.5, f"{top / 2:g}"), (1, str(top)))
        ),
    )
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(weeks))
    every = max(1, len(weeks) // 8)
    ticks = format_html_join(
        "",
        '<text class="axis" x="{}" y="{}" text-anchor="middle" font-size="10">{}</text>',
        (
            (_n(LEFT + slot * (i + 0.5)), HEIGHT - BOTTOM + 14, week[5:])
            for i, week in enumerate(weeks)
            if i % every == 0
        ),
    )
    rects = format_html_join(
        "",
        '<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
        ((_n(b.x), _n(b.y), _n(b.width), _n(b.height), b.color, b.title) for b in bars),
    )
    return format_html(
        '<svg class="chart chart-{}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" height="{}" '
        'role="img" aria-label="{}">{}{}{}</svg>{}',
        kind,
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        label,
        grid,
        rects,
        ticks,
        legend,
    )


def weekly_bars(label: str, series: Sequence[tuple[str, int]]) -> SafeString:
    """One bar per week. `series`: (week start as YYYY-MM-DD, count), in order."""
    weeks = [week for week, _ in series]
    top = _scale_top(max((count for _, count in series), default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(weeks))
    bars = [
        Bar(
            x=LEFT + slot * i + slot * 0.15,
            y=TOP + plot_h * (1 - count / top),
            width=slot * 0.7,
            height=plot_h * count / top,
            color=PALETTE[0],
            title=f"week of {week}: {count}",
        )
        for i, (week, count) in enumerate(series)
        if count
    ]
    return _frame("weekly", label, weeks, top, bars, SafeString(""))


def stacked_weekly_bars(label: str, rows: Sequence[tuple[str, str, int]]) -> SafeString:
    """One stacked bar per week, a segment per site. `rows`: (week, site, count)."""
    weeks = sorted({week for week, _, _ in rows})
    sites = sorted({site for _, site, _ in rows})
    colors = {site: PALETTE[i % len(PALETTE)] for i, site in enumerate(sites)}
    totals = {week: 0 for week in weeks}
    for week, _, count in rows:
        totals[week] += count
    top = _scale_top(max(totals.values(), default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(weeks))
    stacked = {week: 0 for week in weeks}
    bars = []
    for week, site, count in sorted(rows, key=lambda r: (r[0], r[1])):
        if not count:
            continue
        i = weeks.index(week)
        stacked[week] += count
        bars.append(
            Bar(
                x=LEFT + slot * i + slot * 0.15,
                y=TOP + plot_h * (1 - stacked[week] / top),
                width=slot * 0.7,
                height=plot_h * count / top,
                color=colors[site],
                title=f"{site}, week of {week}: {count} (of {totals[week]})",
            )
        )
    legend = format_html(
        '<ul class="legend">{}</ul>',
        format_html_join(
            "",
            '<li><span class="swatch" style="background:{}"></span>{}</li>',
            ((colors[site], site) for site in sites),
        ),
    )
    return _frame("stacked", label, weeks, top, bars, legend)
