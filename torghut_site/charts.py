"""Server-rendered SVG charts for the admin (no JavaScript, no CDN).

- `equity_curve_svg`: one time series (a research run's equity curve).
- `line_chart_svg`: one or more series over a shared time (or index) axis, with an optional
  zero line for values that change sign (PnL).
- `bar_chart_svg`: grouped bars per category from a zero baseline, so negative values hang below
  it; each bar carries a `<title>` (the browser's tooltip) with its exact value.

Every helper returns a note instead of an empty chart when there is nothing to draw, skips values
that are not finite numbers, and escapes every label.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

# colour-blind-safe series colours (Okabe–Ito), the admin's blue first
PALETTE = ("#417690", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00")
NEGATIVE_FILL = "#ba2121"


@dataclass(frozen=True)
class LineSeries:
    """One line: (x, y) points. x is an ISO time or a datetime (placed by time) or any label
    (placed by index); y anything `float()` accepts."""

    name: str
    points: Sequence[Any]


@dataclass(frozen=True)
class BarSeries:
    """One bar per category (same order as the categories); None or a non-finite value draws no
    bar."""

    name: str
    values: Sequence[Any]


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
    return _x_positions_shared([stamps])[0]


def _x_positions_shared(groups: list[list[str]]) -> list[list[float]]:
    """Positions in [0, 1] for several series on one x axis: by time when every stamp of every
    series is an ISO time and they span some time, else by index (the longest series sets the
    step); a lone point sits in the middle."""
    flat = [s for group in groups for s in group]
    try:
        times = [datetime.fromisoformat(s).timestamp() for s in flat]
    except ValueError:
        times = []
    if times and max(times) > min(times):
        lo, span = min(times), max(times) - min(times)
        return [[(datetime.fromisoformat(s).timestamp() - lo) / span for s in g] for g in groups]
    longest = max((len(g) for g in groups), default=0)
    if longest <= 1:
        return [[0.5] * len(g) for g in groups]
    return [[i / (longest - 1) for i in range(len(g))] for g in groups]


def _axes(
    *,
    left: float,
    top: float,
    right: float,
    bottom: float,
    height: int,
    hi: str,
    lo: str,
    first: str,
    last: str,
) -> SafeString:
    """A chart's frame: the y and x axes around the plot (left, top, right, bottom), the y
    range's ends left of the y axis, the first and last time under the x axis."""
    return format_html(
        '<line x1="{ax}" y1="{top}" x2="{ax}" y2="{ay}" stroke="#999"/>'
        '<line x1="{ax}" y1="{ay}" x2="{xr}" y2="{ay}" stroke="#999"/>'
        '<text class="y-max" x="{tx}" y="{ty_max}" text-anchor="end" font-size="11">{hi}</text>'
        '<text class="y-min" x="{tx}" y="{ty_min}" text-anchor="end" font-size="11">{lo}</text>'
        '<text class="x-first" x="{ax}" y="{tx_y}" font-size="11">{first}</text>'
        '<text class="x-last" x="{xr}" y="{tx_y}" text-anchor="end" font-size="11">{last}</text>',
        ax=left,
        ay=bottom,
        top=top,
        xr=right,
        tx=left - 6,
        ty_max=top + 10,
        ty_min=bottom,
        tx_y=height - 8,
        hi=hi,
        lo=lo,
        first=first,
        last=last,
    )


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
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="equity-curve" width="{w}" height="{h}" '
        'viewBox="0 0 {w} {h}" role="img" aria-label="{label}">{axes}{mark}</svg>',
        w=width,
        h=height,
        label=f"equity curve, {len(clean)} point(s), from {lo:,.2f} to {hi:,.2f}",
        axes=_axes(
            left=left,
            top=top,
            right=left + plot_w,
            bottom=top + plot_h,
            height=height,
            hi=f"{hi:,.2f}",
            lo=f"{lo:,.2f}",
            first=_short_time(clean[0][0]),
            last=_short_time(clean[-1][0]),
        ),
        mark=mark,
    )


