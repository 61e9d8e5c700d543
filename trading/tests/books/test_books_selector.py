"""The per-strategy books derived from executions: exact positions, average cost, realised and
unrealised PnL, notionals, the fill-order rule and the queries it costs."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from trading.selectors.allocation import strategy_books
from trading.selectors.books import BookLine, CostState, average_cost_pass, lane_books
from trading.tests.books.helpers import fill

pytestmark = pytest.mark.django_db


def test_average_cost_pass_exact_values():
    fills = [
        ("buy", D(10), D(100)),
        ("buy", D(10), D(110)),  # average 105
        ("sell", D(5), D(120)),  # realises 5 x 15 = 75
        ("sell", D(20), D(100)),  # closes 15 (-75), opens a short of 5 at 100
        ("buy", D(5), D(90)),  # covers the short: +50
    ]
    assert average_cost_pass(fills) == CostState(D(0), D(0), D(50))
    assert average_cost_pass(fills[:4]) == CostState(D(-5), D(100), D(0))
    assert average_cost_pass(fills[:3]) == CostState(D(15), D(105), D(75))
    assert average_cost_pass([]) == CostState(D(0), D(0), D(0))


def test_lane_books_per_strategy_exact(django_assert_num_queries):
    fill("a", "AAPL", "buy", "10", "100", minute=1)
    fill("b", "AAPL", "buy", "5", "102", minute=2)
    fill("a", "AAPL", "buy", "10", "110", minute=3)
    fill("a", "AAPL", "sell", "5", "120", minute=4)
    fill("a", "MSFT", "buy", "3", "50", minute=5)
    fill(None, "AAPL", "buy", "2", "101", minute=6)  # an order without a decision
    fill("b", "AAPL", "sell", "0", "0", minute=7, submitted="4")  # nothing filled: not counted
    with django_assert_num_queries(2):  # the sums, then the fills of the pairs that sold
        lines = lane_books(account_label="paper", marks={"AAPL": D(130)})
    assert lines == [
        BookLine(
            "paper", "a", "AAPL", D(15), D("105.000000"), D("75.000000"), D(130),
            D("375.000000"), D(20), D(5), D(2100), D(600),
        ),
        BookLine(
            "paper", "a", "MSFT", D(3), D("50.000000"), D("0.000000"), None, None,
            D(3), D(0), D(150), D(0),
        ),
        BookLine(
            "paper", "b", "AAPL", D(5), D("102.000000"), D("0.000000"), D(130),
            D("140.000000"), D(5), D(0), D(510), D(0),
        ),
        BookLine(
            "paper", None, "AAPL", D(2), D("101.000000"), D("0.000000"), D(130),
            D("58.000000"), D(2), D(0), D(202), D(0),
        ),
    ]  # fmt: skip
    # the allocator's view of the same query: strategies only, the unattributed order left out
    assert strategy_books(account_label="paper").positions == {
        "a": {"AAPL": D(15), "MSFT": D(3)},
        "b": {"AAPL": D(5)},
    }


def test_fills_are_ordered_by_first_fill_then_id_not_by_creation():
    # created first, but filled last: the sell at 120 is applied after both buys
    late = fill("a", "AAPL", "sell", "10", "120", minute=9)
    first = fill("a", "AAPL", "buy", "10", "100", minute=1)
    fill("a", "AAPL", "buy", "10", "110", minute=2)
    assert late.pk < first.pk
    (line,) = lane_books(account_label="paper")
    assert (line.position, line.avg_cost, line.realised_pnl) == (
        D(10),
        D("105.000000"),
        D("150.000000"),
    )


def test_a_partial_fill_counts_at_its_cumulative_quantity_once():
    fill("a", "AAPL", "buy", "4", "100", minute=1, submitted="10")
    (line,) = lane_books(account_label="paper")
    assert (line.position, line.buy_qty, line.buy_notional) == (D(4), D(4), D(400))
    assert lane_books(account_label="other") == []
