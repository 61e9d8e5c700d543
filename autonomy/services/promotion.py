"""Promotion, denial, demotion and rollback of research candidates: the only way a research
result changes what trades.

A promotion is an explicit human action (admin or API), never a side effect of the lane:
- paper: the candidate's run recommended paper or live and its recommendation is eligible
  (gates, prerequisites, rollback readiness, evidence); the approver holds
  `autonomy.approve_promotion`; a reason is given. The candidate's strategy is enabled for one
  paper lane with the patch's limits (max notional 250, 2.5% of equity per position);
- live: additionally `TRADING_LIVE_ENABLED` (read fresh), a live gate-5 pass on the run
  (recommended mode `live`), an approver with `autonomy.approve_live_promotion`, and an
  approved, unexpired two-person `LiveApproval` for the live lane
  (`trading.services.live_approvals`; the order firewall checks it again on every order).
A promotion's evidence holds `fill_realism` (`trading.selectors.fill_checks`): the strategy's paper
fills checked against their minute bars, with the haircut in bps and the realised PnL repriced
conservatively, over the window since the candidate's last paper promotion (a promotion to paper
of a candidate never promoted: every recorded paper fill of the strategy).
Every action appends a `Promotion` row (append-only, enforced by triggers) with the approver,
the reason and the evidence, and moves the candidate through the orchestration guard's stages.
Retrying a promotion that already happened returns the existing row: nothing is applied twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from autonomy.guard import CandidateState, TransitionRequest, check_transition, load_policy
from autonomy.metrics import DRIFT_PROMOTION_BLOCKS, PROMOTION_ACTIONS
from autonomy.models import (
    CandidateStage,
    LifecycleRole,
    LifecycleStatus,
    Promotion,
    PromotionAction,
    PromotionMode,
    ResearchCandidate,
    ResearchRun,
    Stage,
)
from autonomy.research_lane import PAPER_PATCH
from autonomy.selectors import clean_replay_sessions, drift_evidence_for_live
from autonomy.services.strategies import (
    PromotionError,
    default_lane_label,
    strategy_apply,
    strategy_disable,
    strategy_restore,
    strategy_snapshot,
)
from torghut_site.flags import flag_enabled
from trading.lanes import UnknownLaneError, lane_config, paper_lane_labels
from trading.models.strategies import UncertaintyAction
from trading.notifications import notify
from trading.selectors.fill_checks import strategy_fill_realism
from trading.selectors.safety import live_approval_active
from trading.signals.session import NEW_YORK

Actor = AbstractBaseUser | AnonymousUser | None


@dataclass(frozen=True)
class PromotionResult:
    promotion: Promotion
    created: bool


def run_uncertainty_action(gate_report: Mapping[str, Any]) -> str:
    """The gate-7 (uncertainty calibration) action recorded in a run's gate report."""
    gate7: Mapping[str, Any] = next(
        (g for g in gate_report.get("gates", []) if g.get("gate") == "gate7"), {}
    )
    action = (gate7.get("details") or {}).get("action", gate_report.get("uncertainty_action"))
    if action not in UncertaintyAction.values:
        raise PromotionError(
            "uncertainty_action_missing",
            f"the run's gate report has no valid gate-7 uncertainty action (got {action!r})",
        )
    return str(action)


# ------------------------------------------------------------------ checks


def _actor_name(actor: Actor) -> str:
    if actor is None or not actor.is_authenticated:
        raise PromotionError("approver_required", "a signed-in human approver is required")
    return str(actor.get_username())


def _require_perm(actor: Actor, perm: str) -> str:
    name = _actor_name(actor)
    if not getattr(actor, "has_perm", lambda _p: False)(perm):
        raise PromotionError("permission_denied", f"{name} lacks the permission {perm}")
    return name


def _require_reason(reason: str) -> str:
    if not reason.strip():
        raise PromotionError("reason_required", "a reason is required")
    return reason.strip()


def _role(actor: Actor) -> str:
    return "superuser" if getattr(actor, "is_superuser", False) else "operator"


