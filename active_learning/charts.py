"""Inline SVG charts for the console (no chart library, no CDN): a line chart and a bar chart.

Both return markup safe to embed; every label is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 420, 180
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 40, 12, 14, 28


def _empty(title: str) -> SafeString:
    return mark_safe(
        f'<svg class="chart" role="img" aria-label="{escape(title)}: no data yet" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">'
        f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle" class="chart-empty">'
        f"no data yet</text></svg>"
    )


def _frame(title: str, y_lo: float, y_hi: float) -> list[str]:
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">',
        f"<title>{escape(title)}</title>",
    ]
    for frac in (0.0, 0.5, 1.0):
        y = PAD_TOP + inner_h * (1 - frac)
        value = y_lo + (y_hi - y_lo) * frac
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'class="chart-grid"/><text x="{PAD_LEFT - 4}" y="{y + 4:.1f}" '
            f'text-anchor="end" class="chart-tick">{value:.3g}</text>'
        )
    return parts


def line_chart(
    points: Sequence[tuple[float, float, str]], *, title: str, x_label: str = "generation"
) -> SafeString:
    """``points`` = (x, y, hover label); x ascending. The y axis spans the data (at least 0..1
    when all values lie in it, as most metrics here do)."""
    if not points:
        return _empty(title)
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    y_lo, y_hi = (0.0, 1.0) if min(ys) >= 0 and max(ys) <= 1 else (min(ys), max(ys))
    if y_hi == y_lo:
        y_hi = y_lo + 1
    x_lo, x_hi = min(xs), max(xs)
    span = (x_hi - x_lo) or 1
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def at(x: float, y: float) -> tuple[float, float]:
        px = PAD_LEFT + (inner_w * (x - x_lo) / span if x_hi != x_lo else inner_w / 2)
        return px, PAD_TOP + inner_h * (1 - (y - y_lo) / (y_hi - y_lo))

    parts = _frame(title, y_lo, y_hi)
    coords = [at(x, y) for x, y, _ in points]
    parts.append(
        '<polyline class="chart-line" fill="none" points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        + '"/>'
    )
    for (px, py), (x, y, label) in zip(coords, points, strict=True):
        parts.append(
            f'<circle class="chart-dot" cx="{px:.1f}" cy="{py:.1f}" r="3.5">'
            f"<title>{escape(label)}: {y:.4f} ({escape(x_label)} {x:g})</title></circle>"
            f'<text x="{px:.1f}" y="{HEIGHT - 10}" text-anchor="middle" class="chart-tick">'
            f"{x:g}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def bar_chart(bars: Sequence[tuple[str, float]], *, title: str) -> SafeString:
    """``bars`` = (label, value >= 0), drawn left to right."""
    if not bars:
        return _empty(title)
    top = max(v for _, v in bars) or 1
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    step = inner_w / len(bars)
    width = max(step * 0.7, 1)
    parts = _frame(title, 0, top)
    for i, (label, value) in enumerate(bars):
        h = inner_h * value / top
        x = PAD_LEFT + i * step + (step - width) / 2
        parts.append(
            f'<rect class="chart-bar" x="{x:.1f}" y="{PAD_TOP + inner_h - h:.1f}" '
            f'width="{width:.1f}" height="{h:.1f}"><title>{escape(label)}: {value:g}</title></rect>'
        )
    # First and last labels only: dates would overlap.
    parts.append(
        f'<text x="{PAD_LEFT}" y="{HEIGHT - 10}" class="chart-tick">{escape(bars[0][0])}</text>'
    )
    if len(bars) > 1:
        parts.append(
            f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 10}" text-anchor="end" '
            f'class="chart-tick">{escape(bars[-1][0])}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