def _short_time(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp[:32]


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fmt(value: float, spec: str) -> str:
    return format(value + 0.0 if value else 0.0, spec)  # never "-0.00"


def _legend(names: Sequence[str], *, x: int, y: int) -> SafeString:
    items: list[tuple[Any, ...]] = []
    for i, name in enumerate(names):
        items.append((x, y - 9, PALETTE[i % len(PALETTE)], x + 14, y, name))
        x += 14 + 7 * len(name) + 16
    return format_html_join(
        "",
        '<rect class="legend-key" x="{}" y="{}" width="10" height="10" fill="{}"/>'
        '<text class="legend" x="{}" y="{}" font-size="11">{}</text>',
        items,
    )


def _empty(text: str) -> SafeString:
    return format_html('<p class="chart-empty">{}</p>', text)


def _series_mark(name: str, coords: list[tuple[float, float]], colour: str) -> SafeString:
    """One series of a line chart: a dot for a single point, else a polyline."""
    if len(coords) == 1:
        return format_html(
            '<circle class="series" cx="{}" cy="{}" r="3" fill="{}"><title>{}</title></circle>',
            f"{coords[0][0]:.1f}",
            f"{coords[0][1]:.1f}",
            colour,
            name,
        )
    return format_html(
        '<polyline class="series" points="{}" fill="none" stroke="{}" '
        'stroke-width="1.5"><title>{}</title></polyline>',
        " ".join(f"{x:.1f},{yy:.1f}" for x, yy in coords),
        colour,
        name,
    )


def _zero_line(left: int, right: float, y0: float) -> SafeString:
    return format_html(
        '<line class="zero" x1="{x1}" y1="{y0}" x2="{x2}" y2="{y0}" stroke="#999" '
        'stroke-dasharray="4 3"/><text class="y-zero" x="{tx}" y="{ty}" '
        'text-anchor="end" font-size="11">0</text>',
        x1=left,
        x2=right,
        y0=f"{y0:.1f}",
        tx=left - 6,
        ty=f"{y0 + 4:.1f}",
    )


def line_chart_svg(
    series: Sequence[LineSeries],
    *,
    label: str,
    width: int = 640,
    height: int = 220,
    value_format: str = ",.2f",
    include_zero: bool = False,
    empty_text: str = "No data in this window.",
) -> SafeString:
    """Series of (x, y) points as inline SVG polylines on one x axis, with the min/max value on
    the y axis and the first/last x. A series of one point is a dot; a flat chart is a line
    through the middle. `include_zero` stretches the y range to 0; a dashed zero line is drawn
    whenever the values change sign. More than one series gets a legend."""
    drawn = [(s.name, pts) for s in series if (pts := _finite_points(s.points))]
    if not drawn:
        return _empty(empty_text)
    legend = len(drawn) > 1
    left, right, top, bottom = 96, 16, (28 if legend else 12), 34
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, pts in drawn for _, v in pts]
    lo, hi = min(values), max(values)
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)

    def y(v: float) -> float:
        return top + (plot_h / 2 if hi == lo else plot_h * (hi - v) / (hi - lo))

    positions = _x_positions_shared([[stamp for stamp, _ in pts] for _, pts in drawn])
    marks: list[SafeString] = []
    placed: list[tuple[float, str]] = []
    for i, ((name, pts), fractions) in enumerate(zip(drawn, positions, strict=True)):
        coords = [(left + plot_w * f, y(v)) for f, (_, v) in zip(fractions, pts, strict=True)]
        placed.extend((f, stamp) for f, (stamp, _) in zip(fractions, pts, strict=True))
        marks.append(_series_mark(name, coords, PALETTE[i % len(PALETTE)]))
    x_right = left + plot_w
    if lo < 0 < hi:
        marks.insert(0, _zero_line(left, x_right, y(0.0)))
    first = min(placed, key=lambda p: p[0])[1]
    last = max(placed, key=lambda p: p[0])[1]
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart line-chart" width="{w}" '
        'height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{aria}" data-series="{n}" '
        'data-points="{points}">{axes}{legend}{marks}</svg>',
        w=width,
        h=height,
        aria=f"{label}: {len(values)} point(s), from {_fmt(lo, value_format)} "
        f"to {_fmt(hi, value_format)}",
        n=len(drawn),
        points=len(values),
        axes=_axes(
            left=left,
            top=top,
            right=x_right,
            bottom=top + plot_h,
            height=height,
            hi=_fmt(hi, value_format),
            lo=_fmt(lo, value_format),
            first=_short_time(first),
            last=_short_time(last),
        ),
        legend=_legend([name for name, _ in drawn], x=left, y=16) if legend else "",
        marks=format_html_join("", "{}", ((m,) for m in marks)),
    )


@dataclass(frozen=True)
class _BarGeometry:
    left: int
    slot: float  # the width of one category
    bar_w: float
    base: float  # the baseline's y
    y: Callable[[float], float]  # a value's y


def _bars_markup(
    categories: Sequence[str],
    series: Sequence[BarSeries],
    numbers: list[list[float | None]],
    g: _BarGeometry,
    value_format: str,
) -> tuple[SafeString, SafeString, int]:
    """(the bars, their printed values, how many bars): one bar per series in each category,
    a missing value leaves a gap."""
    bars: list[tuple[Any, ...]] = []
    value_labels: list[tuple[Any, ...]] = []
    for i, category in enumerate(categories):
        for j, s in enumerate(series):
            v = numbers[j][i]
            if v is None:
                continue
            x = g.left + g.slot * i + g.slot * 0.1 + g.bar_w * j
            bar_top, bar_h = min(g.y(v), g.base), abs(g.y(v) - g.base)
            fill = NEGATIVE_FILL if v < 0 and len(series) == 1 else PALETTE[j % len(PALETTE)]
            text = _fmt(v, value_format)
            bars.append(
                (
                    "bar bar-neg" if v < 0 else "bar",
                    f"{x:.1f}",
                    f"{bar_top:.1f}",
                    f"{max(g.bar_w - 1, 1.0):.1f}",
                    f"{bar_h:.1f}",
                    fill,
                    text,
                    f"{category} · {s.name}: {text}",
                )
            )
            if g.bar_w >= 18:
                label_y = bar_top - 3 if v >= 0 else bar_top + bar_h + 11
                value_labels.append((f"{x + g.bar_w / 2:.1f}", f"{label_y:.1f}", text))
    return (
        format_html_join(
            "",
            '<rect class="{}" x="{}" y="{}" width="{}" height="{}" fill="{}" data-value="{}">'
            "<title>{}</title></rect>",
            bars,
        ),
        format_html_join(
            "",
            '<text class="bar-value" x="{}" y="{}" text-anchor="middle" font-size="10">{}</text>',
            value_labels,
        ),
        len(bars),
    )


