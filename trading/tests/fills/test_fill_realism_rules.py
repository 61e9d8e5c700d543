"""The verdict and conservative repricing rules of `trading.fill_realism` on plain values."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.fill_realism import FillTerms, fill_judge
from trading.marketdata import Bar

TERMS = FillTerms(max_participation=Decimal("0.1"), price_tolerance_bps=Decimal(0))


def minute_bar(low: str, high: str, volume: str) -> Bar:
    return Bar(
        symbol="AAPL",
        timestamp=datetime(2026, 3, 3, 14, 31, tzinfo=UTC),
        timeframe="1Min",
        open=Decimal(low),
        high=Decimal(high),
        low=Decimal(low),
        close=Decimal(high),
        volume=Decimal(volume),
    )


@pytest.mark.parametrize(
    ("side", "price", "qty", "bar", "expected"),
    [
        # inside, at the high: ok
        ("buy", "101", "10", ("100", "101", "1000"), ("ok", "0.01", None, "0")),
        # a buy 0.10 below the low: the high, plus 0.10
        ("buy", "99.9", "10", ("100", "101", "1000"), ("price_outside_bar", "0.01", "101.1", "12")),
        # a sell 0.10 below the low is already worse than the bar: 0.10 lower still
        ("sell", "99.9", "10", ("100", "101", "1000"), ("price_outside_bar", "0.01", "99.8", "1")),
        # a sell 0.50 above the high: the low, less 0.50
        ("sell", "101.5", "10", ("100", "101", "1000"), ("price_outside_bar", "0.01", "99.5", "20")),
        # a sale never reprices below zero
        ("sell", "10", "1", ("1", "2", "1000"), ("price_outside_bar", "0.001", "0", "10")),
        # a minute that traded nothing: no participation, repriced at the high
        ("buy", "100.5", "10", ("100", "101", "0"), ("participation_high", None, "101", "5")),
        # both rules broken: the price rule wins (and reprices)
        ("buy", "102", "500", ("100", "101", "1000"), ("price_outside_bar", "0.5", "103", "500")),
        # 11% of the minute's volume, a sell: the low
        ("sell", "100.4", "110", ("100", "101", "1000"), ("participation_high", "0.11", "100", "44")),
    ],
)  # fmt: skip
def test_verdicts_and_repricing(side, price, qty, bar, expected):
    judged = fill_judge(
        side=side, price=Decimal(price), qty=Decimal(qty), bar=minute_bar(*bar), terms=TERMS
    )
    verdict, participation, repriced, haircut = expected
    assert judged.verdict == verdict
    assert judged.participation == (None if participation is None else Decimal(participation))
    assert judged.repriced_price == (None if repriced is None else Decimal(repriced))
    assert judged.haircut_notional == Decimal(haircut)


def test_no_bar_is_neither_repriced_nor_cut():
    judged = fill_judge(side="buy", price=Decimal(1), qty=Decimal(1), bar=None, terms=TERMS)
    assert (
        judged.verdict,
        judged.participation,
        judged.repriced_price,
        judged.haircut_notional,
    ) == (
        "no_bar",
        None,
        None,
        Decimal(0),
    )


prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1000), places=2)


@given(
    side=st.sampled_from(["buy", "sell"]),
    price=prices,
    a=prices,
    b=prices,
    qty=st.decimals(min_value=Decimal(1), max_value=Decimal(10000), places=0),
    volume=st.decimals(min_value=Decimal(0), max_value=Decimal(100000), places=0),
    tolerance=st.decimals(min_value=Decimal(0), max_value=Decimal(50), places=1),
)
def test_repricing_never_favours_the_fill(side, price, a, b, qty, volume, tolerance):
    bar = minute_bar(str(min(a, b)), str(max(a, b)), str(volume))
    terms = FillTerms(max_participation=Decimal("0.1"), price_tolerance_bps=tolerance)
    judged = fill_judge(side=side, price=price, qty=qty, bar=bar, terms=terms)
    assert judged.haircut_notional >= 0
    if judged.verdict in ("ok", "no_bar"):
        assert (judged.repriced_price, judged.haircut_notional) == (None, Decimal(0))
        assert bar.low * (1 - tolerance / 10000) <= price <= bar.high * (1 + tolerance / 10000)
        return
    assert judged.repriced_price is not None
    if side == "buy":
        assert judged.repriced_price >= max(price, bar.high)
    else:
        assert judged.repriced_price <= min(price, bar.low)
