"""strategy_fill_realism: counts, the haircut in bps and the repriced realised PnL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from trading.selectors.fill_checks import strategy_fill_realism
from trading.services.fill_checks import fill_check_run
from trading.tests.books.helpers import T0
from trading.tests.fills.helpers import bar, filled, market_data

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(hours=1)


def test_the_haircut_and_repriced_pnl_of_a_constructed_window(
    alpaca, settings, django_assert_num_queries
):
    settings.TRADING_FILL_CHECK_MAX_PARTICIPATION = Decimal("0.1")
    settings.TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS = Decimal(0)
    alpaca.bars = {
        "AAPL": [bar(m, "99", "101", 1000) for m in (-5, 0)] + [bar(1, "101", "102", 1000)]
    }
    filled("macd", "AAPL", "buy", "10", "100", minute=-5)  # before the window
    filled("macd", "AAPL", "buy", "10", "100", minute=0)  # ok
    # a sell 1.00 above the high of 102: repriced at the low (101) less 1.00 = 100, cut 30
    filled("macd", "AAPL", "sell", "10", "103", minute=1)
    filled("macd", "MSFT", "buy", "5", "50", minute=2)  # no MSFT bar
    filled("rsi", "AAPL", "buy", "10", "100", minute=0)  # another strategy
    assert fill_check_run(market_data=market_data(alpaca), now=NOW).checked == {
        "no_bar": 1,
        "ok": 3,  # the window's, the earlier one's and the other strategy's buys
        "price_outside_bar": 1,
    }
    filled("macd", "AAPL", "buy", "2", "100", minute=3)  # not checked yet

    with django_assert_num_queries(1):  # the fills with their checks, in one query
        realism = strategy_fill_realism(
            strategy="macd", labels=["paper"], since=T0, until=T0 + timedelta(minutes=30)
        )

    assert realism.as_json() == {
        "strategy": "macd",
        "account_labels": ["paper"],
        "window": {"since": "2026-03-03T14:31:00+00:00", "until": "2026-03-03T15:01:00+00:00"},
        "fills_total": 4,
        "fills_checked": 3,
        "fills_flagged": 1,
        "flagged_by_verdict": {"price_outside_bar": 1},
        "fills_no_bar": 1,
        "fills_unchecked": 1,
        # 1000 + 1030 + 250 + 200
        "traded_notional": "2480.000000",
        "haircut_notional": "30.000000",
        # 30 / 2480 x 10000 = 120.967741...
        "haircut_bps": "120.9677",
        "pnl_basis": "realised_average_cost",
        # bought 10 at 100, sold at 103; repriced, sold at 100
        "net_pnl": "30.000000",
        "repriced_net_pnl": "0.000000",
    }


def test_a_strategy_without_fills_has_an_empty_block(db):
    block = strategy_fill_realism(strategy="none", labels=["paper"], since=None, until=NOW)
    assert block.as_json() == {
        "strategy": "none",
        "account_labels": ["paper"],
        "window": {"since": None, "until": NOW.isoformat()},
        "fills_total": 0,
        "fills_checked": 0,
        "fills_flagged": 0,
        "flagged_by_verdict": {},
        "fills_no_bar": 0,
        "fills_unchecked": 0,
        "traded_notional": "0.000000",
        "haircut_notional": "0.000000",
        "haircut_bps": "0.0000",
        "pnl_basis": "realised_average_cost",
        "net_pnl": "0.000000",
        "repriced_net_pnl": "0.000000",
    }