def _zero_label(left: int, base: float) -> SafeString:
    return format_html(
        '<text class="y-zero" x="{}" y="{}" text-anchor="end" font-size="11">0</text>',
        left - 6,
        f"{base + 4:.1f}",
    )


def _categories_markup(categories: Sequence[str], *, left: int, slot: float, y: int) -> SafeString:
    """Each category's name under its bars, cut to fit (whole in its `<title>`)."""
    fit = max(3, int(slot / 6.5))
    labels = [
        (f"{left + slot * (i + 0.5):.1f}", y, c if len(c) <= fit else c[: fit - 1] + "…", c)
        for i, c in enumerate(str(c) for c in categories)
    ]
    return format_html_join(
        "",
        '<text class="category" x="{}" y="{}" text-anchor="middle" font-size="11">{}'
        "<title>{}</title></text>",
        labels,
    )


def bar_chart_svg(
    categories: Sequence[str],
    series: Sequence[BarSeries],
    *,
    label: str,
    width: int = 640,
    height: int = 220,
    value_format: str = ",.0f",
    empty_text: str = "No data in this window.",
) -> SafeString:
    """Grouped bars (one per series in each category) from a zero baseline. The y range always
    includes 0, so a negative value hangs below the baseline (drawn red when there is a single
    series). Each bar has a `<title>` with its exact value; values are printed on the bars when
    they are wide enough, categories under them (cut to fit, whole in their `<title>`)."""
    for s in series:
        if len(s.values) != len(categories):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(categories)}")
    numbers = [[_number(v) for v in s.values] for s in series]
    finite = [v for row in numbers for v in row if v is not None]
    if not categories or not finite:
        return _empty(empty_text)
    legend = len(series) > 1
    left, right, top, bottom = 72, 16, (28 if legend else 16), 40
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = min(0.0, *finite), max(0.0, *finite)
    if hi == lo:  # every value is 0: the baseline at the bottom
        hi = 1.0

    def y(v: float) -> float:
        return top + plot_h * (hi - v) / (hi - lo)

    base = y(0.0)
    slot = plot_w / len(categories)
    bar_w = slot * 0.8 / len(series)
    bars, value_labels, n_bars = _bars_markup(
        categories,
        series,
        numbers,
        _BarGeometry(left=left, slot=slot, bar_w=bar_w, base=base, y=y),
        value_format,
    )
    category_labels = _categories_markup(categories, left=left, slot=slot, y=height - bottom + 14)
    zero_label = _zero_label(left, base) if lo < 0 < hi else ""
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart bar-chart" width="{w}" '
        'height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{aria}" '
        'data-categories="{n_cat}" data-bars="{n_bars}">'
        '<line x1="{ax}" y1="{top}" x2="{ax}" y2="{ay}" stroke="#999"/>'
        '<line class="baseline" x1="{ax}" y1="{base}" x2="{xr}" y2="{base}" stroke="#999"/>'
        '<text class="y-max" x="{tx}" y="{ty_max}" text-anchor="end" font-size="11">{hi}</text>'
        '<text class="y-min" x="{tx}" y="{ty_min}" text-anchor="end" font-size="11">{lo}</text>'
        "{zero}{legend}{bars}{values}{cats}</svg>",
        w=width,
        h=height,
        aria=f"{label}: {len(finite)} bar(s) in {len(categories)} categor"
        f"{'y' if len(categories) == 1 else 'ies'}, from {_fmt(lo, value_format)} "
        f"to {_fmt(hi, value_format)}",
        n_cat=len(categories),
        n_bars=n_bars,
        ax=left,
        ay=top + plot_h,
        top=top,
        xr=left + plot_w,
        base=f"{base:.1f}",
        tx=left - 6,
        ty_max=top + 10,
        ty_min=top + plot_h,
        hi=_fmt(hi, value_format),
        lo=_fmt(lo, value_format),
        zero=zero_label,
        legend=_legend([s.name for s in series], x=left, y=16) if legend else "",
        bars=bars,
        values=value_labels,
        cats=category_labels,
    )