def _guard_move(candidate: ResearchCandidate, to_stage: str, *, controls_passed: bool) -> None:
    """Move the candidate's stage through the orchestration guard (denied: PromotionError)."""
    stage = (
        CandidateStage.objects.select_for_update()
        .filter(candidate_id=candidate.candidate_id)
        .first()
    )
    if stage is None:
        raise PromotionError("no_stage", f"{candidate.candidate_id} has no orchestration stage")
    policy = load_policy()
    state = CandidateState(
        candidate_id=stage.candidate_id,
        run_id=stage.run_id,
        active_stage=stage.active_stage,
        paused=stage.paused,
        failure_counts=dict(stage.failure_counts or {}),
    )
    decision = check_transition(
        policy,
        state,
        TransitionRequest(
            candidate_id=stage.candidate_id,
            run_id=stage.run_id,
            to_stage=to_stage,
            previous_artifact=f"{candidate.run.run_id}:{PAPER_PATCH}",
            previous_gate_passed=controls_passed,
            risk_controls_passed=controls_passed,
            execution_controls_passed=controls_passed,
            # the recorded, permission-checked approval is this system's reviewed-change path
            mode="gitops",
        ),
        artifact_exists=lambda _ref: True,
    )
    if not decision.allowed:
        raise PromotionError("guard_denied", f"orchestration guard: {decision.reason}")
    stage.active_stage = to_stage
    stage.last_decision = decision.as_json()
    stage.save(update_fields=["active_stage", "last_decision", "updated_at"])


def _locked(candidate: ResearchCandidate) -> ResearchCandidate:
    return ResearchCandidate.objects.select_for_update().select_related("run").get(pk=candidate.pk)


_MODE_RANK = {"shadow": 0, "paper": 1, "live": 2}


# ------------------------------------------------------------------ actions


# the operators' notification kind of each action a person (or drift governance) takes; the
# lane's own recommendation rows (`hold`, `deny` by `research_lane`) are not actions and not posted
_NOTIFY_KINDS = {
    PromotionAction.PROMOTE: "promotion",
    PromotionAction.DENY: "promotion_denied",
    PromotionAction.DEMOTE: "promotion_demoted",
    PromotionAction.ROLLBACK: "promotion_rolled_back",
}


def _append(**fields: Any) -> Promotion:
    """Append one ledger row (counted once its transaction commits) and post it to the
    operators' webhooks (`<kind>:<ledger row id>`, one post per row)."""
    promotion = Promotion.objects.create(**fields)
    action, mode = str(fields["decision_action"]), str(fields["requested_mode"])
    transaction.on_commit(lambda: PROMOTION_ACTIONS.labels(action=action, mode=mode).inc())
    kind = _NOTIFY_KINDS[PromotionAction(action)]
    notify(kind, f"{kind}:{promotion.pk}", _promotion_payload(promotion))
    return promotion


def _approval_lane(mode: str, account_label: str | None) -> str:
    """The account lane a promotion to `mode` goes to (given, else the first enabled one); it
    must be a `mode` lane."""
    label = account_label or default_lane_label(mode)
    try:
        lane = lane_config(label)
    except UnknownLaneError as exc:
        raise PromotionError("no_lane", str(exc)) from exc
    if lane.mode != mode:
        raise PromotionError("lane_mode_mismatch", f"lane {label} is a {lane.mode} lane")
    return label


def _require_recommended(run: ResearchRun, mode: str) -> None:
    """The run passed, its recommendation is eligible and recommends at least `mode`."""
    rec = run.recommendation or {}
    if run.status != "passed" or not rec.get("eligible"):
        raise PromotionError(
            "not_eligible",
            f"run {run.run_id} does not recommend a promotion ({rec.get('action', 'none')}: "
            f"{', '.join(rec.get('reasons', [])) or run.status})",
        )
    if _MODE_RANK[run.recommended_mode or "shadow"] < _MODE_RANK[mode]:
        raise PromotionError(
            "mode_not_recommended",
            f"run {run.run_id} recommends {run.recommended_mode}, not {mode}",
        )


