"""Netting of one cycle's intents per symbol, before any decision is made.

Two strategies must never send opposite orders for one symbol in the same cycle. When a cycle's
intents for a symbol hold both sides, the side with the larger sum of confidence × sized notional
(the deterministic size the sizing gate gives, before any other gate) keeps its intents; every
intent of the other side is netted out. Equal sums: neither side trades. A netted-out intent is
still recorded as a rejected decision (reason `intent_netted_conflict`) under its own hash, so it
is traceable and a re-run of the cycle finds it as a duplicate.

Pure: plain values in, plain values out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from trading.gates import ZERO, Candidate, CycleContext, GateVerdict, StrategySpec, gate_sizing
from trading.signals.types import SignalEnvelope
from trading.strategies.base import Intent

SIDES = ("buy", "sell")


@dataclass(frozen=True)
class NettingIntent:
    symbol: str
    side: str  # buy | sell
    strategy: str
    confidence: float
    notional: Decimal  # the sized notional


@dataclass(frozen=True)
class NettedOut:
    """Why an intent does not trade: the side that won (None: a tie) and its strategies."""

    winning_side: str | None
    winning_strategies: tuple[str, ...]
    buy_score: Decimal
    sell_score: Decimal

    def verdict(self) -> GateVerdict:
        return GateVerdict(
            "netting",
            False,
            ("intent_netted_conflict",),
            {
                "winning_side": self.winning_side or "none",
                "winning_strategies": list(self.winning_strategies),
                "buy_score": self.buy_score,
                "sell_score": self.sell_score,
            },
        )


def net_intents(intents: Sequence[NettingIntent]) -> dict[int, NettedOut]:
    """Position in `intents` -> why that intent is netted out (intents absent from the result
    trade). Intents are taken in the order given (the cycle's signal, then strategy order)."""
    by_symbol: dict[str, list[int]] = {}
    for index, intent in enumerate(intents):
        by_symbol.setdefault(intent.symbol, []).append(index)
    out: dict[int, NettedOut] = {}
    for indexes in by_symbol.values():
        if len({intents[i].side for i in indexes}) < 2:
            continue
        score = {
            side: sum(
                (
                    Decimal(str(intents[i].confidence)) * intents[i].notional
                    for i in indexes
                    if intents[i].side == side
                ),
                ZERO,
            )
            for side in SIDES
        }
        winner = None if score["buy"] == score["sell"] else max(SIDES, key=score.__getitem__)
        winners = tuple(
            dict.fromkeys(intents[i].strategy for i in indexes if intents[i].side == winner)
        )
        netted = NettedOut(winner, winners, score["buy"], score["sell"])
        for i in indexes:
            if intents[i].side != winner:
                out[i] = netted
    return out


def netting_intent(
    *, spec: StrategySpec, signal: SignalEnvelope, intent: Intent, ctx: CycleContext
) -> NettingIntent:
    """An intent with the notional the sizing gate gives it on the cycle's opening books."""
    probe = candidate_for(spec=spec, signal=signal, intent=intent)
    gate_sizing(probe, ctx)
    return NettingIntent(
        symbol=signal.symbol,
        side=intent.action,
        strategy=spec.name,
        confidence=intent.confidence,
        notional=probe.notional,
    )


def candidate_for(*, spec: StrategySpec, signal: SignalEnvelope, intent: Intent) -> Candidate:
    """A strategy's intent on a signal as a gate candidate, not yet sized."""
    return Candidate(
        strategy=spec,
        symbol=signal.symbol,
        side=intent.action,
        price=signal.price,
        features=dict(signal.features),
        event_ts=signal.event_ts,
        order_type=intent.order_type,
        time_in_force=intent.time_in_force,
    )
