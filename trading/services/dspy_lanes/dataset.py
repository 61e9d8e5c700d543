"""dataset-build: labelled examples from stored decisions and their outcomes.

A decision that passed the deterministic gates is labelled `veto` when the symbol's next recorded
price at least `horizon_minutes` after the decision moved against the trade by more than
`veto_bps` (markout, in basis points), else `approve`. Every fifth decision (by its hash) goes to
the evaluation split.
"""

from __future__ import annotations

import bisect
import csv
import io
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.utils import timezone

from torghut_site.hashing import sha256_hex
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
from trading.services.dspy_lanes.cutoff import lane_model, model_training_cutoff

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
    prices_path: Path | None = None,
    now: datetime | None = None,
) -> LLMDspyWorkflowArtifact:
    """Labelled examples of the decisions in the window. The file records the window, the model
    the lanes will call and its declared training cutoff (evaluate keeps only later decisions);
    `prices_path` (a bars CSV: timestamp, symbol, close) labels from recorded bars instead of
    the decisions' own prices. Building 0 examples is allowed and warned about (`warnings`)."""
    chosen = _decisions_chosen(account_labels=account_labels, since=since, until=until, limit=limit)
    prices, source = (
        _bar_prices(prices_path, {d.symbol for d in chosen})
        if prices_path is not None
        else (_decision_prices({d.symbol for d in chosen}), "trade_decisions.price")
    )
    examples, unlabelled = _examples_label(
        chosen, prices=prices, horizon=timedelta(minutes=horizon_minutes), veto_bps=veto_bps
    )
    model = lane_model()
    cutoff = model_training_cutoff(model)
    labeling = {
        "rule": "markout",
        "horizonMinutes": horizon_minutes,
        "vetoBelowBps": str(veto_bps),
        "evalEvery": EVAL_EVERY,
        "priceSource": source,
        "window": {
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        },
        "model": model,
        "trainingCutoff": cutoff.isoformat() if cutoff else None,
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
    warnings = _empty_warnings(chosen, examples, labeling=labeling)
    payload = {
        "schemaVersion": artifacts.DATASET_SCHEMA,
        "labeling": labeling,
        "examples": examples,
        "datasetHash": digest,
        "counts": counts,
        "warnings": warnings,
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
        metadata={"labeling": labeling, "warnings": warnings},
    )


def _empty_warnings(
    chosen: list[TradeDecision], examples: list[dict[str, Any]], *, labeling: dict[str, Any]
) -> list[str]:
    """Why a dataset has no labelled examples (nothing when it has some)."""
    if examples:
        return []
    window = labeling["window"]
    span = f"since {window['since'] or 'the start'} until {window['until'] or 'now'}"
    if not chosen:
        return [
            f"0 labelled examples: no priced decision that passed the deterministic gates "
            f"({', '.join(DETERMINISTIC_GATES)}) {span}"
        ]
    return [
        f"0 labelled examples: none of the {len(chosen)} decisions {span} has a later price "
        f"{labeling['horizonMinutes']} minutes after it in {labeling['priceSource']}"
    ]


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


def _decision_prices(symbols: set[str]) -> dict[str, list[tuple[datetime, Decimal]]]:
    """Each symbol's recorded decision prices, oldest first."""
    prices: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for symbol, ts, price in (
        TradeDecision.objects.filter(symbol__in=symbols, price__isnull=False)
        .order_by("event_ts", "pk")
        .values_list("symbol", "event_ts", "price")
    ):
        if price is not None:
            prices[symbol].append((ts, price))
    return prices


def _bar_prices(
    path: Path, symbols: set[str]
) -> tuple[dict[str, list[tuple[datetime, Decimal]]], str]:
    """Each symbol's bar closes from a bars CSV (timestamp, symbol, close), oldest first, and the
    price source named with the file's sha256 (the labels reproduce from that exact file)."""
    data = path.read_bytes()
    prices: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for row in csv.DictReader(io.StringIO(data.decode("utf-8"))):
        if row["symbol"] in symbols:
            when = datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00"))
            prices[row["symbol"]].append((when, Decimal(row["close"])))
    for series in prices.values():
        series.sort()
    return prices, f"bars:{path.name}:sha256={sha256_hex(data)}"


def _examples_label(
    chosen: list[TradeDecision],
    *,
    prices: dict[str, list[tuple[datetime, Decimal]]],
    horizon: timedelta,
    veto_bps: Decimal,
) -> tuple[list[dict[str, Any]], int]:
    """One labelled example per decision with a recorded price `horizon` after it, and how many
    decisions had none."""
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
        series = prices.get(decision.symbol, [])
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
    """A decision labelled by its markout from `price` (its own) to the exit price. The decision
    is named by its content hash, not its row id, so the same decisions hash alike in any
    database."""
    exit_at, exit_price = exit_
    direction = 1 if decision.action == "buy" else -1
    markout = direction * (exit_price - price) / price * Decimal(10000)
    return {
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