def _require_live_ready(cand: ResearchCandidate, label: str, now: datetime) -> None:
    """A live promotion: `TRADING_LIVE_ENABLED`, a gate-5 pass, recent drift evidence without
    reason codes, an active live approval for the lane, and what the run's policy asks of the
    live record (`_require_live_record`)."""
    run = cand.run
    if not flag_enabled("TRADING_LIVE_ENABLED"):
        raise PromotionError("live_disabled", "TRADING_LIVE_ENABLED is not true")
    gate5: dict[str, Any] = next(
        (g for g in run.gate_report.get("gates", []) if g.get("gate") == "gate5"), {}
    )
    if gate5.get("status") != "pass":
        raise PromotionError("live_gate_failed", "the run has no gate-5 (live ramp) pass")
    drift_refusal = drift_evidence_for_live(cand.strategy_name)
    if drift_refusal:
        DRIFT_PROMOTION_BLOCKS.inc()
        raise PromotionError(
            drift_refusal,
            "live promotion needs a drift check of the strategy younger than "
            "TRADING_DRIFT_LIVE_PROMOTION_MAX_EVIDENCE_AGE_SECONDS without reason codes",
        )
    if live_approval_active(label) is None:
        raise PromotionError(
            "live_approval_missing", f"lane {label} has no active recorded live approval"
        )
    _require_live_record(cand, gate5.get("details", {}).get("at_promotion") or {}, now)


def _require_live_record(cand: ResearchCandidate, wanted: dict[str, Any], now: datetime) -> None:
    """The run's policy (gate 5's `at_promotion`): each member's latest sessions in a row
    without an unexplained live-versus-replay mismatch, and the haircut of its paper fills."""
    sessions = int(wanted.get("clean_replay_sessions_required") or 0)
    if sessions > 0:
        today = now.astimezone(NEW_YORK).date()
        for member in candidate_members(cand):
            clean = clean_replay_sessions(member["name"], before=today)
            if clean < sessions:
                raise PromotionError(
                    "replay_sessions_insufficient",
                    f"{member['name']} has {clean} clean live-versus-replay session(s) in a row; "
                    f"the run's policy requires {sessions}",
                )
    limit = wanted.get("max_fill_haircut_bps")
    if limit is not None:
        haircut = Decimal(str(_fill_realism(cand, now)["haircut_bps"]))
        if haircut > Decimal(str(limit)):
            raise PromotionError(
                "fill_haircut_above_limit",
                f"paper fills cost {haircut} bps repriced against their minute bars; the run's "
                f"policy allows {limit}",
            )


def candidate_members(cand: ResearchCandidate) -> list[dict[str, Any]]:
    """The strategy rows a candidate trades: every member of a book, or its one strategy."""
    bundle = cand.metadata_bundle or {}
    members = bundle.get("strategies") or [bundle.get("strategy") or {}]
    return [dict(m) for m in members if isinstance(m, dict) and m.get("name")]


def _restore_members(cand: ResearchCandidate, bundle: dict[str, Any]) -> None:
    """Each member's row as the promotion found it (no snapshot: the row is disabled)."""
    snapshots = bundle.get("previous_strategies")
    if not isinstance(snapshots, dict):  # a promotion recorded before books existed
        snapshots = {cand.strategy_name: bundle.get("previous_strategy")}
    for member in candidate_members(cand):
        strategy_restore(member["name"], snapshots.get(member["name"]))


def _champion_replace(cand: ResearchCandidate) -> ResearchCandidate | None:
    """Make `cand` its strategy's champion; the champion it replaces (demoted to standby)."""
    previous = (
        ResearchCandidate.objects.select_for_update()
        .filter(strategy_name=cand.strategy_name, lifecycle_role=LifecycleRole.CHAMPION)
        .exclude(pk=cand.pk)
        .first()
    )
    if previous is not None:
        previous.lifecycle_role = LifecycleRole.DEMOTED
        previous.lifecycle_status = LifecycleStatus.STANDBY
        previous.save(update_fields=["lifecycle_role", "lifecycle_status", "updated_at"])
    return previous


def _fill_realism(cand: ResearchCandidate, now: datetime) -> dict[str, Any]:
    """The strategy's paper fill realism since the candidate's last paper promotion."""
    paper = (
        Promotion.objects.filter(
            candidate=cand, decision_action=PromotionAction.PROMOTE, approved_mode="paper"
        )
        .order_by("-pk")
        .values_list("effective_time", flat=True)
        .first()
    )
    return strategy_fill_realism(
        strategy=cand.strategy_name,
        labels=paper_lane_labels(),
        since=paper,
        until=now,
        members=[m["name"] for m in candidate_members(cand)],
    ).as_json()


