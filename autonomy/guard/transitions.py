"""``check_transition``: may this candidate move to that stage now (the evaluation order is in
the package docstring), and the decision it returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autonomy.guard.policy import Policy
from autonomy.guard.state import CandidateState, candidate_state_resolve
from autonomy.guard.vocabulary import (
    ID_PATTERN,
    MODES,
    NEXT_HALT,
    NEXT_HUMAN_REVIEW,
    NEXT_PROCEED,
    NEXT_ROLLBACK,
    GuardInputError,
)


@dataclass(frozen=True)
class TransitionRequest:
    candidate_id: str
    run_id: str
    to_stage: str
    from_stage: str | None = None  # None: the state's activeStage
    previous_artifact: str | None = None
    previous_gate_passed: bool = False
    risk_controls_passed: bool = False
    execution_controls_passed: bool = False
    mode: str | None = None  # "gitops" | "emergency"; None: not declared
    ticket: str | None = None  # emergency change ticket


@dataclass(frozen=True)
class GuardDecision:
    allowed: bool
    reason: str
    next_action: str
    to_stage: str
    lane: str | None  # the target stage's lane, on allowed decisions
    policy_version: str

    def as_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "allowed": self.allowed,
            "reason": self.reason,
            "nextAction": self.next_action,
            "toStage": self.to_stage,
            "policyVersion": self.policy_version,
        }
        if self.lane is not None:
            payload["lane"] = self.lane
        return payload


def _artifact_on_disk(reference: str) -> bool:
    return Path(reference).exists()


def check_transition(
    policy: Policy,
    state: Mapping[str, object] | CandidateState,
    request: TransitionRequest,
    *,
    artifact_exists: Callable[[str], bool] = _artifact_on_disk,
) -> GuardDecision:
    """Allow or deny ``request`` for a candidate in ``state``; see the module doc for the order.

    Raises ``GuardInputError`` for an unknown stage or mode or an invalid state.
    ``artifact_exists`` decides whether ``request.previous_artifact`` names a real artifact.
    """
    target = policy.stage(request.to_stage, what="target stage")
    if request.from_stage is not None:
        policy.stage(request.from_stage, what="source stage")
    if request.mode is not None and request.mode not in MODES:
        raise GuardInputError(f"mode must be one of {', '.join(MODES)}, got {request.mode!r}")
    current = candidate_state_resolve(state, policy)

    def deny(reason: str, next_action: str = NEXT_HALT) -> GuardDecision:
        return GuardDecision(
            allowed=False,
            reason=reason,
            next_action=next_action,
            to_stage=target.name,
            lane=None,
            policy_version=policy.version,
        )

    if not ID_PATTERN.fullmatch(request.candidate_id):
        return deny("invalid_candidate_id")
    if not ID_PATTERN.fullmatch(request.run_id):
        return deny("invalid_run_id")
    if current.candidate_id is not None and current.candidate_id != request.candidate_id:
        return deny("candidate_mismatch")
    if current.run_id is None:
        return deny("missing_run_id")
    if current.run_id != request.run_id:
        return deny(f"run_mismatch:{current.run_id}")
    if (
        current.active_stage is not None
        and request.from_stage is not None
        and current.active_stage != request.from_stage
    ):
        return deny(f"active_stage_mismatch:{current.active_stage}")
    source = request.from_stage or current.active_stage
    if source is None:
        return deny("missing_source_stage")
    if target.name not in policy.transitions[source]:
        return deny(f"illegal_transition:{source}->{target.name}")
    if current.paused:
        return deny("candidate_paused_for_review", NEXT_HUMAN_REVIEW)
    if target.require_previous_artifact and not (
        request.previous_artifact and artifact_exists(request.previous_artifact)
    ):
        return deny("missing_previous_artifact")
    if target.require_previous_gate_pass and not request.previous_gate_passed:
        return deny("previous_gate_failed", NEXT_ROLLBACK)
    if not request.risk_controls_passed:
        return deny("risk_controls_not_passed", NEXT_ROLLBACK)
    if not request.execution_controls_passed:
        return deny("execution_controls_not_passed", NEXT_ROLLBACK)
    if target.mutable_action and not _mutation_authorised(policy, request):
        return deny("mutable_action_requires_gitops_or_ticketed_emergency")
    return GuardDecision(
        allowed=True,
        reason="transition_allowed",
        next_action=NEXT_PROCEED,
        to_stage=target.name,
        lane=target.lane,
        policy_version=policy.version,
    )


def _mutation_authorised(policy: Policy, request: TransitionRequest) -> bool:
    if request.mode == "gitops":
        return True
    if request.mode == "emergency":
        has_ticket = bool(request.ticket and request.ticket.strip())
        return has_ticket or not policy.emergency_override_requires_ticket
    return False
