"""The per-decision gate chain, as pure functions over an in-memory cycle context.

Order (each reject is recorded with its reasons): universe/allow-list → sizing → uncertainty
action → participation cap → allocator → portfolio caps → risk engine (which also refuses new
risk while the lane's broker stream is unhealthy, `CycleContext.trade_stream`) → LLM review (see
`trading.review`) → execution policy. The order firewall and the submit follow in
`trading.services.execution`. Nothing here does I/O: the context is loaded
once per cycle, which keeps a cycle's verdicts consistent and the hot path fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Any

from django.conf import settings

from torghut_site.flags import flag_enabled

ZERO = Decimal(0)
EQUITY_STEP = Decimal(1)
CRYPTO_STEP = Decimal("0.00000001")


def is_crypto(symbol: str) -> bool:
    return "/" in symbol


def qty_step(symbol: str) -> Decimal:
    return CRYPTO_STEP if is_crypto(symbol) else EQUITY_STEP


def floor_to_step(qty: Decimal, step: Decimal) -> Decimal:
    if qty <= 0:
        return ZERO
    return (qty / step).to_integral_value(rounding=ROUND_DOWN) * step


def price_tick(price: Decimal) -> Decimal:
    return Decimal("0.0001") if price < 1 else Decimal("0.01")


@dataclass(frozen=True)
class GateVerdict:
    gate: str
    passed: bool
    reasons: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "passed": self.passed,
            "reasons": list(self.reasons),
            "details": {
                k: (str(v) if isinstance(v, Decimal) else v) for k, v in self.details.items()
            },
        }


@dataclass(frozen=True)
class StrategySpec:
    id: int
    name: str
    version: str
    strategy_type: str
    enabled: bool
    universe_symbols: frozenset[str]
    max_notional_per_trade: Decimal | None
    max_position_pct_equity: Decimal | None
    params: dict[str, Any]
    base_timeframe: str
    # the research loop's gate-7 action, written by the promotion: pass | degrade | abstain | fail
    uncertainty_action: str = "pass"


@dataclass(frozen=True)
class RiskLimits:
    """Settings and flags read once per cycle, so one cycle sees one consistent configuration."""

    trading_enabled: bool
    live_enabled: bool
    kill_switch: bool
    allow_shorts: bool
    prefer_limit: bool
    default_qty: Decimal
    max_notional_per_trade: Decimal | None
    min_notional_per_trade: Decimal | None
    max_position_pct_equity: Decimal | None
    cooldown_seconds: int
    notional_per_position: Decimal | None
    volatility_target: Decimal | None
    volatility_floor: Decimal
    max_positions: int | None
    max_notional_per_symbol: Decimal | None
    max_gross_exposure: Decimal | None
    max_gross_exposure_pct_equity: Decimal | None
    max_net_exposure: Decimal | None
    max_net_exposure_pct_equity: Decimal | None
    crypto_ws_enabled: bool
    crypto_universe_enabled: bool
    crypto_enabled: bool
    crypto_live_enabled: bool
    max_participation_rate: Decimal | None = None
    allocator_enabled: bool = False
    allocator_strategy_caps: Mapping[str, Decimal] = field(default_factory=dict)
    allocator_symbol_caps: Mapping[str, Decimal] = field(default_factory=dict)
    allocator_max_symbol_notional: Decimal | None = None
    allocator_max_symbol_pct_equity: Decimal | None = None
    allocator_symbol_groups: Mapping[str, str] = field(default_factory=dict)
    allocator_group_caps: Mapping[str, Decimal] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, *, kill_switch: bool) -> RiskLimits:
        s = settings
        return cls(
            trading_enabled=flag_enabled("TRADING_ENABLED"),
            live_enabled=flag_enabled("TRADING_LIVE_ENABLED"),
            kill_switch=kill_switch,
            allow_shorts=flag_enabled("TRADING_ALLOW_SHORTS"),
            prefer_limit=flag_enabled("TRADING_EXECUTION_PREFER_LIMIT"),
            default_qty=s.TRADING_DEFAULT_QTY or Decimal(1),
            max_notional_per_trade=s.TRADING_MAX_NOTIONAL_PER_TRADE,
            min_notional_per_trade=s.TRADING_MIN_NOTIONAL_PER_TRADE,
            max_position_pct_equity=s.TRADING_MAX_POSITION_PCT_EQUITY,
            cooldown_seconds=s.TRADING_COOLDOWN_SECONDS,
            notional_per_position=s.TRADING_PORTFOLIO_NOTIONAL_PER_POSITION,
            volatility_target=s.TRADING_PORTFOLIO_VOLATILITY_TARGET,
            volatility_floor=s.TRADING_PORTFOLIO_VOLATILITY_FLOOR or ZERO,
            max_positions=s.TRADING_PORTFOLIO_MAX_POSITIONS,
            max_notional_per_symbol=s.TRADING_PORTFOLIO_MAX_NOTIONAL_PER_SYMBOL,
            max_gross_exposure=s.TRADING_PORTFOLIO_MAX_GROSS_EXPOSURE,
            max_gross_exposure_pct_equity=s.TRADING_PORTFOLIO_MAX_GROSS_EXPOSURE_PCT_EQUITY,
            max_net_exposure=s.TRADING_PORTFOLIO_MAX_NET_EXPOSURE,
            max_net_exposure_pct_equity=s.TRADING_PORTFOLIO_MAX_NET_EXPOSURE_PCT_EQUITY,
            crypto_ws_enabled=flag_enabled("TRADING_WS_CRYPTO_ENABLED"),
            crypto_universe_enabled=flag_enabled("TRADING_UNIVERSE_CRYPTO_ENABLED"),
            crypto_enabled=flag_enabled("TRADING_CRYPTO_ENABLED"),
            crypto_live_enabled=flag_enabled("TRADING_CRYPTO_LIVE_ENABLED"),
            max_participation_rate=s.TRADING_MAX_PARTICIPATION_RATE,
            allocator_enabled=flag_enabled("TRADING_ALLOCATOR_ENABLED"),
            allocator_strategy_caps=s.TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS,
            allocator_symbol_caps=s.TRADING_ALLOCATOR_SYMBOL_NOTIONAL_CAPS,
            allocator_max_symbol_notional=s.TRADING_ALLOCATOR_MAX_SYMBOL_NOTIONAL,
            allocator_max_symbol_pct_equity=s.TRADING_ALLOCATOR_MAX_SYMBOL_PCT_EQUITY,
            allocator_symbol_groups=s.TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS,
            allocator_group_caps=s.TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS,
        )


STREAM_UNHEALTHY = "trade_updates_stream_unhealthy"


@dataclass(frozen=True)
class StreamHealth:
    """A lane's broker `trade_updates` stream as the cycle sees it. `state`: "" (not watched: not
    an Alpaca lane, or the order feed is off), healthy, disconnected or silent. `gap_seconds`:
    since the last stream message while unhealthy, else 0."""

    state: str = ""
    gap_seconds: float = 0.0

    @property
    def healthy(self) -> bool:
        return self.state in ("", "healthy")


def stream_health_evaluate(
    *,
    open_orders: bool,
    market_open: bool | None,
    connected: bool,
    last_message_at: datetime | None,
    since: datetime | None,
    now: datetime,
    max_silence_seconds: float,
) -> StreamHealth:
    """Unhealthy only when it matters: orders are open, the market is open, and the stream is
    disconnected or has sent nothing for longer than `max_silence_seconds`. `since` stands in
    for `last_message_at` when the stream never sent anything (the oldest open order's time)."""
    if not open_orders or market_open is not True:
        return StreamHealth("healthy")
    last = last_message_at or since
    gap = max((now - last).total_seconds(), 0.0) if last is not None else 0.0
    if not connected:
        return StreamHealth("disconnected", gap)
    if last is None or gap > max_silence_seconds:
        return StreamHealth("silent", gap)
    return StreamHealth("healthy")


@dataclass(frozen=True)
class OpenOrder:
    broker_order_id: str
    symbol: str
    side: str
    order_type: str


@dataclass
class CycleContext:
    """Everything the gates read, loaded once per cycle, updated as the cycle commits orders."""

    account_label: str
    is_live: bool
    equity: Decimal
    cash: Decimal
    buying_power: Decimal
    positions: dict[str, Decimal]  # signed qty
    prices: dict[str, Decimal]  # last price per symbol
    universe: frozenset[str] | None  # None: no universe restriction configured
    limits: RiskLimits
    now: datetime
    open_orders: list[OpenOrder] = field(default_factory=list)
    last_decision_at: dict[str, datetime] = field(default_factory=dict)
    committed_buy_notional: Decimal = ZERO
    # strategy name -> symbol -> signed qty the strategy's filled orders hold (its book, from
    # `trading.selectors.allocation.strategy_books`), plus the orders it sent this cycle
    strategy_positions: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    # the lane's broker stream (loaded once per cycle); unhealthy refuses risk-increasing orders
    trade_stream: StreamHealth = field(default_factory=StreamHealth)
    # strategy name -> symbol -> unfilled qty of the strategy's open sell orders of earlier
    # cycles: what it holds but has already offered (`trading.selectors.books`)
    strategy_open_sells: dict[str, dict[str, Decimal]] = field(default_factory=dict)

    def position(self, symbol: str) -> Decimal:
        return self.positions.get(symbol, ZERO)

    def strategy_position(self, strategy: str, symbol: str) -> Decimal:
        """What `strategy` itself holds of `symbol` (signed); the account may hold more."""
        return self.strategy_positions.get(strategy, {}).get(symbol, ZERO)

    def strategy_sellable(self, strategy: str, symbol: str) -> Decimal:
        """What `strategy` may still sell without going short: its own position less the
        unfilled part of its open sell orders."""
        offered = self.strategy_open_sells.get(strategy, {}).get(symbol, ZERO)
        return self.strategy_position(strategy, symbol) - offered

    def position_value(self, symbol: str) -> Decimal:
        return self.position(symbol) * self.prices.get(symbol, ZERO)

    def gross_exposure(self) -> Decimal:
        return sum((abs(self.position_value(s)) for s in self.positions), ZERO)

    def net_exposure(self) -> Decimal:
        return sum((self.position_value(s) for s in self.positions), ZERO)

    def open_position_count(self) -> int:
        return sum(1 for qty in self.positions.values() if qty != 0)

    def strategy_gross(self, strategy: str) -> Decimal:
        """Absolute notional of everything `strategy` holds, at the last prices."""
        held = self.strategy_positions.get(strategy, {})
        return sum((abs(qty * self.prices.get(sym, ZERO)) for sym, qty in held.items()), ZERO)

    def group_gross(self, group: str) -> Decimal:
        """Absolute notional of the account's positions in one correlation group."""
        groups = self.limits.allocator_symbol_groups
        return sum(
            (abs(self.position_value(s)) for s in self.positions if groups.get(s) == group), ZERO
        )

    def record_order(
        self,
        *,
        symbol: str,
        side: str,
        qty: Decimal,
        price: Decimal,
        at: datetime,
        strategy: str,
    ) -> None:
        """Count an order just sent against this cycle's later decisions, in the account's
        position and in the book of the strategy that sent it."""
        signed = qty if side == "buy" else -qty
        self.positions[symbol] = self.position(symbol) + signed
        held = self.strategy_positions.setdefault(strategy, {})
        held[symbol] = held.get(symbol, ZERO) + signed
        self.prices.setdefault(symbol, price)
        if side == "buy":
            self.committed_buy_notional += qty * price
        self.last_decision_at[symbol] = at


@dataclass
class Candidate:
    strategy: StrategySpec
    symbol: str
    side: str
    price: Decimal | None
    features: dict[str, float]
    event_ts: datetime
    qty: Decimal = ZERO
    order_type: str = "market"
    time_in_force: str = "day"
    limit_price: Decimal | None = None
    verdicts: list[GateVerdict] = field(default_factory=list)
    # set by the LLM review hook: None (no review), True (review recorded in shadow, the
    # decision goes on), False (the decision waits in `pending_review` for the review)
    review_shadow: bool | None = None

    @property
    def notional(self) -> Decimal:
        return self.qty * (self.price or ZERO)

    @property
    def rejected_reasons(self) -> list[str]:
        return [reason for v in self.verdicts if not v.passed for reason in v.reasons]

    def signed_delta(self) -> Decimal:
        return self.qty if self.side == "buy" else -self.qty


# -- 1. universe / allow-list ----------------------------------------------------------------
def gate_universe(c: Candidate, ctx: CycleContext) -> GateVerdict:
    reasons = []
    if ctx.universe is not None and c.symbol not in ctx.universe:
        reasons.append("symbol_not_in_universe")
    if c.strategy.universe_symbols and c.symbol not in c.strategy.universe_symbols:
        reasons.append("symbol_not_allowed")
    return GateVerdict("universe", not reasons, tuple(reasons))


# -- 2. sizing (docs/compatibility.md#sizing-and-risk) ---------------------------------------------
def gate_sizing(c: Candidate, ctx: CycleContext) -> GateVerdict:
    if c.price is None or c.price <= 0:
        return GateVerdict("sizing", False, ("missing_price",))
    limits = ctx.limits
    caps = []
    if c.strategy.max_notional_per_trade is not None:
        caps.append(c.strategy.max_notional_per_trade)
    if c.strategy.max_position_pct_equity is not None and ctx.equity > 0:
        caps.append(ctx.equity * c.strategy.max_position_pct_equity)
    step = qty_step(c.symbol)
    if caps:
        budget = min(caps)
        rule = "strategy_budget"
    elif limits.max_notional_per_trade is not None:
        budget = limits.max_notional_per_trade
        rule = "max_notional_per_trade"
    else:
        budget = None
        rule = "default_qty"
    qty = (
        floor_to_step(budget / c.price, step)
        if budget is not None
        else floor_to_step(limits.default_qty, step)
    )
    details: dict[str, Any] = {"rule": rule, "budget": budget, "sized_qty": qty}
    if c.side == "sell" and not limits.allow_shorts:
        # a strategy closes only what it holds itself, and never more than the account holds
        own = ctx.strategy_sellable(c.strategy.name, c.symbol)
        held = max(min(own, ctx.position(c.symbol)), ZERO)
        if held > 0 and qty > held:
            qty = held
            details["closing_long_qty"] = held
    c.qty = qty
    if qty <= 0:
        return GateVerdict("sizing", False, ("allocator_reject_zero_qty",), details)
    return GateVerdict("sizing", True, (), details)


def _risk_increasing(c: Candidate, ctx: CycleContext) -> bool:
    current = ctx.position(c.symbol)
    return abs(current + c.signed_delta()) > abs(current)


def _clip_to_notional(c: Candidate, allowed_increase: Decimal) -> None:
    if c.price is None or c.price <= 0:
        return
    max_qty = floor_to_step(max(allowed_increase, ZERO) / c.price, qty_step(c.symbol))
    c.qty = min(c.qty, max_qty)


def _reduces_only(c: Candidate, ctx: CycleContext) -> bool:
    """The order only shrinks an open position toward zero (no flip to the other side)."""
    current = ctx.position(c.symbol)
    after = current + c.signed_delta()
    same_side = after == 0 or (after > 0) == (current > 0)
    return current != 0 and abs(after) < abs(current) and same_side


# -- 2b. uncertainty action (the research loop's gate 7, carried by the promoted strategy) ------
UNCERTAINTY_DEGRADE_QTY = Decimal("0.50")
UNCERTAINTY_DEGRADE_PARTICIPATION = Decimal("0.05")


def gate_uncertainty(c: Candidate, ctx: CycleContext) -> GateVerdict:
    """pass: nothing; degrade: half the quantity; abstain: no risk-increasing order; fail: no
    order that is not reduce-only. An order that only reduces a position always passes; an
    unknown action is treated as fail."""
    action = c.strategy.uncertainty_action
    details: dict[str, Any] = {"action": action}
    if action == "pass":
        return GateVerdict("uncertainty", True, (), details)
    if _reduces_only(c, ctx):
        details["risk_reducing"] = True
        return GateVerdict("uncertainty", True, (), details)
    if action == "abstain":
        if _risk_increasing(c, ctx):
            return GateVerdict("uncertainty", False, ("uncertainty_gate_abstain",), details)
        return GateVerdict("uncertainty", True, (), details)
    if action != "degrade":
        return GateVerdict("uncertainty", False, ("uncertainty_gate_fail",), details)
    details["qty_in"] = c.qty
    details["qty_multiplier"] = UNCERTAINTY_DEGRADE_QTY
    c.qty = floor_to_step(c.qty * UNCERTAINTY_DEGRADE_QTY, qty_step(c.symbol))
    details["qty_out"] = c.qty
    if c.qty <= 0:
        return GateVerdict("uncertainty", False, ("uncertainty_degrade_zero_qty",), details)
    return GateVerdict("uncertainty", True, (), details)


# -- 2c. participation cap ---------------------------------------------------------------------
def gate_participation(c: Candidate, ctx: CycleContext) -> GateVerdict:
    """TRADING_MAX_PARTICIPATION_RATE × the volume of the signal's bar caps a risk-increasing
    order's quantity (0.05 at most for a strategy whose uncertainty action is degrade). Without
    a bar volume the order is refused, never left uncapped."""
    rate = ctx.limits.max_participation_rate
    if rate is None:
        return GateVerdict("participation", True, (), {"rate": None})
    if c.strategy.uncertainty_action == "degrade":
        rate = min(rate, UNCERTAINTY_DEGRADE_PARTICIPATION)
    details: dict[str, Any] = {"rate": rate}
    if not _risk_increasing(c, ctx):
        details["risk_reducing"] = True
        return GateVerdict("participation", True, (), details)
    volume = c.features.get("volume")
    if volume is None:
        return GateVerdict("participation", False, ("participation_volume_missing",), details)
    bar_volume = max(Decimal(str(volume)), ZERO)
    cap = floor_to_step(rate * bar_volume, qty_step(c.symbol))
    details.update(bar_volume=bar_volume, cap_qty=cap, qty_in=c.qty)
    c.qty = min(c.qty, cap)
    details["qty_out"] = c.qty
    if c.qty <= 0:
        return GateVerdict("participation", False, ("participation_cap_zero_qty",), details)
    return GateVerdict("participation", True, (), details)


# -- 2d. allocator -----------------------------------------------------------------------------
def _allocator_budgets(c: Candidate, ctx: CycleContext) -> list[tuple[str, str, Decimal, Decimal]]:
    """(reason, name, cap, notional already used) of every allocator cap that applies."""
    limits = ctx.limits
    held = abs(ctx.position_value(c.symbol))
    budgets: list[tuple[str, str, Decimal, Decimal]] = []
    strategy_cap = limits.allocator_strategy_caps.get(c.strategy.name)
    if strategy_cap is not None:
        used = ctx.strategy_gross(c.strategy.name)
        budgets.append(("allocator_reject_strategy_budget", "strategy", strategy_cap, used))
    symbol_cap = limits.allocator_symbol_caps.get(c.symbol)
    if symbol_cap is not None:
        budgets.append(("allocator_reject_symbol_budget", "symbol", symbol_cap, held))
    capacity = [x for x in (limits.allocator_max_symbol_notional,) if x is not None]
    if limits.allocator_max_symbol_pct_equity is not None:
        capacity.append(ctx.equity * limits.allocator_max_symbol_pct_equity)
    if capacity:
        budgets.append(("allocator_reject_symbol_capacity", "symbol_capacity", min(capacity), held))
    group = limits.allocator_symbol_groups.get(c.symbol)
    group_cap = limits.allocator_group_caps.get(group) if group is not None else None
    if group is not None and group_cap is not None:
        used = ctx.group_gross(group)
        budgets.append(("allocator_reject_correlation_capacity", "correlation", group_cap, used))
    return budgets


def gate_allocator(c: Candidate, ctx: CycleContext) -> GateVerdict:
    """Under TRADING_ALLOCATOR_ENABLED, a risk-increasing order is clipped to the notional room
    left under its strategy's budget, its symbol's budget, the per-symbol capacity (absolute and
    % of equity) and its correlation group's cap; no room under one of them rejects it."""
    if not ctx.limits.allocator_enabled:
        return GateVerdict("allocator", True, (), {"enabled": False})
    details: dict[str, Any] = {"enabled": True}
    if not _risk_increasing(c, ctx):
        details["risk_reducing"] = True
        return GateVerdict("allocator", True, (), details)
    details["qty_in"] = c.qty
    group = ctx.limits.allocator_symbol_groups.get(c.symbol)
    if group is not None:
        details["correlation_group"] = group
    for reason, name, cap, used in _allocator_budgets(c, ctx):
        details[f"{name}_cap"] = cap
        details[f"{name}_used"] = used
        _clip_to_notional(c, cap - used)
        if c.qty <= 0:
            details["qty_out"] = c.qty
            return GateVerdict("allocator", False, (reason,), details)
    details["qty_out"] = c.qty
    return GateVerdict("allocator", True, (), details)


# -- 3. portfolio caps ---------------------------------------------------------------------------
def gate_portfolio(c: Candidate, ctx: CycleContext) -> GateVerdict:
    limits = ctx.limits
    if not _risk_increasing(c, ctx):
        return GateVerdict("portfolio", True, (), {"risk_reducing": True})
    price = c.price or ZERO
    reasons: list[str] = []
    details: dict[str, Any] = {"qty_in": c.qty}
    current_value = abs(ctx.position_value(c.symbol))
    if limits.max_positions is not None and ctx.position(c.symbol) == 0:
        if ctx.open_position_count() >= limits.max_positions:
            reasons.append("max_positions_exceeded")
    if limits.volatility_target is not None:
        vol = c.features.get("vol_realized_w60s")
        if vol is None:
            reasons.append("volatility_missing")
        else:
            effective = max(Decimal(str(vol)), limits.volatility_floor)
            if effective > 0 and effective > limits.volatility_target:
                scale = limits.volatility_target / effective
                c.qty = floor_to_step(c.qty * scale, qty_step(c.symbol))
                details["volatility_scale"] = scale
    symbol_caps = [
        x for x in (limits.notional_per_position, limits.max_notional_per_symbol) if x is not None
    ]
    if symbol_caps:
        _clip_to_notional(c, min(symbol_caps) - current_value)
        if c.qty <= 0:
            reasons.append("max_notional_per_symbol_exceeded")
    gross_caps = [x for x in (limits.max_gross_exposure,) if x is not None]
    if limits.max_gross_exposure_pct_equity is not None:
        gross_caps.append(ctx.equity * limits.max_gross_exposure_pct_equity)
    if gross_caps and c.qty > 0:
        _clip_to_notional(c, min(gross_caps) - ctx.gross_exposure())
        if c.qty <= 0:
            reasons.append("max_gross_exposure_exceeded")
    net_caps = [x for x in (limits.max_net_exposure,) if x is not None]
    if limits.max_net_exposure_pct_equity is not None:
        net_caps.append(ctx.equity * limits.max_net_exposure_pct_equity)
    if net_caps and c.qty > 0:
        net = ctx.net_exposure()
        room = min(net_caps) - (net if c.side == "buy" else -net)
        _clip_to_notional(c, room)
        if c.qty <= 0:
            reasons.append("max_net_exposure_exceeded")
    details["qty_out"] = c.qty
    details["notional"] = c.qty * price
    return GateVerdict("portfolio", not reasons, tuple(dict.fromkeys(reasons)), details)


# -- 4. risk engine (docs/compatibility.md#sizing-and-risk) ----------------------------------------
def _position_pct_exceeded(c: Candidate, ctx: CycleContext, *, increasing: bool) -> bool:
    """A strategy's max_position_pct_equity caps the strategy's own projected position; the
    account-wide TRADING_MAX_POSITION_PCT_EQUITY caps the account's projected position."""
    if not c.price:
        return False
    cap = (
        ctx.equity * c.strategy.max_position_pct_equity
        if c.strategy.max_position_pct_equity
        else None
    )
    own = ctx.strategy_position(c.strategy.name, c.symbol)
    own_after = own + c.signed_delta()
    if cap is not None and abs(own_after) > abs(own) and abs(own_after * c.price) > cap:
        return True
    account_pct = ctx.limits.max_position_pct_equity
    if account_pct is None or not increasing:
        return False
    projected = abs((ctx.position(c.symbol) + c.signed_delta()) * c.price)
    return projected > ctx.equity * account_pct


def gate_risk(c: Candidate, ctx: CycleContext) -> GateVerdict:
    limits = ctx.limits
    reasons: list[str] = []
    if not limits.trading_enabled:
        reasons.append("trading_disabled")
    if ctx.is_live and not limits.live_enabled:
        reasons.append("live_trading_disabled")
    increasing = _risk_increasing(c, ctx)
    details: dict[str, Any] = {}
    if increasing and not ctx.trade_stream.healthy:
        # fills may be happening that nobody hears of: no new risk until the stream is back or
        # the gap fill caught up; orders that reduce a position still go
        reasons.append(STREAM_UNHEALTHY)
        details["trade_stream"] = ctx.trade_stream.state
        details["trade_stream_gap_seconds"] = round(ctx.trade_stream.gap_seconds, 3)
    if is_crypto(c.symbol):
        if not limits.crypto_ws_enabled:
            reasons.append("crypto_ws_disabled")
        if not limits.crypto_universe_enabled:
            reasons.append("crypto_universe_disabled")
        if not limits.crypto_enabled:
            reasons.append("crypto_trading_disabled")
        if ctx.is_live and not limits.crypto_live_enabled:
            reasons.append("crypto_live_trading_disabled")
    if not c.strategy.enabled:
        reasons.append("strategy_disabled")
    if c.strategy.universe_symbols and c.symbol not in c.strategy.universe_symbols:
        reasons.append("symbol_not_allowed")
    if c.price is None or c.price <= 0:
        reasons.append("missing_price")
    notional = c.notional
    max_notional = c.strategy.max_notional_per_trade or limits.max_notional_per_trade
    if increasing and max_notional is not None and notional > max_notional:
        reasons.append("max_notional_exceeded")
    if c.side == "buy" and notional > ctx.buying_power - ctx.committed_buy_notional:
        reasons.append("insufficient_buying_power")
    if _position_pct_exceeded(c, ctx, increasing=increasing):
        reasons.append("max_position_pct_exceeded")
    own = ctx.strategy_sellable(c.strategy.name, c.symbol)
    if c.side == "sell" and not limits.allow_shorts:
        # judged on the strategy's own book, and the account may never go short either
        if own - c.qty < 0 or ctx.position(c.symbol) - c.qty < 0:
            reasons.append("shorts_not_allowed")
    if limits.cooldown_seconds > 0:
        last = ctx.last_decision_at.get(c.symbol)
        if last is not None and ctx.now - last < timedelta(seconds=limits.cooldown_seconds):
            reasons.append("cooldown_active")
    return GateVerdict("risk", not reasons, tuple(reasons), {"notional": notional, **details})


# -- 6. execution policy ------------------------------------------------------------------------
def gate_execution_policy(c: Candidate, ctx: CycleContext) -> GateVerdict:
    limits = ctx.limits
    reasons: list[str] = []
    details: dict[str, Any] = {}
    if limits.kill_switch:
        reasons.append("kill_switch_active")
    if limits.min_notional_per_trade is not None and c.notional < limits.min_notional_per_trade:
        reasons.append("min_notional_not_met")
    if c.qty != floor_to_step(c.qty, qty_step(c.symbol)) or c.qty <= 0:
        reasons.append("invalid_qty_increment")
    conflicting = [
        o.broker_order_id
        for o in ctx.open_orders
        if o.symbol == c.symbol
        and o.side != c.side
        and o.order_type in ("market", "stop", "stop_limit")
    ]
    if conflicting:
        reasons.append("precheck_opposite_side_open_order")
        details["conflicting_order_ids"] = conflicting
    if not reasons and limits.prefer_limit and c.order_type == "market" and c.price:
        spread = Decimal(str(c.features.get("spread") or 0))
        half = max(spread, ZERO) / 2
        tick = price_tick(c.price)
        if c.side == "buy":
            limit = ((c.price + half) / tick).to_integral_value(rounding=ROUND_CEILING) * tick
        else:
            limit = ((c.price - half) / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
        c.order_type = "limit"
        c.limit_price = limit
        details["converted_to_limit"] = str(limit)
    return GateVerdict("execution_policy", not reasons, tuple(reasons), details)