def _promotion_evidence(
    cand: ResearchCandidate,
    previous_strategies: dict[str, Any],
    previous: ResearchCandidate | None,
    now: datetime,
) -> dict[str, Any]:
    """What a promotion row keeps: the rows it changes as they were, the champion it replaces,
    the run's gate report and recommendation, its overfitting statistics and the strategies'
    paper fill realism."""
    run = cand.run
    return {
        # a one-strategy candidate's row before (the key older promotions have)
        "previous_strategy": previous_strategies.get(cand.strategy_name),
        "previous_strategies": previous_strategies,
        "previous_champion": previous.candidate_id if previous else "",
        "gate_report_trace_id": run.gate_report_trace_id,
        "recommendation": run.recommendation or {},
        # the trial-aware statistics gate 8 read (autonomy.trials)
        "overfitting": (cand.metadata_bundle or {}).get("overfitting"),
        "fill_realism": _fill_realism(cand, now),
    }


def promotion_approve(
    *,
    candidate: ResearchCandidate,
    mode: str,
    actor: Actor,
    reason: str,
    account_label: str | None = None,
) -> PromotionResult:
    if mode not in ("paper", "live"):
        raise PromotionError("invalid_mode", "a promotion is to paper or live")
    approver = _require_perm(actor, "autonomy.approve_promotion")
    if mode == "live":
        _require_perm(actor, "autonomy.approve_live_promotion")
    why = _require_reason(reason)
    label = _approval_lane(mode, account_label)
    with transaction.atomic():
        cand = _locked(candidate)
        existing = (
            Promotion.objects.filter(
                candidate=cand,
                decision_action=PromotionAction.PROMOTE,
                approved_mode=mode,
                account_label=label,
            )
            .order_by("-pk")
            .first()
        )
        if existing is not None and cand.lifecycle_role == LifecycleRole.CHAMPION:
            return PromotionResult(existing, created=False)
        run = cand.run
        now = timezone.now()
        _require_recommended(run, mode)
        if mode == "live":
            _require_live_ready(cand, label, now)
        _guard_move(
            cand, Stage.SHADOW_PAPER if mode == "paper" else Stage.LIVE_RAMP, controls_passed=True
        )
        uncertainty = run_uncertainty_action(run.gate_report or {})
        members = candidate_members(cand)
        previous_strategies = {m["name"]: strategy_snapshot(m["name"]) for m in members}
        previous = _champion_replace(cand)
        cand.lifecycle_role = LifecycleRole.CHAMPION
        cand.lifecycle_status = LifecycleStatus.ACTIVE
        cand.promotion_target = mode
        cand.save(
            update_fields=["lifecycle_role", "lifecycle_status", "promotion_target", "updated_at"]
        )
        rec = run.recommendation or {}
        # the ledger row first, so the strategy row can name it as its provenance
        promotion = _append(
            candidate=cand,
            requested_mode=mode,
            approved_mode=mode,
            decision_action=PromotionAction.PROMOTE,
            approver=approver,
            approver_role=_role(actor),
            reason=why,
            account_label=label,
            paper_candidate_patch_ref=str(run.artifacts.get(PAPER_PATCH, {}).get("uri", "")),
            effective_time=now,
            rationale=str(rec.get("rationale", "")),
            evidence_bundle=_promotion_evidence(cand, previous_strategies, previous, now),
            recommendation_trace_id=run.recommendation_trace_id,
            rollback_candidate_id=previous.candidate_id if previous else "",
        )
        for member in members:
            strategy_apply(
                member,
                account_labels=[label],
                uncertainty_action=uncertainty,
                promotion_ref=promotion.pk,
                candidate_id=cand.candidate_id,
            )
    return PromotionResult(promotion, created=True)


def _promotion_payload(promotion: Promotion) -> dict[str, Any]:
    return {
        "action": promotion.decision_action,
        "candidate_id": promotion.candidate.candidate_id,
        "mode": promotion.approved_mode or promotion.requested_mode,
        "account_label": promotion.account_label,
        "approver": promotion.approver,
        "reason": promotion.reason,
        "rollback_candidate_id": promotion.rollback_candidate_id,
    }


