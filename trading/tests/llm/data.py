"""Stored decisions with known outcomes, and a local LM that answers like a perfect reviewer."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from trading.models import Strategy, TradeDecision
from trading.tests.llm.answers import dspy_fields, dspy_text, legacy_json

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
VETO_AT = {1, 4, 10, 13, 16}
LABELS = ["veto" if i in VETO_AT else "approve" for i in range(20)]
STEP = timedelta(minutes=40)
PASSED = [
    {"gate": gate, "passed": True, "reasons": [], "details": {}}
    for gate in ("universe", "sizing", "portfolio", "risk")
]


def seed_decisions(strategy: Strategy, labels: list[str]) -> dict[str, str]:
    """One AAPL buy every 40 minutes; the next decision's price makes decision i's outcome
    `labels[i]` (±1 % markout). Returns {event_ts ISO: label}; the last decision has no outcome."""
    price = Decimal(100)
    outcome: dict[str, str] = {}
    for i in range(len(labels) + 1):
        digest = hashlib.sha256(f"seed-{i}".encode()).hexdigest()
        ts = START + i * STEP
        TradeDecision.objects.create(
            strategy=strategy,
            account_label="paper",
            symbol="AAPL",
            timeframe="1Min",
            event_ts=ts,
            signal_seq=i,
            action="buy",
            qty=Decimal(10),
            price=price,
            decision_hash=digest,
            client_order_id="tg-" + digest[:45],
            status="filled",
            decision_json={
                "signal": {"features": {"macd": 1.0, "rsi14": 30.0}},
                "strategy": {"name": strategy.name, "version": "1", "params": {}},
            },
            gate_verdicts=PASSED,
        )
        if i < len(labels):
            outcome[ts.isoformat()] = labels[i]
            price = (
                price * (Decimal("0.99") if labels[i] == "veto" else Decimal("1.01"))
            ).quantize(Decimal("0.000001"))
    return outcome


_EVENT_TS = re.compile(r'"event_ts":"([^"]+)"')


def is_dspy(body: dict[str, Any]) -> bool:
    return any("[[ ## request_json ## ]]" in str(m.get("content", "")) for m in body["messages"])


def perfect_reviewer(
    labels: dict[str, str], *, legacy: str = "approve"
) -> Callable[[dict[str, Any]], str]:
    """DSPy calls get the labelled verdict of the decision asked about; legacy calls `legacy`."""

    def answer(body: dict[str, Any]) -> str:
        if not is_dspy(body):
            return legacy_json(legacy)
        match = _EVENT_TS.search(str(body["messages"][-1]["content"]))
        verdict = labels.get(match.group(1), "approve") if match else "approve"
        return dspy_text(verdict)

    return answer


def constant_dspy(
    verdict: str, *, legacy: str = "approve", **overrides: Any
) -> Callable[[dict[str, Any]], str]:
    fields = dspy_fields(verdict, **overrides)

    def answer(body: dict[str, Any]) -> str:
        if not is_dspy(body):
            return legacy_json(legacy)
        from trading.tests.llm.answers import chat_adapter_text

        return chat_adapter_text(fields)

    return answer
