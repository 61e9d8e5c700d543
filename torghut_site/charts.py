"""Server-rendered SVG charts for the admin (no JavaScript, no CDN): a time series as an inline
polyline with its min/max and first/last labels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString


def _finite_points(points: Sequence[Any]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for point in points or []:
        if not isinstance(point, list | tuple) or len(point) != 2:
            continue
        try:
            value = float(point[1])
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            out.append((str(point[0]), value))
    return out


def _x_positions(stamps: list[str]) -> list[float]:
    """Each point's position in [0, 1]: by time when every stamp is an ISO time and they span
    some time, else by index."""
    n = len(stamps)
    if n == 1:
        return [0.5]
    try:
        times = [datetime.fromisoformat(s).timestamp() for s in stamps]
    except ValueError:
        times = []
    if times and max(times) > min(times):
        lo, span = min(times), max(times) - min(times)
        return [(t - lo) / span for t in times]
    return [i / (n - 1) for i in range(n)]


def equity_curve_svg(points: Sequence[Any], *, width: int = 640, height: int = 220) -> SafeString:
    """An equity curve ([[iso_ts, equity], …]) as an inline SVG polyline with the min/max equity
    on the y axis and the first/last time on the x axis. One point is drawn as a dot, a flat
    curve as a line through the middle; no point gives a note instead of a chart."""
    clean = _finite_points(points)
    if not clean:
        return format_html('<p class="equity-curve-empty">{}</p>', "No equity curve recorded.")
    left, right, top, bottom = 96, 16, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, v in clean]
    lo, hi = min(values), max(values)

    def y(v: float) -> float:
        return top + (plot_h / 2 if hi == lo else plot_h * (hi - v) / (hi - lo))

    xs = [left + plot_w * f for f in _x_positions([s for s, _ in clean])]
    coords = [(x, y(v)) for x, v in zip(xs, values, strict=True)]
    if len(coords) == 1:
        mark = format_html(
            '<circle cx="{}" cy="{}" r="3" fill="#417690"/>',
            f"{coords[0][0]:.1f}",
            f"{coords[0][1]:.1f}",
        )
    else:
        mark = format_html(
            '<polyline points="{}" fill="none" stroke="#417690" stroke-width="1.5"/>',
            " ".join(f"{x:.1f},{yy:.1f}" for x, yy in coords),
        )
    axis_y, axis_x = top + plot_h, left
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="equity-curve" width="{w}" height="{h}" '
        'viewBox="0 0 {w} {h}" role="img" aria-label="{label}">'
        '<line x1="{ax}" y1="{top}" x2="{ax}" y2="{ay}" stroke="#999"/>'
        '<line x1="{ax}" y1="{ay}" x2="{xr}" y2="{ay}" stroke="#999"/>'
        '<text class="y-max" x="{tx}" y="{ty_max}" text-anchor="end" font-size="11">{hi}</text>'
        '<text class="y-min" x="{tx}" y="{ty_min}" text-anchor="end" font-size="11">{lo}</text>'
        '<text class="x-first" x="{ax}" y="{tx_y}" font-size="11">{first}</text>'
        '<text class="x-last" x="{xr}" y="{tx_y}" text-anchor="end" font-size="11">{last}</text>'
        "{mark}</svg>",
        w=width,
        h=height,
        label=f"equity curve, {len(clean)} point(s), from {lo:,.2f} to {hi:,.2f}",
        ax=axis_x,
        ay=axis_y,
        top=top,
        xr=left + plot_w,
        tx=left - 6,
        ty_max=top + 10,
        ty_min=axis_y,
        tx_y=height - 8,
        hi=f"{hi:,.2f}",
        lo=f"{lo:,.2f}",
        first=_short_time(clean[0][0]),
        last=_short_time(clean[-1][0]),
        mark=mark,
    )


def _short_time(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp[:32]


# ------------------------------------------------------------------ inlines