def promotion_deny(
    *, candidate: ResearchCandidate, mode: str, actor: Actor, reason: str
) -> Promotion:
    if mode not in PromotionMode.values:
        raise PromotionError("invalid_mode", "mode must be shadow, paper or live")
    approver = _require_perm(actor, "autonomy.approve_promotion")
    why = _require_reason(reason)
    with transaction.atomic():
        cand = _locked(candidate)
        return _append(
            candidate=cand,
            requested_mode=mode,
            decision_action=PromotionAction.DENY,
            approver=approver,
            approver_role=_role(actor),
            reason=why,
            effective_time=timezone.now(),
            rationale=str((cand.run.recommendation or {}).get("rationale", "")),
            recommendation_trace_id=cand.run.recommendation_trace_id,
        )


def _last_promotion(cand: ResearchCandidate) -> Promotion:
    last = (
        Promotion.objects.filter(candidate=cand, decision_action=PromotionAction.PROMOTE)
        .order_by("-pk")
        .first()
    )
    if last is None or cand.lifecycle_role != LifecycleRole.CHAMPION:
        raise PromotionError("not_champion", f"{cand.candidate_id} is not a promoted champion")
    return last


def promotion_demote(
    *, candidate: ResearchCandidate, actor: Actor, reason: str, system: str = ""
) -> Promotion:
    """Stop trading the candidate's strategy (disabled on every lane); no champion is restored.
    `system`: a risk-reducing demotion by a named system component (drift governance), recorded
    as `system:<name>` instead of a human approver."""
    approver = f"system:{system}" if system else _require_perm(actor, "autonomy.approve_promotion")
    why = _require_reason(reason)
    with transaction.atomic():
        cand = _locked(candidate)
        last = _last_promotion(cand)
        _guard_move(cand, Stage.INCIDENT_RECOVERY, controls_passed=True)
        members = [m["name"] for m in candidate_members(cand)]
        for name in members:
            strategy_disable(name)
        cand.lifecycle_role = LifecycleRole.DEMOTED
        cand.lifecycle_status = LifecycleStatus.STANDBY
        cand.save(update_fields=["lifecycle_role", "lifecycle_status", "updated_at"])
        return _append(
            candidate=cand,
            requested_mode=last.approved_mode or last.requested_mode,
            decision_action=PromotionAction.DEMOTE,
            approver=approver,
            approver_role="system" if system else _role(actor),
            reason=why,
            account_label=last.account_label,
            effective_time=timezone.now(),
            evidence_bundle={
                "strategy_before": strategy_snapshot(cand.strategy_name),
                "strategies_before": {name: strategy_snapshot(name) for name in members},
            },
        )


def promotion_rollback(*, candidate: ResearchCandidate, actor: Actor, reason: str) -> Promotion:
    """Undo the candidate's promotion: its strategy row goes back to what it was before, and the
    champion it replaced (if any) is champion again."""
    approver = _require_perm(actor, "autonomy.approve_promotion")
    why = _require_reason(reason)
    with transaction.atomic():
        cand = _locked(candidate)
        last = _last_promotion(cand)
        _guard_move(cand, Stage.INCIDENT_RECOVERY, controls_passed=True)
        _restore_members(cand, last.evidence_bundle)
        cand.lifecycle_role = LifecycleRole.DEMOTED
        cand.lifecycle_status = LifecycleStatus.STANDBY
        cand.save(update_fields=["lifecycle_role", "lifecycle_status", "updated_at"])
        restored = None
        if last.rollback_candidate_id:
            restored = (
                ResearchCandidate.objects.select_for_update()
                .filter(candidate_id=last.rollback_candidate_id)
                .first()
            )
            if restored is not None:
                restored.lifecycle_role = LifecycleRole.CHAMPION
                restored.lifecycle_status = LifecycleStatus.ACTIVE
                restored.save(update_fields=["lifecycle_role", "lifecycle_status", "updated_at"])
        return _append(
            candidate=cand,
            requested_mode=last.approved_mode or last.requested_mode,
            decision_action=PromotionAction.ROLLBACK,
            approver=approver,
            approver_role=_role(actor),
            reason=why,
            account_label=last.account_label,
            effective_time=timezone.now(),
            rollback_candidate_id=restored.candidate_id if restored else "",
            successor_candidate_id=restored.candidate_id if restored else "",
        )
