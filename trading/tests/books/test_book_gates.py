"""Per-strategy books in the pure gates: a strategy sells only what it holds itself, never takes
the account short, and its max_position_pct_equity is measured on its own position."""

from __future__ import annotations

from decimal import Decimal as D

from trading.gates import gate_risk, gate_sizing
from trading.tests.core.test_gates import cand, ctx, limits, spec


def shared(**overrides):
    """The account holds 15 AAPL: strategy "a" bought 10, strategy "s" bought 5 (fresh dicts:
    `record_order` mutates the context)."""
    values = {
        "positions": {"AAPL": D(15)},
        "prices": {"AAPL": D(100)},
        "strategy_positions": {"a": {"AAPL": D(10)}, "s": {"AAPL": D(5)}},
    }
    return ctx(**{**values, **overrides})


def test_sizing_closes_only_the_strategys_own_long():
    c = cand(side="sell", price="50", strategy=spec(max_notional_per_trade=D(1000)))
    verdict = gate_sizing(c, shared())
    assert (verdict.passed, c.qty) == (True, D(5))  # sized 1000 / 50 = 20, "s" holds 5
    assert (verdict.details["sized_qty"], verdict.details["closing_long_qty"]) == (D(20), D(5))


def test_sizing_never_closes_more_than_the_account_holds():
    context = ctx(
        positions={"AAPL": D(3)},
        prices={"AAPL": D(100)},
        strategy_positions={"s": {"AAPL": D(5)}},  # the broker holds less than the book
    )
    c = cand(side="sell", strategy=spec(max_notional_per_trade=D(1000)))
    gate_sizing(c, context)
    assert c.qty == D(3)


def test_sizing_of_a_strategy_that_holds_nothing_is_left_to_the_risk_gate():
    context = ctx(positions={"AAPL": D(15)}, strategy_positions={"a": {"AAPL": D(15)}})
    c = cand(side="sell", strategy=spec(max_notional_per_trade=D(1000)))
    verdict = gate_sizing(c, context)
    assert (verdict.passed, c.qty) == (True, D(10))
    assert "closing_long_qty" not in verdict.details
    assert gate_risk(c, context).reasons == ("shorts_not_allowed",)


def test_shorts_are_judged_on_the_strategys_book():
    c = cand(side="sell")
    c.qty = D(6)
    assert gate_risk(c, shared()).reasons == ("shorts_not_allowed",)  # "s" holds 5
    c.qty = D(5)
    assert gate_risk(c, shared()).passed is True
    # allowed shorts: the strategy's own book does not limit the sell
    c.qty = D(6)
    assert gate_risk(c, shared(limits=limits(allow_shorts=True))).passed is True


def test_the_account_never_goes_short_even_when_the_book_holds_enough():
    c = cand(side="sell")
    c.qty = D(5)
    context = ctx(positions={"AAPL": D(4)}, strategy_positions={"s": {"AAPL": D(5)}})
    assert gate_risk(c, context).reasons == ("shorts_not_allowed",)


def test_strategy_position_pct_is_measured_on_the_strategys_own_position():
    # 1% of 100000 = 1000; "s" holds 5 at 100 = 500; the account's 15 (1500) does not count
    strategy = spec(max_position_pct_equity=D("0.01"))
    c = cand(strategy=strategy)
    c.qty = D(5)  # "s" would hold 10 x 100 = 1000: at the cap, allowed
    assert gate_risk(c, shared()).passed is True
    c.qty = D(6)  # 11 x 100 = 1100 > 1000
    assert gate_risk(c, shared()).reasons == ("max_position_pct_exceeded",)
    # a strategy that holds nothing may buy up to its cap although the account holds 15
    fresh = cand(strategy=spec(name="new", max_position_pct_equity=D("0.01")))
    fresh.qty = D(10)
    assert gate_risk(fresh, shared()).passed is True


def test_account_position_pct_still_caps_the_account():
    c = cand(strategy=spec(name="new"))
    c.qty = D(6)  # the account would hold 21 x 100 = 2100 > 2% of 100000
    context = shared(limits=limits(max_position_pct_equity=D("0.02")))
    assert gate_risk(c, context).reasons == ("max_position_pct_exceeded",)
    c.qty = D(5)
    assert gate_risk(c, context).passed is True


def test_record_order_moves_the_strategys_book_within_the_cycle():
    context = shared()
    context.record_order(
        symbol="AAPL", side="sell", qty=D(5), price=D(100), at=context.now, strategy="s"
    )
    assert context.strategy_position("s", "AAPL") == D(0)
    assert context.strategy_position("a", "AAPL") == D(10)
    again = cand(side="sell")
    again.qty = D(1)
    assert gate_risk(again, context).reasons == ("shorts_not_allowed",)


def test_open_sells_of_earlier_cycles_are_not_sold_twice():
    # "s" holds 5 and already offered 3 in an open sell: 2 are left to sell
    context = shared(strategy_open_sells={"s": {"AAPL": D(3)}})
    c = cand(side="sell", price="50", strategy=spec(max_notional_per_trade=D(1000)))
    verdict = gate_sizing(c, context)
    assert (c.qty, verdict.details["closing_long_qty"]) == (D(2), D(2))
    assert gate_risk(c, context).passed is True
    c.qty = D(3)
    assert gate_risk(c, context).reasons == ("shorts_not_allowed",)
    # another strategy's open sell does not limit "a"
    a = cand(side="sell", strategy=spec(name="a"))
    a.qty = D(10)
    assert gate_risk(a, context).passed is True
