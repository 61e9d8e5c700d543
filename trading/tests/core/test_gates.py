from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from trading.gates import (
    Candidate,
    CycleContext,
    OpenOrder,
    RiskLimits,
    StrategySpec,
    floor_to_step,
    gate_execution_policy,
    gate_portfolio,
    gate_risk,
    gate_sizing,
    gate_universe,
)

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def limits(**overrides) -> RiskLimits:
    base = RiskLimits(
        trading_enabled=True,
        live_enabled=False,
        kill_switch=False,
        allow_shorts=False,
        prefer_limit=False,
        default_qty=Decimal(1),
        max_notional_per_trade=None,
        min_notional_per_trade=None,
        max_position_pct_equity=None,
        cooldown_seconds=0,
        notional_per_position=None,
        volatility_target=None,
        volatility_floor=Decimal(0),
        max_positions=None,
        max_notional_per_symbol=None,
        max_gross_exposure=None,
        max_gross_exposure_pct_equity=None,
        max_net_exposure=None,
        max_net_exposure_pct_equity=None,
        crypto_ws_enabled=False,
        crypto_universe_enabled=False,
        crypto_enabled=False,
        crypto_live_enabled=False,
    )
    return replace(base, **overrides)


def spec(**overrides) -> StrategySpec:
    base = StrategySpec(
        id=1,
        name="s",
        version="1.0.0",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        universe_symbols=frozenset(),
        max_notional_per_trade=None,
        max_position_pct_equity=None,
        params={},
        base_timeframe="1Min",
    )
    return replace(base, **overrides)


def ctx(**overrides) -> CycleContext:
    values: dict = dict(
        account_label="paper",
        is_live=False,
        equity=Decimal(100000),
        cash=Decimal(100000),
        buying_power=Decimal(100000),
        positions={},
        prices={},
        universe=None,
        limits=limits(),
        now=NOW,
    )
    values.update(overrides)
    return CycleContext(**values)


def cand(side="buy", price="100", symbol="AAPL", **kw) -> Candidate:
    return Candidate(
        strategy=kw.pop("strategy", spec()),
        symbol=symbol,
        side=side,
        price=Decimal(price) if price is not None else None,
        features=kw.pop("features", {}),
        event_ts=NOW,
        **kw,
    )


def test_floor_to_step_equities_and_crypto():
    assert floor_to_step(Decimal("24.99"), Decimal(1)) == Decimal(24)
    assert floor_to_step(Decimal("0.123456789"), Decimal("0.00000001")) == Decimal("0.12345678")
    assert floor_to_step(Decimal("-3"), Decimal(1)) == Decimal(0)


def test_universe_gate_reasons():
    c = cand(symbol="TSLA", strategy=spec(universe_symbols=frozenset({"AAPL"})))
    verdict = gate_universe(c, ctx(universe=frozenset({"AAPL"})))
    assert verdict.passed is False
    assert verdict.reasons == ("symbol_not_in_universe", "symbol_not_allowed")
    assert gate_universe(cand(), ctx(universe=frozenset({"AAPL"}))).passed is True


def test_sizing_uses_min_of_strategy_budget_and_pct_equity():
    c = cand(
        price="100",
        strategy=spec(
            max_notional_per_trade=Decimal(2500), max_position_pct_equity=Decimal("0.02")
        ),
    )
    verdict = gate_sizing(c, ctx())
    assert verdict.passed is True
    assert c.qty == Decimal(20)  # min(2500, 100000 * 0.02 = 2000) / 100
    assert verdict.details["rule"] == "strategy_budget"


def test_sizing_falls_back_to_global_notional_then_default_qty():
    c = cand(price="30")
    gate_sizing(c, ctx(limits=limits(max_notional_per_trade=Decimal(100))))
    assert c.qty == Decimal(3)
    c2 = cand(price="30")
    verdict = gate_sizing(c2, ctx())
    assert c2.qty == Decimal(1)
    assert verdict.details["rule"] == "default_qty"


def test_sizing_rejects_missing_price_and_zero_qty():
    assert gate_sizing(cand(price=None), ctx()).reasons == ("missing_price",)
    c = cand(price="5000", strategy=spec(max_notional_per_trade=Decimal(100)))
    verdict = gate_sizing(c, ctx())
    assert (verdict.passed, verdict.reasons, c.qty) == (
        False,
        ("allocator_reject_zero_qty",),
        Decimal(0),
    )


def test_sell_without_shorts_closes_at_most_the_long_position():
    c = cand(side="sell", strategy=spec(max_notional_per_trade=Decimal(1000)))
    context = ctx(
        positions={"AAPL": Decimal(4)},
        prices={"AAPL": Decimal(100)},
        strategy_positions={"s": {"AAPL": Decimal(4)}},
    )
    gate_sizing(c, context)
    assert c.qty == Decimal(4)


