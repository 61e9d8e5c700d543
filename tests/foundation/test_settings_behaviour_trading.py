"""Sizing, portfolio caps, risk and execution-policy settings: each one, set through the settings
that `trading.gates.RiskLimits.from_settings` reads, changes a gate's verdict, reason or qty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from trading.gates import (
    Candidate,
    CycleContext,
    RiskLimits,
    StrategySpec,
    gate_execution_policy,
    gate_portfolio,
    gate_risk,
    gate_sizing,
)

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
D = Decimal


@pytest.fixture
def limits(settings):
    """Flags off (env values stand), trading on, every optional cap unset."""
    settings.TRADING_FEATURE_FLAGS_ENABLED = False
    settings.TRADING_ENABLED = True
    settings.TRADING_ALLOW_SHORTS = False
    settings.TRADING_EXECUTION_PREFER_LIMIT = False
    for name in (
        "TRADING_MAX_NOTIONAL_PER_TRADE",
        "TRADING_MIN_NOTIONAL_PER_TRADE",
        "TRADING_MAX_POSITION_PCT_EQUITY",
        "TRADING_PORTFOLIO_NOTIONAL_PER_POSITION",
        "TRADING_PORTFOLIO_VOLATILITY_TARGET",
        "TRADING_PORTFOLIO_MAX_POSITIONS",
        "TRADING_PORTFOLIO_MAX_NOTIONAL_PER_SYMBOL",
        "TRADING_PORTFOLIO_MAX_GROSS_EXPOSURE",
        "TRADING_PORTFOLIO_MAX_GROSS_EXPOSURE_PCT_EQUITY",
        "TRADING_PORTFOLIO_MAX_NET_EXPOSURE",
        "TRADING_PORTFOLIO_MAX_NET_EXPOSURE_PCT_EQUITY",
    ):
        setattr(settings, name, None)
    settings.TRADING_PORTFOLIO_VOLATILITY_FLOOR = D(0)
    settings.TRADING_COOLDOWN_SECONDS = 0
    settings.TRADING_DEFAULT_QTY = D(1)
    return settings


STRATEGY = StrategySpec(
    id=1,
    name="s",
    version="1",
    strategy_type="legacy_macd_rsi",
    enabled=True,
    universe_symbols=frozenset(),
    max_notional_per_trade=None,
    max_position_pct_equity=None,
    params={},
    base_timeframe="1Min",
)


def _ctx(positions: dict[str, Decimal] | None = None, **changes: Any) -> CycleContext:
    values: dict[str, Any] = {
        "account_label": "paper",
        "is_live": False,
        "equity": D(10000),
        "cash": D(10000),
        "buying_power": D(10000),
        "positions": dict(positions or {}),
        "prices": {"AAPL": D(100), "MSFT": D(100), "NVDA": D(100)},
        "universe": None,
        "limits": RiskLimits.from_settings(kill_switch=False),
        "now": NOW,
    }
    values.update(changes)
    return CycleContext(**values)


def _buy(qty: str, *, symbol: str = "AAPL", side: str = "buy", **features) -> Candidate:
    return Candidate(
        strategy=STRATEGY,
        symbol=symbol,
        side=side,
        price=D(100),
        features=dict(features),
        event_ts=NOW,
        qty=D(qty),
    )


def test_default_qty_sizes_an_unbudgeted_order(limits):
    c = _buy("0")
    limits.TRADING_DEFAULT_QTY = D(3)
    assert gate_sizing(c, _ctx()).details["sized_qty"] == D(3)
    limits.TRADING_DEFAULT_QTY = D(7)
    assert gate_sizing(c, _ctx()).details["sized_qty"] == D(7)


def test_max_notional_per_trade_budgets_sizing_and_rejects_in_risk(limits):
    limits.TRADING_MAX_NOTIONAL_PER_TRADE = D(500)
    c = _buy("0")
    verdict = gate_sizing(c, _ctx())
    assert (verdict.details["rule"], c.qty) == ("max_notional_per_trade", D(5))
    assert gate_risk(_buy("6"), _ctx()).reasons == ("max_notional_exceeded",)
    limits.TRADING_MAX_NOTIONAL_PER_TRADE = D(600)
    assert gate_risk(_buy("6"), _ctx()).passed is True


def test_min_notional_per_trade_rejects_small_orders(limits):
    limits.TRADING_MIN_NOTIONAL_PER_TRADE = D(300)
    assert gate_execution_policy(_buy("2"), _ctx()).reasons == ("min_notional_not_met",)
    limits.TRADING_MIN_NOTIONAL_PER_TRADE = D(200)
    assert gate_execution_policy(_buy("2"), _ctx()).passed is True


def test_max_position_pct_equity_caps_the_projected_position(limits):
    limits.TRADING_MAX_POSITION_PCT_EQUITY = D("0.1")  # 1,000 of 10,000
    assert gate_risk(_buy("11"), _ctx()).reasons == ("max_position_pct_exceeded",)
    assert gate_risk(_buy("10"), _ctx()).passed is True
    limits.TRADING_MAX_POSITION_PCT_EQUITY = D("0.2")
    assert gate_risk(_buy("11"), _ctx()).passed is True


def test_cooldown_seconds_rejects_a_repeat_decision(limits):
    last = {"AAPL": NOW - timedelta(seconds=30)}
    limits.TRADING_COOLDOWN_SECONDS = 60
    assert gate_risk(_buy("1"), _ctx(last_decision_at=last)).reasons == ("cooldown_active",)
    limits.TRADING_COOLDOWN_SECONDS = 30
    assert gate_risk(_buy("1"), _ctx(last_decision_at=last)).passed is True


@pytest.mark.parametrize(
    ("setting", "tight", "loose", "reason"),
    [
        ("TRADING_PORTFOLIO_NOTIONAL_PER_POSITION", D(500), D(800), "max_notional_per_symbol_exceeded"),
        ("TRADING_PORTFOLIO_MAX_NOTIONAL_PER_SYMBOL", D(500), D(800), "max_notional_per_symbol_exceeded"),
        ("TRADING_PORTFOLIO_MAX_GROSS_EXPOSURE", D(1000), D(1300), "max_gross_exposure_exceeded"),
        ("TRADING_PORTFOLIO_MAX_GROSS_EXPOSURE_PCT_EQUITY", D("0.1"), D("0.13"), "max_gross_exposure_exceeded"),
        ("TRADING_PORTFOLIO_MAX_NET_EXPOSURE", D(1000), D(1300), "max_net_exposure_exceeded"),
        ("TRADING_PORTFOLIO_MAX_NET_EXPOSURE_PCT_EQUITY", D("0.1"), D("0.13"), "max_net_exposure_exceeded"),
    ],
)  # fmt: skip
def test_each_portfolio_cap_rejects_at_its_limit_and_clips_below_it(
    limits, setting, tight, loose, reason
):
    """AAPL already holds 5 @ 100 (500), MSFT 5 @ 100 (500): gross and net exposure 1,000."""
    held = {"AAPL": D(5), "MSFT": D(5)}
    setattr(limits, setting, tight)
    c = _buy("4")
    verdict = gate_portfolio(c, _ctx(held))
    assert (verdict.passed, verdict.reasons, c.qty) == (False, (reason,), D(0))
    setattr(limits, setting, loose)  # 300 of room: 4 clipped to 3
    c = _buy("4")
    verdict = gate_portfolio(c, _ctx(held))
    assert (verdict.passed, verdict.details["qty_out"]) == (True, D(3))


def test_max_positions_rejects_a_new_symbol(limits):
    held = {"AAPL": D(1), "MSFT": D(1)}
    limits.TRADING_PORTFOLIO_MAX_POSITIONS = 2
    assert gate_portfolio(_buy("1", symbol="NVDA"), _ctx(held)).reasons == (
        "max_positions_exceeded",
    )
    assert gate_portfolio(_buy("1", symbol="AAPL"), _ctx(held)).passed is True  # not a new one
    limits.TRADING_PORTFOLIO_MAX_POSITIONS = 3
    assert gate_portfolio(_buy("1", symbol="NVDA"), _ctx(held)).passed is True


def test_volatility_target_scales_qty_and_the_floor_raises_low_volatility(limits):
    limits.TRADING_PORTFOLIO_VOLATILITY_TARGET = D("0.01")
    c = _buy("10", vol_realized_w60s=0.02)
    verdict = gate_portfolio(c, _ctx())
    assert (verdict.details["volatility_scale"], c.qty) == (D("0.5"), D(5))
    assert gate_portfolio(_buy("10"), _ctx()).reasons == ("volatility_missing",)
    c = _buy("10", vol_realized_w60s=0.005)  # under the target: untouched
    assert (gate_portfolio(c, _ctx()).passed, c.qty) == (True, D(10))
    limits.TRADING_PORTFOLIO_VOLATILITY_FLOOR = D("0.04")  # 0.005 counts as 0.04
    c = _buy("10", vol_realized_w60s=0.005)
    assert (gate_portfolio(c, _ctx()).details["volatility_scale"], c.qty) == (D("0.25"), D(2))


@pytest.mark.parametrize(
    ("setting", "reason", "live"),
    [
        ("TRADING_WS_CRYPTO_ENABLED", "crypto_ws_disabled", False),
        ("TRADING_UNIVERSE_CRYPTO_ENABLED", "crypto_universe_disabled", False),
        ("TRADING_CRYPTO_ENABLED", "crypto_trading_disabled", False),
        ("TRADING_CRYPTO_LIVE_ENABLED", "crypto_live_trading_disabled", True),
    ],
)
def test_each_crypto_switch_gates_crypto_symbols(limits, setting, reason, live):
    for name in (
        "TRADING_WS_CRYPTO_ENABLED",
        "TRADING_UNIVERSE_CRYPTO_ENABLED",
        "TRADING_CRYPTO_ENABLED",
        "TRADING_CRYPTO_LIVE_ENABLED",
        "TRADING_LIVE_ENABLED",
    ):
        setattr(limits, name, True)
    crypto = _buy("1", symbol="BTC/USD")
    prices = {"BTC/USD": D(100)}
    assert gate_risk(crypto, _ctx(prices=prices, is_live=live)).passed is True
    setattr(limits, setting, False)
    assert gate_risk(crypto, _ctx(prices=prices, is_live=live)).reasons == (reason,)
    assert gate_risk(_buy("1"), _ctx(is_live=live)).passed is True  # equities unaffected


@pytest.mark.parametrize(
    ("setting", "flag_key", "reason"),
    [
        ("TRADING_CRYPTO_ENABLED", "torghut_trading_crypto_enabled", "crypto_trading_disabled"),
        ("TRADING_WS_CRYPTO_ENABLED", "torghut_ws_crypto_enabled", "crypto_ws_disabled"),
        (
            "TRADING_UNIVERSE_CRYPTO_ENABLED",
            "torghut_universe_crypto_enabled",
            "crypto_universe_disabled",
        ),
    ],
)
def test_each_crypto_flag_is_flipped_at_run_time(limits, flipt, setting, flag_key, reason):
    from tests.conftest import flag

    for name in (
        "TRADING_WS_CRYPTO_ENABLED",
        "TRADING_UNIVERSE_CRYPTO_ENABLED",
        "TRADING_CRYPTO_ENABLED",
    ):
        setattr(limits, name, True)
    crypto = _buy("1", symbol="BTC/USD")
    prices = {"BTC/USD": D(100)}
    flipt.set_flags(flag(flag_key, False))
    assert gate_risk(crypto, _ctx(prices=prices)).reasons == (reason,)
    flipt.set_flags(flag(flag_key, True))
    assert gate_risk(crypto, _ctx(prices=prices)).passed is True


def test_the_crypto_live_flag_can_only_switch_crypto_live_off(limits, flipt):
    from tests.conftest import flag

    for name in (
        "TRADING_WS_CRYPTO_ENABLED",
        "TRADING_UNIVERSE_CRYPTO_ENABLED",
        "TRADING_CRYPTO_ENABLED",
        "TRADING_LIVE_ENABLED",
    ):
        setattr(limits, name, True)
    limits.TRADING_CRYPTO_LIVE_ENABLED = False
    flipt.set_flags(
        flag("torghut_trading_crypto_live_enabled", True),
        flag("torghut_trading_live_enabled", True),
    )
    crypto = _buy("1", symbol="BTC/USD")
    ctx = _ctx(prices={"BTC/USD": D(100)}, is_live=True)
    assert gate_risk(crypto, ctx).reasons == ("crypto_live_trading_disabled",)
    limits.TRADING_CRYPTO_LIVE_ENABLED = True
    assert gate_risk(crypto, _ctx(prices={"BTC/USD": D(100)}, is_live=True)).passed is True
    flipt.set_flags(
        flag("torghut_trading_crypto_live_enabled", False),
        flag("torghut_trading_live_enabled", True),
    )
    assert gate_risk(crypto, _ctx(prices={"BTC/USD": D(100)}, is_live=True)).reasons == (
        "crypto_live_trading_disabled",
    )
