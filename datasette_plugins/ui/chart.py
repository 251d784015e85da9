"""The cost-over-time chart: daily cost as a small inline SVG bar chart.

No JavaScript and nothing fetched: bars carry <title> tooltips, the axis says the
largest day's cost, days with calls of unknown price are marked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from markupsafe import Markup

from datasette_plugins.ui import fmt

DAYS = 30
WIDTH, HEIGHT = 720, 180
LEFT, BOTTOM, TOP = 64, 24, 12


@dataclass(frozen=True)
class DayCost:
    day: str  # YYYY-MM-DD
    cost: float
    calls: int
    unknown: int  # calls whose price is not known (not counted in `cost`)


def window(last_day: str, days: int = DAYS) -> list[str]:
    """The `days` dates ending at `last_day`, oldest first."""
    end = date.fromisoformat(last_day)
    return [(end - timedelta(days=days - 1 - n)).isoformat() for n in range(days)]


def cost_chart(points: list[DayCost], days: list[str]) -> Markup:
    """An SVG bar per day of `days` (a day without calls gets no bar)."""
    by_day = {p.day: p for p in points}
    top = max((p.cost for p in points), default=0.0) or 1.0
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(days), 1)
    bar_w = max(step * 0.72, 1.0)
    parts = [
        (
            f'<svg class="il-chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}"'
            ' xmlns="http://www.w3.org/2000/svg">'
        ),
        "<title>Cost per day</title>",
        f'<line class="il-axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}"/>',
        f'<line class="il-grid" x1="{LEFT}" y1="{TOP}" x2="{WIDTH - 8}" y2="{TOP}"/>',
        f'<text class="il-label" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{Markup.escape(fmt.usd(top))}</text>',
        f'<text class="il-label" x="{LEFT - 6}" y="{TOP + plot_h + 4}" text-anchor="end">$0</text>',
    ]
    for n, day in enumerate(days):
        x = LEFT + n * step + (step - bar_w) / 2
        point = by_day.get(day)
        if (n % 7 == 0 and len(days) - 1 - n >= 4) or n == len(days) - 1:
            parts.append(
                f'<text class="il-label" x="{x + bar_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">{day[5:]}</text>'
            )
        if point is None:
            continue
        h = max(plot_h * point.cost / top, 1.5)
        unknown = f", {point.unknown:,} of unknown price" if point.unknown else ""
        tip = f"{day}: {fmt.usd(point.cost)} over {point.calls:,} calls{unknown}"
        css = "il-bar il-bar-unknown" if point.unknown else "il-bar"
        parts.append(
            f'<rect class="{css}" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
            f"<title>{Markup.escape(tip)}</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
