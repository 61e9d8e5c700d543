"""dataset-build: labelled examples from stored decisions and their outcomes.

A decision that passed the deterministic gates is labelled `veto` when the symbol's next recorded
price at least `horizon_minutes` after the decision moved against the trade by more than
`veto_bps` (markout, in basis points), else `approve`. Every fifth decision (by its hash) goes to
the evaluation split.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from trading.llm.config import ReviewConfig
from trading.llm.dspy import artifacts
from trading.llm.dspy.agentrun import IMPLEMENTATION_SPEC_BY_LANE
from trading.llm.request import decision_request_snapshot
from trading.models import AccountLane, LLMDecisionReview, LLMDspyWorkflowArtifact, TradeDecision
from trading.models.llm import DspyArtifactStatus, DspyLane
from trading.services.dspy_lanes.common import (
    recorded,
    store_json,
    upsert,
)

DETERMINISTIC_GATES = ("universe", "sizing", "portfolio", "risk")
EVAL_EVERY = 5


def _passed_deterministic_gates(decision: TradeDecision) -> bool:
    passed = {v.get("gate") for v in decision.gate_verdicts if v.get("passed")}
    return all(gate in passed for gate in DETERMINISTIC_GATES)


def dspy_dataset_build(
    *,
    account_labels: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    horizon_minutes: int = 30,
    veto_bps: Decimal = Decimal(10),
    limit: int = 5000,
    now: datetime | None = None,
) -> LLMDspyWorkflowArtifact:
    chosen = _decisions_chosen(account_labels=account_labels, since=since, until=until, limit=limit)
    examples, unlabelled = _examples_label(
        chosen, horizon=timedelta(minutes=horizon_minutes), veto_bps=veto_bps
    )
    labeling = {
        "rule": "markout",
        "horizonMinutes": horizon_minutes,
        "vetoBelowBps": str(veto_bps),
        "evalEvery": EVAL_EVERY,
        "priceSource": "trade_decisions.price",
    }
    digest = artifacts.dataset_hash(labeling=labeling, examples=examples)
    if (done := recorded(f"dataset-build:{digest}")) is not None:
        return done
    counts = {
        "examples": len(examples),
        "train": sum(1 for e in examples if e["split"] == "train"),
        "eval": sum(1 for e in examples if e["split"] == "eval"),
        "veto": sum(1 for e in examples if e["label"]["verdict"] == "veto"),
        "unlabelled": unlabelled,
    }
    payload = {
        "schemaVersion": artifacts.DATASET_SCHEMA,
        "labeling": labeling,
        "examples": examples,
        "datasetHash": digest,
        "counts": counts,
        "createdAt": (now or timezone.now()).isoformat(),
    }
    key = f"dspy/datasets/{digest}/{artifacts.DATASET_FILE}"
    uri, file_hash = store_json(key, payload)
    return upsert(
        f"dataset-build:{digest}",
        lane=DspyLane.DATASET_BUILD,
        status=DspyArtifactStatus.BUILT,
        implementation_spec_ref=IMPLEMENTATION_SPEC_BY_LANE["dataset-build"],
        dataset_hash=digest,
        artifact_uri=uri,
        object_key=key,
        file_hash=file_hash,
        metric_bundle=counts,
        metadata={"labeling": labeling},
    )


def _decisions_chosen(
    *,
    account_labels: list[str] | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[TradeDecision]:
    """The priced decisions in the window, oldest first, that passed the deterministic gates."""
    decisions = TradeDecision.objects.exclude(price__isnull=True).select_related("strategy")
    if account_labels:
        decisions = decisions.filter(account_label__in=account_labels)
    if since is not None:
        decisions = decisions.filter(event_ts__gte=since)
    if until is not None:
        decisions = decisions.filter(event_ts__lt=until)
    return [
        d for d in decisions.order_by("event_ts", "pk")[:limit] if _passed_deterministic_gates(d)
    ]


def _examples_label(
    chosen: list[TradeDecision], *, horizon: timedelta, veto_bps: Decimal
) -> tuple[list[dict[str, Any]], int]:
    """One labelled example per decision with a recorded price `horizon` after it, and how many
    decisions had none."""
    prices: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for symbol, ts, price in (
        TradeDecision.objects.filter(symbol__in={d.symbol for d in chosen}, price__isnull=False)
        .order_by("event_ts", "pk")
        .values_list("symbol", "event_ts", "price")
    ):
        if price is not None:
            prices[symbol].append((ts, price))
    reviewed = dict(
        LLMDecisionReview.objects.filter(decision__in=chosen).values_list(
            "decision_id", "input_json"
        )
    )
    live = set(AccountLane.objects.filter(mode="live").values_list("label", flat=True))
    config = ReviewConfig.current()
    examples: list[dict[str, Any]] = []
    unlabelled = 0
    for decision in chosen:
        series = prices[decision.symbol]
        index = bisect.bisect_left([ts for ts, _ in series], decision.event_ts + horizon)
        if index >= len(series) or decision.price is None:
            unlabelled += 1
            continue
        snapshot = reviewed.get(decision.pk) or decision_request_snapshot(
            decision=decision, config=config, is_live=decision.account_label in live
        )
        examples.append(
            _example(
                decision,
                price=decision.price,
                snapshot=snapshot,
                exit_=series[index],
                veto_bps=veto_bps,
            )
        )
    return examples, unlabelled


def _example(
    decision: TradeDecision,
    *,
    price: Decimal,
    snapshot: dict[str, Any],
    exit_: tuple[datetime, Decimal],
    veto_bps: Decimal,
) -> dict[str, Any]:
    """A decision labelled by its markout from `price` (its own) to the exit price."""
    exit_at, exit_price = exit_
    direction = 1 if decision.action == "buy" else -1
    markout = direction * (exit_price - price) / price * Decimal(10000)
    return {
        "decisionId": decision.pk,
        "decisionHash": decision.decision_hash,
        "accountLabel": decision.account_label,
        "symbol": decision.symbol,
        "eventTs": decision.event_ts.isoformat(),
        "split": "eval" if int(decision.decision_hash[:8], 16) % EVAL_EVERY == 0 else "train",
        "requestJson": snapshot,
        "label": {
            "verdict": "veto" if markout < -veto_bps else "approve",
            "markoutBps": str(markout.quantize(Decimal("0.01"))),
            "exitPrice": str(exit_price),
            "exitAt": exit_at.isoformat(),
        },
    }