def test_risk_engine_collects_every_reason():
    c = cand(symbol="BTC/USD", strategy=spec(enabled=False))
    c.qty = Decimal(5)
    verdict = gate_risk(
        c, ctx(is_live=True, limits=limits(trading_enabled=False), buying_power=Decimal(100))
    )
    assert verdict.reasons == (
        "trading_disabled",
        "live_trading_disabled",
        "crypto_ws_disabled",
        "crypto_universe_disabled",
        "crypto_trading_disabled",
        "crypto_live_trading_disabled",
        "strategy_disabled",
        "insufficient_buying_power",
    )


def test_risk_engine_position_pct_notional_and_shorts():
    c = cand(
        strategy=spec(max_notional_per_trade=Decimal(400), max_position_pct_equity=Decimal("0.01"))
    )
    c.qty = Decimal(11)  # 1100 notional > 400 and 1100 > 1% of 100000
    assert gate_risk(c, ctx()).reasons == ("max_notional_exceeded", "max_position_pct_exceeded")
    s = cand(side="sell")
    s.qty = Decimal(1)
    assert gate_risk(s, ctx()).reasons == ("shorts_not_allowed",)
    assert gate_risk(s, ctx(limits=limits(allow_shorts=True))).passed is True


def test_risk_engine_cooldown():
    c = cand()
    c.qty = Decimal(1)
    context = ctx(
        limits=limits(cooldown_seconds=60), last_decision_at={"AAPL": NOW - timedelta(seconds=30)}
    )
    assert gate_risk(c, context).reasons == ("cooldown_active",)
    context.last_decision_at["AAPL"] = NOW - timedelta(seconds=61)
    assert gate_risk(c, context).passed is True


def test_portfolio_caps_clip_then_reject():
    c = cand(price="100")
    c.qty = Decimal(50)
    context = ctx(
        limits=limits(max_notional_per_symbol=Decimal(3000)),
        positions={"AAPL": Decimal(10)},
        prices={"AAPL": Decimal(100)},
    )
    verdict = gate_portfolio(c, context)
    assert (verdict.passed, c.qty) == (True, Decimal(20))  # 3000 cap - 1000 held = 2000 room
    c2 = cand(price="100")
    c2.qty = Decimal(5)
    context2 = ctx(
        limits=limits(max_positions=1), positions={"MSFT": Decimal(1)}, prices={"MSFT": Decimal(1)}
    )
    assert gate_portfolio(c2, context2).reasons == ("max_positions_exceeded",)


def test_portfolio_volatility_target_requires_volatility():
    c = cand()
    c.qty = Decimal(10)
    assert gate_portfolio(c, ctx(limits=limits(volatility_target=Decimal("0.01")))).reasons == (
        "volatility_missing",
    )
    c2 = cand(features={"vol_realized_w60s": 0.02})
    c2.qty = Decimal(10)
    verdict = gate_portfolio(c2, ctx(limits=limits(volatility_target=Decimal("0.01"))))
    assert (verdict.passed, c2.qty) == (True, Decimal(5))


def test_execution_policy_converts_market_to_near_touch_limit():
    buy = cand(price="100.003", features={"spread": 0.02})
    buy.qty = Decimal(1)
    verdict = gate_execution_policy(buy, ctx(limits=limits(prefer_limit=True)))
    assert (verdict.passed, buy.order_type, buy.limit_price) == (True, "limit", Decimal("100.02"))
    sell = cand(side="sell", price="0.51237", features={"spread": 0.001})
    sell.qty = Decimal(1)
    gate_execution_policy(sell, ctx(limits=limits(prefer_limit=True)))
    assert sell.limit_price == Decimal("0.5118")


def test_execution_policy_kill_switch_min_notional_and_opposite_order():
    c = cand()
    c.qty = Decimal(1)
    context = ctx(
        limits=limits(kill_switch=True, min_notional_per_trade=Decimal(500)),
        open_orders=[
            OpenOrder("o-1", "AAPL", "sell", "market"),
            OpenOrder("o-2", "AAPL", "sell", "limit"),
        ],
    )
    verdict = gate_execution_policy(c, context)
    assert verdict.reasons == (
        "kill_switch_active",
        "min_notional_not_met",
        "precheck_opposite_side_open_order",
    )
    assert verdict.details["conflicting_order_ids"] == ["o-1"]
    assert c.order_type == "market"


@pytest.mark.parametrize("qty", [Decimal("1.5"), Decimal(0)])
def test_execution_policy_rejects_bad_increment(qty):
    c = cand()
    c.qty = qty
    assert "invalid_qty_increment" in gate_execution_policy(c, ctx()).reasons
