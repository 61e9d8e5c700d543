"""The review request: a snapshot of what the decision saw, and the chat messages built from it.

The snapshot is taken in the trade cycle (no I/O beyond what the cycle already loaded, plus the
recent decisions) and stored on the review row; the task builds the prompt from the stored
snapshot only, so a review can be replayed byte for byte.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from torghut_site.hashing import canonical_text
from trading.gates import Candidate, CycleContext
from trading.llm.config import ALLOWED_ORDER_TYPES, ReviewConfig
from trading.llm.policy import PROMPTS_DIR
from trading.signals.session import market_is_open

SCHEMA_VERSION = "torghut.llm-review-request.v1"


def _num(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def review_request_snapshot(
    *,
    candidate: Candidate,
    ctx: CycleContext,
    config: ReviewConfig,
    recent_decisions: list[dict[str, Any]],
    adjustments_allowed: bool,
) -> dict[str, Any]:
    spec = candidate.strategy
    exposure = {
        symbol: str(ctx.position_value(symbol))
        for symbol in sorted(ctx.positions)
        if ctx.position(symbol)
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "decision": {
            "strategy_id": spec.name,
            "strategy_version": spec.version,
            "symbol": candidate.symbol,
            "action": candidate.side,
            "qty": str(candidate.qty),
            "order_type": candidate.order_type,
            "time_in_force": candidate.time_in_force,
            "limit_price": _num(candidate.limit_price),
            "event_ts": candidate.event_ts.isoformat(),
            "timeframe": spec.base_timeframe,
            "params": spec.params,
        },
        "portfolio": {
            "equity": str(ctx.equity),
            "cash": str(ctx.cash),
            "buying_power": str(ctx.buying_power),
            "total_exposure": str(ctx.gross_exposure()),
            "exposure_by_symbol": exposure,
        },
        "market": {
            "symbol": candidate.symbol,
            "as_of": candidate.event_ts.isoformat(),
            "price": _num(candidate.price),
            "spread": candidate.features.get("spread"),
            "features": {k: candidate.features[k] for k in sorted(candidate.features)},
        },
        "recent_decisions": recent_decisions,
        "policy": {
            "adjustment_allowed": adjustments_allowed,
            "min_qty_multiplier": str(config.min_qty_multiplier),
            "max_qty_multiplier": str(min(config.max_qty_multiplier, Decimal(1))),
            "evidence_price_band_bps": str(config.evidence_price_band_bps),
            "allowed_order_types": list(ALLOWED_ORDER_TYPES),
        },
        "trading_mode": "live" if ctx.is_live else "paper",
        "market_session": "regular" if market_is_open(candidate.event_ts) else "closed",
        "prompt_version": config.prompt_version,
    }


def system_prompt(prompt_version: str) -> str:
    return (PROMPTS_DIR / f"system_{prompt_version}.txt").read_text(encoding="utf-8")


def review_messages(snapshot: dict[str, Any], *, prompt_version: str) -> list[dict[str, str]]:
    compact = canonical_text(snapshot)
    return [
        {"role": "system", "content": system_prompt(prompt_version)},
        {
            "role": "user",
            "content": "Review the following trade decision and answer with the JSON object "
            f"described above.\n{compact}",
        },
    ]


def decision_request_snapshot(
    *, decision: Any, config: ReviewConfig, is_live: bool
) -> dict[str, Any]:
    """A review request rebuilt from a stored decision (for datasets of decisions that were
    never reviewed): the decision and the market it saw; the portfolio is not known any more."""
    signal = decision.decision_json.get("signal", {})
    strategy = decision.decision_json.get("strategy", {})
    features = signal.get("features") or {}
    return {
        "schema_version": SCHEMA_VERSION,
        "decision": {
            "strategy_id": strategy.get("name", ""),
            "strategy_version": strategy.get("version", ""),
            "symbol": decision.symbol,
            "action": decision.action,
            "qty": str(decision.qty),
            "order_type": decision.order_type,
            "time_in_force": decision.time_in_force,
            "limit_price": _num(decision.limit_price),
            "event_ts": decision.event_ts.isoformat(),
            "timeframe": decision.timeframe,
            "params": strategy.get("params", {}),
        },
        "portfolio": {},
        "market": {
            "symbol": decision.symbol,
            "as_of": decision.event_ts.isoformat(),
            "price": _num(decision.price),
            "spread": features.get("spread"),
            "features": {k: features[k] for k in sorted(features)},
        },
        "recent_decisions": [],
        "policy": {
            "adjustment_allowed": False,
            "min_qty_multiplier": str(config.min_qty_multiplier),
            "max_qty_multiplier": str(min(config.max_qty_multiplier, Decimal(1))),
            "evidence_price_band_bps": str(config.evidence_price_band_bps),
            "allowed_order_types": list(ALLOWED_ORDER_TYPES),
        },
        "trading_mode": "live" if is_live else "paper",
        "market_session": "regular" if market_is_open(decision.event_ts) else "closed",
        "prompt_version": config.prompt_version,
    }
