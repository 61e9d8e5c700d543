"""The SVG chart helpers: exact geometry, and the edge cases (no data, one point, negative
values, all zeros, escaping)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from torghut_site.charts import BarSeries, LineSeries, bar_chart_svg, line_chart_svg

T0, T10, T20 = (
    "2026-01-01T00:00:00+00:00",
    "2026-01-01T00:10:00+00:00",
    "2026-01-01T00:20:00+00:00",
)

# ------------------------------------------------------------------ line chart


def test_line_chart_without_points_is_a_note():
    assert (
        str(line_chart_svg([], label="x")) == '<p class="chart-empty">No data in this window.</p>'
    )
    empty = line_chart_svg(
        [LineSeries("a", []), LineSeries("b", [(T0, "nan"), (T10, None), ("bad",)])],
        label="x",
        empty_text="No snapshot.",
    )
    assert str(empty) == '<p class="chart-empty">No snapshot.</p>'


def test_line_chart_of_one_point_is_a_dot_in_the_middle():
    svg = str(line_chart_svg([LineSeries("paper", [(T0, Decimal("100000.50"))])], label="eq"))
    assert '<circle class="series" cx="360.0" cy="99.0" r="3" fill="#417690">' in svg
    assert "<polyline" not in svg
    assert svg.count(">100,000.50</text>") == 2  # min and max
    assert svg.count(">2026-01-01 00:00</text>") == 2  # first and last
    assert 'data-series="1" data-points="1"' in svg
    assert 'class="legend"' not in svg


def test_line_chart_scales_by_time_and_draws_a_zero_line_when_values_change_sign():
    svg = str(line_chart_svg([LineSeries("a", [(T0, 10), (T10, -10), (T20, 30)])], label="pnl"))
    # x by time over 96..624, y over 12..186 for -10..30
    assert '<polyline class="series" points="96.0,99.0 360.0,186.0 624.0,12.0"' in svg
    assert '<line class="zero" x1="96" y1="142.5" x2="624" y2="142.5"' in svg
    assert '<text class="y-zero" x="90" y="146.5" text-anchor="end" font-size="11">0</text>' in svg
    assert '<text class="y-max" x="90" y="22" text-anchor="end" font-size="11">30.00</text>' in svg
    assert (
        '<text class="y-min" x="90" y="186" text-anchor="end" font-size="11">-10.00</text>' in svg
    )
    assert 'aria-label="pnl: 3 point(s), from -10.00 to 30.00"' in svg


def test_line_chart_include_zero_stretches_an_all_negative_range_to_zero():
    svg = str(
        line_chart_svg([LineSeries("a", [(T0, -4), (T10, -2)])], label="pnl", include_zero=True)
    )
    # -4..0: y(-4) = 186, y(-2) = 99; the zero is the top edge, not a separate line
    assert 'points="96.0,186.0 624.0,99.0"' in svg
    assert ">0.00</text>" in svg and ">-4.00</text>" in svg
    assert 'class="zero"' not in svg


def test_line_chart_of_a_flat_series_is_a_line_through_the_middle():
    svg = str(line_chart_svg([LineSeries("a", [(T0, 0), (T10, 0)])], label="x", include_zero=True))
    assert 'points="96.0,99.0 624.0,99.0"' in svg


def test_line_chart_puts_several_series_on_one_time_axis_with_a_legend():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    svg = str(
        line_chart_svg(
            [
                LineSeries("paper", [(start, 1), (start.replace(minute=10), 2)]),
                LineSeries("live", [(start.replace(minute=5), 5)]),
            ],
            label="eq",
        )
    )
    # the legend moves the plot down to 28..186
    assert (
        '<polyline class="series" points="96.0,186.0 624.0,146.5" fill="none" stroke="#417690"'
        in svg
    )
    assert (
        '<circle class="series" cx="360.0" cy="28.0" r="3" fill="#e69f00"><title>live</title>'
        in svg
    )
    assert '<text class="legend" x="110" y="16" font-size="11">paper</text>' in svg
    # the next key after "paper": 96 + 14 + 7 × 5 characters + 16
    assert '<rect class="legend-key" x="161" y="7" width="10" height="10" fill="#e69f00"/>' in svg
    assert '<text class="legend" x="175" y="16" font-size="11">live</text>' in svg
    assert 'data-series="2" data-points="3"' in svg


def test_line_chart_without_times_places_points_by_index():
    svg = str(line_chart_svg([LineSeries("a", [("x", 1), ("y", 2), ("z", 3)])], label="i"))
    assert 'points="96.0,186.0 360.0,99.0 624.0,12.0"' in svg
    assert ">x</text>" in svg and ">z</text>" in svg


def test_line_chart_escapes_names_and_labels():
    svg = str(line_chart_svg([LineSeries("<b>", [("<i>", 1), ("k", 2)])], label='"x"'))
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "&lt;i&gt;" in svg
    assert 'aria-label="&quot;x&quot;: 2 point(s)' in svg


# ------------------------------------------------------------------ bar chart


def test_bar_chart_without_categories_or_values_is_a_note():
    assert (
        str(bar_chart_svg([], [], label="x"))
        == '<p class="chart-empty">No data in this window.</p>'
    )
    none = bar_chart_svg(["a"], [BarSeries("s", [None])], label="x", empty_text="No fold.")
    assert str(none) == '<p class="chart-empty">No fold.</p>'


def test_bar_chart_hangs_negative_values_below_the_baseline_in_red():
    svg = str(
        bar_chart_svg(["a", "b"], [BarSeries("pnl", [3, -1])], label="t", width=200, height=120)
    )
    # plot 72..184 x 16..80, range -1..3: the baseline at y=64
    assert '<line class="baseline" x1="72" y1="64.0" x2="184" y2="64.0" stroke="#999"/>' in svg
    assert (
        '<rect class="bar" x="77.6" y="16.0" width="43.8" height="48.0" fill="#417690" '
        'data-value="3"><title>a · pnl: 3</title></rect>'
    ) in svg
    assert (
        '<rect class="bar bar-neg" x="133.6" y="64.0" width="43.8" height="16.0" fill="#ba2121" '
        'data-value="-1"><title>b · pnl: -1</title></rect>'
    ) in svg
    # values above a positive bar, under a negative one
    assert (
        '<text class="bar-value" x="100.0" y="13.0" text-anchor="middle" font-size="10">3</text>'
        in svg
    )
    assert (
        '<text class="bar-value" x="156.0" y="91.0" text-anchor="middle" font-size="10">-1</text>'
        in svg
    )
    assert '<text class="y-zero" x="66" y="68.0"' in svg
    assert 'aria-label="t: 2 bar(s) in 2 categories, from -1 to 3"' in svg


def test_bar_chart_of_one_bar():
    svg = str(
        bar_chart_svg(
            ["AAPL"], [BarSeries("fills", [Decimal(4)])], label="f", width=200, height=120
        )
    )
    # one slot of 112 px: the bar is 89.6 wide from 83.2, the full plot height
    assert (
        '<rect class="bar" x="83.2" y="16.0" width="88.6" height="64.0" fill="#417690" data-value="4">'
    ) in svg
    assert 'data-categories="1" data-bars="1"' in svg
    assert 'aria-label="f: 1 bar(s) in 1 category, from 0 to 4"' in svg


def test_bar_chart_of_zeros_sits_on_the_bottom():
    svg = str(bar_chart_svg(["a"], [BarSeries("n", [0])], label="z", width=200, height=120))
    assert 'y1="80.0"' in svg  # the baseline is the bottom of the plot
    assert 'y="80.0" width="88.6" height="0.0"' in svg


def test_bar_chart_groups_series_with_a_legend_and_skips_missing_values():
    svg = str(
        bar_chart_svg(
            ["f0", "f1"],
            [BarSeries("gross", [2, 1]), BarSeries("net", [1.5, None])],
            label="folds",
            width=200,
            height=120,
            value_format=",.2f",
        )
    )
    # legend: plot 28..80; two bars of 22.4 per 56-px slot
    assert '<rect class="bar" x="77.6" y="28.0" width="21.4" height="52.0" fill="#417690"' in svg
    assert '<rect class="bar" x="100.0" y="41.0" width="21.4" height="39.0" fill="#e69f00"' in svg
    assert '<rect class="bar" x="133.6" y="54.0" width="21.4" height="26.0" fill="#417690"' in svg
    assert svg.count('<rect class="bar') == 3
    assert '<text class="legend" x="86" y="16" font-size="11">gross</text>' in svg
    assert "<title>f0 · net: 1.50</title>" in svg
    assert 'data-bars="3"' in svg


def test_bar_chart_cuts_long_categories_and_keeps_them_whole_in_the_tooltip():
    svg = str(
        bar_chart_svg(
            ["kill_switch_active"], [BarSeries("n", [2])], label="r", width=120, height=120
        )
    )
    # one 32-px slot fits 4 characters
    assert ">kil…<title>kill_switch_active</title></text>" in svg


def test_bar_chart_refuses_series_of_the_wrong_length():
    with pytest.raises(ValueError, match="has 1 values for 2"):
        bar_chart_svg(["a", "b"], [BarSeries("s", [1])], label="x")


def test_bar_chart_escapes_categories():
    svg = str(bar_chart_svg(["<script>"], [BarSeries("s", [1])], label="x"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
