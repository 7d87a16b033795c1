"""Charts drawn at build time as inline SVG: no chart library, no script, with a text
alternative (an accessible name, and the figures as a table next to each chart)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from markupsafe import Markup, escape

BAR_GAP = 6


def _fmt(value: Decimal | int | float) -> str:
    number = float(value)
    if abs(number) >= 1_000_000:
        return f"{number / 1_000_000:.1f}M"
    if abs(number) >= 10_000:
        return f"{number / 1000:.0f}k"
    if abs(number) >= 1_000:
        return f"{number / 1000:.1f}k"
    return f"{number:.0f}"


def bar_chart(labels: Sequence[str], values: Sequence[Decimal | int | float], *, title: str,
              unit: str = "", height: int = 220, width: int = 480) -> Markup:
    """Vertical bars, one per label; the largest bar fills the height."""
    n = max(len(values), 1)
    top = max((float(v) for v in values), default=0.0) or 1.0
    plot_h = height - 48
    bar_w = (width - BAR_GAP * (n + 1)) / n
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
             f"<title>{escape(title)}</title>",
             f'<line class="axis" x1="0" y1="{plot_h + 24}" x2="{width}" y2="{plot_h + 24}"/>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * float(value) / top
        x = BAR_GAP + i * (bar_w + BAR_GAP)
        y = plot_h + 24 - h
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                     f'height="{h:.1f}"><title>{escape(label)}: {escape(_fmt(value))}'
                     f"{escape(unit)}</title></rect>")
        if value:
            parts.append(f'<text class="value" x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" '
                         f'text-anchor="middle">{escape(_fmt(value))}</text>')
        parts.append(f'<text class="label" x="{x + bar_w / 2:.1f}" y="{height - 6}" '
                     f'text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def funnel_chart(steps: Sequence[tuple[str, int, float | None]], *, title: str,
                 width: int = 420) -> Markup:
    """Centred horizontal bars that narrow with each step, with the step's conversion rate."""
    row_h, height = 34, 34 * max(len(steps), 1) + 8
    top = max((count for _, count, _ in steps), default=0) or 1
    label_w = 80
    plot_w = width - label_w - 90
    parts = [f'<svg class="chart funnel-chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}">', f"<title>{escape(title)}</title>"]
    for i, (stage, count, rate) in enumerate(steps):
        w = max(plot_w * count / top, 2)
        x = label_w + (plot_w - w) / 2
        y = 4 + i * row_h
        parts.append(f'<text class="label" x="{label_w - 8}" y="{y + 20}" text-anchor="end">'
                     f"{escape(stage)}</text>")
        parts.append(f'<rect class="bar stage-{escape(stage)}" x="{x:.1f}" y="{y}" '
                     f'width="{w:.1f}" height="{row_h - 8}" rx="3"/>')
        rate_text = f" · {rate:.0%}" if rate is not None else ""
        parts.append(f'<text class="value" x="{label_w + plot_w + 8}" y="{y + 20}">'
                     f"{count}{escape(rate_text)}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))
