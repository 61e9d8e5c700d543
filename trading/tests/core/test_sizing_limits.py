"""Pure tests of the sizing limits after the sizing gate: uncertainty action, participation cap,
allocator budgets, and the per-symbol netting of a cycle's intents."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trading.gates import (
    CycleContext,
    gate_allocator,
    gate_participation,
    gate_uncertainty,
)
from trading.netting import NettingIntent, net_intents
from trading.tests.core.test_gates import cand, ctx, limits, spec

D = Decimal


def sized(qty: str | int, **kw):
    c = cand(**kw)
    c.qty = D(qty)
    return c


# -- uncertainty action -------------------------------------------------------------------------
def test_uncertainty_pass_changes_nothing():
    c = sized(7)
    verdict = gate_uncertainty(c, ctx())
    assert (verdict.passed, verdict.reasons, verdict.details, c.qty) == (
        True,
        (),
        {"action": "pass"},
        D(7),
    )


@pytest.mark.parametrize(("qty_in", "qty_out"), [(7, 3), (10, 5), (1, 0)])
def test_uncertainty_degrade_halves_and_floors_to_the_step(qty_in, qty_out):
    c = sized(qty_in, strategy=spec(uncertainty_action="degrade"))
    verdict = gate_uncertainty(c, ctx())
    assert c.qty == D(qty_out)
    assert verdict.details["action"] == "degrade"
    assert verdict.details["qty_multiplier"] == D("0.50")
    if qty_out:
        assert (verdict.passed, verdict.reasons) == (True, ())
    else:
        assert (verdict.passed, verdict.reasons) == (False, ("uncertainty_degrade_zero_qty",))


def test_uncertainty_degrade_crypto_keeps_fractional_step():
    c = sized("0.00000003", symbol="BTC/USD", strategy=spec(uncertainty_action="degrade"))
    assert gate_uncertainty(c, ctx()).passed is True
    assert c.qty == D("0.00000001")


def test_uncertainty_abstain_refuses_risk_increasing_entries_only():
    abstain = spec(uncertainty_action="abstain")
    entry = sized(5, strategy=abstain)
    verdict = gate_uncertainty(entry, ctx())
    assert (verdict.passed, verdict.reasons, verdict.details) == (
        False,
        ("uncertainty_gate_abstain",),
        {"action": "abstain"},
    )
    # a sell that flips long 10 to short 5 is not risk-increasing: abstain lets it through
    flip = sized(15, side="sell", strategy=abstain)
    assert gate_uncertainty(flip, ctx(positions={"AAPL": D(10)})).passed is True


def test_uncertainty_fail_refuses_every_order_that_is_not_reduce_only():
    failing = spec(uncertainty_action="fail")
    for c, positions in (
        (sized(5, strategy=failing), {}),
        (sized(15, side="sell", strategy=failing), {"AAPL": D(10)}),  # flip
        (sized(5, side="sell", strategy=failing), {}),  # new short
    ):
        verdict = gate_uncertainty(c, ctx(positions=positions))
        assert (verdict.passed, verdict.reasons) == (False, ("uncertainty_gate_fail",))


@pytest.mark.parametrize("action", ["degrade", "abstain", "fail"])
def test_uncertainty_risk_reducing_orders_always_pass_unchanged(action):
    c = sized(4, side="sell", strategy=spec(uncertainty_action=action))
    verdict = gate_uncertainty(c, ctx(positions={"AAPL": D(10)}))
    assert (verdict.passed, verdict.details, c.qty) == (
        True,
        {"action": action, "risk_reducing": True},
        D(4),
    )


# -- participation cap --------------------------------------------------------------------------
def test_participation_unset_passes():
    c = sized(500, features={})
    assert gate_participation(c, ctx()).details == {"rate": None}
    assert c.qty == D(500)


def test_participation_caps_qty_at_rate_times_bar_volume():
    c = sized(500, features={"volume": 1234.0})
    verdict = gate_participation(c, ctx(limits=limits(max_participation_rate=D("0.1"))))
    assert verdict.passed is True
    assert c.qty == D(123)  # 0.1 x 1234 = 123.4, floored to one share
    assert verdict.as_json()["details"] == {
        "rate": "0.1",
        "bar_volume": "1234.0",
        "cap_qty": "123",
        "qty_in": "500",
        "qty_out": "123",
    }


def test_participation_below_the_cap_keeps_the_qty():
    c = sized(10, features={"volume": 1000.0})
    assert gate_participation(c, ctx(limits=limits(max_participation_rate=D("0.1")))).passed
    assert c.qty == D(10)


def test_participation_cap_to_zero_and_missing_volume_refuse():
    capped = limits(max_participation_rate=D("0.1"))
    thin = sized(10, features={"volume": 9.0})
    verdict = gate_participation(thin, ctx(limits=capped))
    assert (verdict.passed, verdict.reasons, thin.qty) == (
        False,
        ("participation_cap_zero_qty",),
        D(0),
    )
    assert verdict.details["cap_qty"] == D(0)
    missing = sized(10, features={})
    verdict = gate_participation(missing, ctx(limits=capped))
    assert (verdict.passed, verdict.reasons, missing.qty) == (
        False,
        ("participation_volume_missing",),
        D(10),
    )


def test_participation_degrade_lowers_the_rate_to_five_percent():
    c = sized(500, features={"volume": 1000.0}, strategy=spec(uncertainty_action="degrade"))
    verdict = gate_participation(c, ctx(limits=limits(max_participation_rate=D("0.2"))))
    assert (verdict.details["rate"], c.qty) == (D("0.05"), D(50))
    # a lower configured rate stays
    c2 = sized(500, features={"volume": 1000.0}, strategy=spec(uncertainty_action="degrade"))
    gate_participation(c2, ctx(limits=limits(max_participation_rate=D("0.01"))))
    assert c2.qty == D(10)


def test_participation_risk_reducing_order_passes_without_volume():
    c = sized(10, side="sell", features={})
    verdict = gate_participation(
        c, ctx(limits=limits(max_participation_rate=D("0.1")), positions={"AAPL": D(10)})
    )
    assert (verdict.passed, verdict.details, c.qty) == (
        True,
        {"rate": D("0.1"), "risk_reducing": True},
        D(10),
    )


# -- allocator ----------------------------------------------------------------------------------
def allocated(**kw) -> CycleContext:
    return ctx(limits=limits(allocator_enabled=True, **kw.pop("limits", {})), **kw)


def test_allocator_disabled_passes_with_enabled_false():
    c = sized(50)
    context = ctx(limits=limits(allocator_strategy_caps={"s": D(0)}))
    assert gate_allocator(c, context).as_json() == {
        "gate": "allocator",
        "passed": True,
        "reasons": [],
        "details": {"enabled": False},
    }
    assert c.qty == D(50)


def test_allocator_strategy_budget_counts_only_that_strategys_holdings():
    context = allocated(
        limits={"allocator_strategy_caps": {"s": D(5000)}},
        positions={"AAPL": D(20), "MSFT": D(10)},
        prices={"AAPL": D(100), "MSFT": D(200)},
        strategy_positions={"s": {"MSFT": D(10)}, "other": {"AAPL": D(20)}},
    )
    c = sized(50)
    verdict = gate_allocator(c, context)
    # 5000 cap - 2000 (s holds 10 MSFT at 200) = 3000 room at 100 a share
    assert (verdict.passed, c.qty) == (True, D(30))
    assert (verdict.details["strategy_cap"], verdict.details["strategy_used"]) == (
        D(5000),
        D(2000),
    )
    full = allocated(
        limits={"allocator_strategy_caps": {"s": D(2000)}},
        prices={"MSFT": D(200)},
        strategy_positions={"s": {"MSFT": D(-10)}},  # a short counts at its absolute value
    )
    c2 = sized(50)
    verdict = gate_allocator(c2, full)
    assert (verdict.passed, verdict.reasons, c2.qty) == (
        False,
        ("allocator_reject_strategy_budget",),
        D(0),
    )


def test_allocator_symbol_budget():
    context = allocated(
        limits={"allocator_symbol_caps": {"AAPL": D(2550)}},
        positions={"AAPL": D(10)},
        prices={"AAPL": D(100)},
    )
    c = sized(50)
    assert gate_allocator(c, context).passed is True
    assert c.qty == D(15)  # 2550 - 1000 held = 1550 room → 15 shares
    spent = allocated(
        limits={"allocator_symbol_caps": {"AAPL": D(1000)}},
        positions={"AAPL": D(10)},
        prices={"AAPL": D(100)},
    )
    c2 = sized(50)
    assert gate_allocator(c2, spent).reasons == ("allocator_reject_symbol_budget",)
    # another symbol's budget does not apply
    c3 = sized(50, symbol="MSFT")
    assert (gate_allocator(c3, spent).passed, c3.qty) == (True, D(50))


def test_allocator_symbol_capacity_takes_the_smaller_of_notional_and_pct_equity():
    by_pct = allocated(
        limits={
            "allocator_max_symbol_notional": D(5000),
            "allocator_max_symbol_pct_equity": D("0.02"),  # 2% of 100000 = 2000
        }
    )
    c = sized(50)
    verdict = gate_allocator(c, by_pct)
    assert (verdict.passed, c.qty, verdict.details["symbol_capacity_cap"]) == (
        True,
        D(20),
        D(2000),
    )
    by_notional = allocated(limits={"allocator_max_symbol_notional": D(1200)})
    c2 = sized(50)
    gate_allocator(c2, by_notional)
    assert c2.qty == D(12)
    full = allocated(
        limits={"allocator_max_symbol_notional": D(1000)},
        positions={"AAPL": D(10)},
        prices={"AAPL": D(100)},
    )
    c3 = sized(50)
    assert gate_allocator(c3, full).reasons == ("allocator_reject_symbol_capacity",)


def test_allocator_correlation_group_cap():
    groups = {"AAPL": "tech", "MSFT": "tech", "XOM": "energy"}
    context = allocated(
        limits={
            "allocator_symbol_groups": groups,
            "allocator_group_caps": {"tech": D(5000)},
        },
        positions={"MSFT": D(10), "XOM": D(100)},
        prices={"MSFT": D(300), "XOM": D(100)},
    )
    c = sized(50)
    verdict = gate_allocator(c, context)
    # tech holds 3000 of MSFT (XOM is energy): 2000 room
    assert (verdict.passed, c.qty, verdict.details["correlation_group"]) == (True, D(20), "tech")
    assert verdict.details["correlation_used"] == D(3000)
    full = allocated(
        limits={
            "allocator_symbol_groups": groups,
            "allocator_group_caps": {"tech": D(3000)},
        },
        positions={"MSFT": D(10)},
        prices={"MSFT": D(300)},
    )
    c2 = sized(50)
    assert gate_allocator(c2, full).reasons == ("allocator_reject_correlation_capacity",)
    # a symbol of an uncapped group passes
    c3 = sized(5, symbol="XOM")
    assert (gate_allocator(c3, full).passed, c3.qty) == (True, D(5))


def test_allocator_record_order_counts_this_cycles_orders():
    context = allocated(limits={"allocator_strategy_caps": {"s": D(3000)}}, prices={})
    first = sized(20)
    assert gate_allocator(first, context).passed is True
    context.record_order(
        symbol="AAPL", side="buy", qty=first.qty, price=D(100), at=context.now, strategy="s"
    )
    assert context.strategy_positions == {"s": {"AAPL": D(20)}}
    second = sized(20)
    gate_allocator(second, context)
    assert second.qty == D(10)  # 3000 - 2000 already sent this cycle


def test_allocator_risk_reducing_order_passes_every_cap():
    context = allocated(
        limits={
            "allocator_strategy_caps": {"s": D(0)},
            "allocator_symbol_caps": {"AAPL": D(0)},
            "allocator_max_symbol_notional": D(0),
            "allocator_max_symbol_pct_equity": D(0),
            "allocator_symbol_groups": {"AAPL": "tech"},
            "allocator_group_caps": {"tech": D(0)},
        },
        positions={"AAPL": D(30)},
        prices={"AAPL": D(100)},
        strategy_positions={"s": {"AAPL": D(30)}},
    )
    c = sized(30, side="sell")
    verdict = gate_allocator(c, context)
    assert (verdict.passed, verdict.details, c.qty) == (
        True,
        {"enabled": True, "risk_reducing": True},
        D(30),
    )
    # the same caps reject an entry with the first budget that has no room
    entry = sized(1)
    assert gate_allocator(entry, context).reasons == ("allocator_reject_strategy_budget",)


# -- netting ------------------------------------------------------------------------------------
def intent(symbol, side, strategy, confidence, notional) -> NettingIntent:
    return NettingIntent(symbol, side, strategy, confidence, D(notional))


def test_netting_keeps_the_side_with_the_larger_confidence_times_notional():
    intents = [
        intent("AAPL", "buy", "a", 0.65, 1000),  # 650
        intent("AAPL", "sell", "b", 0.9, 1000),  # 900
        intent("MSFT", "buy", "a", 0.5, 100),  # alone on its symbol: untouched
        intent("AAPL", "buy", "c", 0.5, 600),  # 300 → buys 950 > 900
    ]
    netted = net_intents(intents)
    assert sorted(netted) == [1]
    out = netted[1]
    assert (out.winning_side, out.winning_strategies) == ("buy", ("a", "c"))
    assert (out.buy_score, out.sell_score) == (D("950.0"), D("900.0"))
    assert out.verdict().as_json() == {
        "gate": "netting",
        "passed": False,
        "reasons": ["intent_netted_conflict"],
        "details": {
            "winning_side": "buy",
            "winning_strategies": ["a", "c"],
            "buy_score": "950.00",
            "sell_score": "900.0",
        },
    }


def test_netting_tie_trades_neither_side_and_one_side_nets_nothing():
    tie = net_intents([intent("AAPL", "buy", "a", 0.5, 1000), intent("AAPL", "sell", "b", 1, 500)])
    assert sorted(tie) == [0, 1]
    assert (tie[0].winning_side, tie[0].winning_strategies) == (None, ())
    assert tie[0].verdict().details["winning_side"] == "none"
    same_side = [intent("AAPL", "buy", "a", 0.5, 1000), intent("AAPL", "buy", "b", 0.9, 10)]
    assert net_intents(same_side) == {}
