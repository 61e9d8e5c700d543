"""Provenance from paper to order, both ways (pure reads; the admin pages in
`ops.admin_provenance` render them).

paper → whitepaper run → candidate → evidence → gate verdicts → promotion → strategy version →
decision → order. The links between the apps are plain values, since the apps below `ops` do not
see each other:
- a decision records the strategy version it was computed with and the autonomy promotion that
  had applied its strategy (`TradeDecision.strategy_version`, `promotion_ref`);
- a promotion names its candidate (a foreign key inside autonomy), the candidate its research run;
- a whitepaper run names the candidates it inspired by id (`WhitepaperRunCandidateLink`).
A plain value that names nothing (a candidate not made yet, a promotion of another database) is
shown as unresolved, never dropped. Lists are bounded: each says how many more there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from autonomy.models import Promotion, PromotionAction, ResearchCandidate, ResearchRun
from autonomy.selectors import GateRow, gate_rows
from trading.models import Execution, Strategy, TradeDecision
from whitepapers.models import WhitepaperAnalysisRun, WhitepaperRunCandidateLink

MAX_ORDERS = 5  # per decision
MAX_DECISIONS = 10  # per promotion, from a whitepaper run
MAX_PROMOTIONS = 10  # per candidate, from a whitepaper run
MAX_WHITEPAPER_RUNS = 10  # per candidate, from a decision
MAX_LINKS = 50  # per whitepaper run


@dataclass(frozen=True)
class OrderNode:
    pk: int
    broker: str
    broker_order_id: str
    client_order_id: str
    side: str
    status: str
    submitted_qty: Decimal
    filled_qty: Decimal
    avg_fill_price: Decimal | None


@dataclass(frozen=True)
class DecisionNode:
    pk: int
    created_at: datetime
    account_label: str
    symbol: str
    action: str
    qty: Decimal
    status: str
    reject_reason: str
    client_order_id: str
    strategy_name: str
    strategy_version: str  # blank: a decision older than the column
    promotion_ref: int | None
    gates: list[tuple[str, bool, list[str]]]  # (gate, passed, reasons) in order
    orders: list[OrderNode]
    orders_more: int


@dataclass(frozen=True)
class StrategyNode:
    pk: int
    name: str
    version: str
    source: str
    enabled: bool
    promotion_ref: int | None
    promotion_candidate_id: str


@dataclass(frozen=True)
class ResearchRunNode:
    pk: int
    run_id: str
    status: str
    recommended_mode: str
    gate_policy_version: str
    gates_allowed: bool | None
    gate_reasons: list[str]
    gates: list[GateRow]
    artifacts: list[tuple[str, str]]  # (path, sha256), by path
    recommendation_action: str


@dataclass(frozen=True)
class CandidateNode:
    pk: int
    candidate_id: str
    strategy_name: str
    strategy_type: str
    strategy_version: str
    parameter_set: dict[str, Any]
    lifecycle_role: str
    lifecycle_status: str
    fold_count: int
    stress_count: int
    run: ResearchRunNode


@dataclass(frozen=True)
class PromotionNode:
    pk: int
    candidate_id: str
    decision_action: str
    requested_mode: str
    approved_mode: str
    approver: str
    approver_role: str
    reason: str
    account_label: str
    created_at: datetime
    evidence_keys: list[str]
    recommendation_trace_id: str


@dataclass(frozen=True)
class WhitepaperRunNode:
    pk: int
    run_id: str
    status: str
    document_key: str
    source_identifier: str
    title: str
    verdict: str  # blank: no verdict yet
    link_source: str = ""  # how the run names the candidate (from a decision)
    linked_by: str = ""


@dataclass(frozen=True)
class DecisionChain:
    """From a decision up to the paper."""

    decision: DecisionNode
    strategy: StrategyNode
    promotion: PromotionNode | None
    promotion_unresolved: bool  # the decision names a promotion that is not in the ledger
    candidate: CandidateNode | None
    whitepaper_runs: list[WhitepaperRunNode] = field(default_factory=list)
    whitepaper_runs_more: int = 0


@dataclass(frozen=True)
class PromotedNode:
    promotion: PromotionNode
    strategy: StrategyNode | None  # the candidate's strategy row as it is now
    strategy_carries_it: bool  # that row still names this promotion
    decisions: list[DecisionNode]
    decisions_more: int


@dataclass(frozen=True)
class LinkedCandidate:
    candidate_id: str
    source: str
    linked_by: str
    linked_at: datetime
    candidate: CandidateNode | None  # None: unresolved (no such candidate in the ledger)
    promotions: list[PromotedNode]
    promotions_more: int


@dataclass(frozen=True)
class WhitepaperChain:
    """From a whitepaper run down to the orders."""

    run: WhitepaperRunNode
    links: list[LinkedCandidate]
    links_more: int


# ------------------------------------------------------------------ nodes


def _more(total: int, shown: int) -> int:
    return max(total - shown, 0)


def _order_node(e: Execution) -> OrderNode:
    return OrderNode(
        pk=e.pk,
        broker=e.broker,
        broker_order_id=e.broker_order_id,
        client_order_id=e.client_order_id,
        side=e.side,
        status=e.status,
        submitted_qty=e.submitted_qty,
        filled_qty=e.filled_qty,
        avg_fill_price=e.avg_fill_price,
    )


def _decision_node(d: TradeDecision) -> DecisionNode:
    executions = d.executions.order_by("pk")
    orders = [_order_node(e) for e in executions[:MAX_ORDERS]]
    return DecisionNode(
        pk=d.pk,
        created_at=d.created_at,
        account_label=d.account_label,
        symbol=d.symbol,
        action=d.action,
        qty=d.qty,
        status=d.status,
        reject_reason=d.reject_reason,
        client_order_id=d.client_order_id,
        strategy_name=d.strategy.name,
        strategy_version=d.strategy_version,
        promotion_ref=d.promotion_ref,
        gates=[
            (str(v.get("gate", "")), bool(v.get("passed")), [str(r) for r in v.get("reasons", [])])
            for v in d.gate_verdicts or []
            if isinstance(v, dict)
        ],
        orders=orders,
        orders_more=_more(executions.count(), len(orders)) if len(orders) == MAX_ORDERS else 0,
    )


def _strategy_node(s: Strategy) -> StrategyNode:
    return StrategyNode(
        pk=s.pk,
        name=s.name,
        version=s.version,
        source=s.source,
        enabled=s.enabled,
        promotion_ref=s.promotion_ref,
        promotion_candidate_id=s.promotion_candidate_id,
    )


def _run_node(run: ResearchRun) -> ResearchRunNode:
    report = run.gate_report or {}
    allowed = report.get("allowed")
    artifacts = run.artifacts if isinstance(run.artifacts, dict) else {}
    return ResearchRunNode(
        pk=run.pk,
        run_id=run.run_id,
        status=run.status,
        recommended_mode=run.recommended_mode,
        gate_policy_version=str(report.get("policy_version", run.gate_policy_version)),
        gates_allowed=allowed if isinstance(allowed, bool) else None,
        gate_reasons=[str(r) for r in report.get("reasons") or []],
        gates=gate_rows(report),
        artifacts=[
            (str(path), str((meta or {}).get("sha256", "")) if isinstance(meta, dict) else "")
            for path, meta in sorted(artifacts.items())
        ],
        recommendation_action=str((run.recommendation or {}).get("action", "")),
    )


def _candidate_node(c: ResearchCandidate) -> CandidateNode:
    return CandidateNode(
        pk=c.pk,
        candidate_id=c.candidate_id,
        strategy_name=c.strategy_name,
        strategy_type=c.strategy_type,
        strategy_version=c.strategy_version,
        parameter_set=dict(c.parameter_set or {}),
        lifecycle_role=c.lifecycle_role,
        lifecycle_status=c.lifecycle_status,
        fold_count=c.fold_metrics.count(),
        stress_count=c.stress_metrics.count(),
        run=_run_node(c.run),
    )


def _promotion_node(p: Promotion, candidate_id: str) -> PromotionNode:
    evidence = p.evidence_bundle if isinstance(p.evidence_bundle, dict) else {}
    return PromotionNode(
        pk=p.pk,
        candidate_id=candidate_id,
        decision_action=p.decision_action,
        requested_mode=p.requested_mode,
        approved_mode=p.approved_mode,
        approver=p.approver,
        approver_role=p.approver_role,
        reason=p.reason,
        account_label=p.account_label,
        created_at=p.created_at,
        evidence_keys=sorted(str(k) for k in evidence),
        recommendation_trace_id=p.recommendation_trace_id,
    )


def _whitepaper_node(
    run: WhitepaperAnalysisRun, link: WhitepaperRunCandidateLink | None = None
) -> WhitepaperRunNode:
    verdict = getattr(run, "verdict", None)
    return WhitepaperRunNode(
        pk=run.pk,
        run_id=run.run_id,
        status=run.status,
        document_key=run.document.document_key,
        source_identifier=run.document.source_identifier,
        title=run.document.title,
        verdict=verdict.verdict if verdict is not None else "",
        link_source=link.source if link is not None else "",
        linked_by=link.linked_by if link is not None else "",
    )


# ------------------------------------------------------------------ from a decision


def decision_provenance(*, decision_id: int) -> DecisionChain:
    """The chain above one decision (raises `TradeDecision.DoesNotExist`)."""
    decision = TradeDecision.objects.select_related("strategy").get(pk=decision_id)
    promotion = None
    if decision.promotion_ref is not None:
        promotion = (
            Promotion.objects.select_related("candidate__run")
            .filter(pk=decision.promotion_ref)
            .first()
        )
    candidate = promotion.candidate if promotion is not None else None
    runs, more = _whitepaper_runs_for(candidate.candidate_id) if candidate else ([], 0)
    return DecisionChain(
        decision=_decision_node(decision),
        strategy=_strategy_node(decision.strategy),
        promotion=(
            _promotion_node(promotion, candidate.candidate_id)
            if promotion is not None and candidate is not None
            else None
        ),
        promotion_unresolved=decision.promotion_ref is not None and promotion is None,
        candidate=_candidate_node(candidate) if candidate is not None else None,
        whitepaper_runs=runs,
        whitepaper_runs_more=more,
    )


def _whitepaper_runs_for(candidate_id: str) -> tuple[list[WhitepaperRunNode], int]:
    links = WhitepaperRunCandidateLink.objects.filter(candidate_id=candidate_id).select_related(
        "run__document", "run__verdict"
    )
    shown = list(links.order_by("created_at", "pk")[:MAX_WHITEPAPER_RUNS])
    more = _more(links.count(), len(shown)) if len(shown) == MAX_WHITEPAPER_RUNS else 0
    return [_whitepaper_node(link.run, link) for link in shown], more


# ------------------------------------------------------------------ from a whitepaper run


def whitepaper_provenance(*, run_id: str) -> WhitepaperChain:
    """The chain below one whitepaper run (raises `WhitepaperAnalysisRun.DoesNotExist`)."""
    run = WhitepaperAnalysisRun.objects.select_related("document", "verdict").get(run_id=run_id)
    links = WhitepaperRunCandidateLink.objects.filter(run=run).order_by("created_at", "pk")
    shown = list(links[:MAX_LINKS])
    candidates = {
        c.candidate_id: c
        for c in ResearchCandidate.objects.select_related("run").filter(
            candidate_id__in=[link.candidate_id for link in shown]
        )
    }
    return WhitepaperChain(
        run=_whitepaper_node(run),
        links=[_linked_candidate(link, candidates.get(link.candidate_id)) for link in shown],
        links_more=_more(links.count(), len(shown)) if len(shown) == MAX_LINKS else 0,
    )


def _linked_candidate(
    link: WhitepaperRunCandidateLink, candidate: ResearchCandidate | None
) -> LinkedCandidate:
    promoted: list[PromotedNode] = []
    more = 0
    if candidate is not None:
        promotions = Promotion.objects.filter(candidate=candidate).order_by("pk")
        rows = list(promotions[:MAX_PROMOTIONS])
        more = _more(promotions.count(), len(rows)) if len(rows) == MAX_PROMOTIONS else 0
        strategy = Strategy.objects.filter(name=candidate.strategy_name).first()
        promoted = [_promoted(p, candidate, strategy) for p in rows]
    return LinkedCandidate(
        candidate_id=link.candidate_id,
        source=link.source,
        linked_by=link.linked_by,
        linked_at=link.created_at,
        candidate=_candidate_node(candidate) if candidate is not None else None,
        promotions=promoted,
        promotions_more=more,
    )


def _promoted(
    promotion: Promotion, candidate: ResearchCandidate, strategy: Strategy | None
) -> PromotedNode:
    decisions: list[DecisionNode] = []
    more = 0
    if promotion.decision_action == PromotionAction.PROMOTE:
        # decision_promotion_idx: a promotion's decisions, newest first
        qs = _decisions_of(promotion.pk)
        rows = list(qs[:MAX_DECISIONS])
        more = _more(qs.count(), len(rows)) if len(rows) == MAX_DECISIONS else 0
        decisions = [_decision_node(d) for d in rows]
    return PromotedNode(
        promotion=_promotion_node(promotion, candidate.candidate_id),
        strategy=_strategy_node(strategy) if strategy is not None else None,
        strategy_carries_it=strategy is not None and strategy.promotion_ref == promotion.pk,
        decisions=decisions,
        decisions_more=more,
    )


def _decisions_of(promotion_ref: int) -> QuerySet[TradeDecision]:
    return (
        TradeDecision.objects.filter(promotion_ref=promotion_ref)
        .select_related("strategy")
        .order_by("-created_at", "-pk")
    )


def unresolved_candidate_ids(candidate_ids: Sequence[str]) -> list[str]:
    """The ids that name no research candidate (the admin link form refuses them)."""
    known = set(
        ResearchCandidate.objects.filter(candidate_id__in=list(candidate_ids)).values_list(
            "candidate_id", flat=True
        )
    )
    return [cid for cid in candidate_ids if cid not in known]
