"""Orchestration guard: the policy engine behind ``manage.py orchestration_guard``.

Pure functions over a policy file and a candidate's state; no Django, no database. The lead reuses
them for database-backed candidate state by passing a mapping (or a ``CandidateState``) built from
the models instead of a JSON file.

Public API::

    load_policy(path: Path | str = DEFAULT_POLICY_PATH) -> Policy
    parse_policy(data: object, *, source: str = "<policy>") -> Policy
    check_transition(policy, state, request, *, artifact_exists=...) -> GuardDecision
    evaluate_failure(policy, state, stage, failure_class, attempt) -> FailureDecision

Every table and number (stages, lanes, transitions, retry/backoff/pause thresholds) comes from the
policy YAML, by default the shipped ``autonomy/policies/orchestration-policy.yaml`` (version
``torghut-v3-orchestration-policy-v1``). ``load_policy`` validates it strictly and raises
``PolicyError`` naming the offending key.

Errors versus decisions
-----------------------
A *decision* is a normal answer: a transition is allowed or denied, a failure is retried, paused or
failed. An *input error* (``GuardInputError``; ``PolicyError`` is one) means the question itself
cannot be answered: an unreadable or invalid policy or state, a stage name the policy does not know
(``--from-stage``, ``--to-stage``, ``--stage`` or the state's ``activeStage``), a mode other than
gitops/emergency, ``attempt < 1``, a malformed ``failureCounts``.

A candidate or run id that does not match ``^[a-z0-9][a-z0-9-]{5,62}$`` is a *deny*
(``invalid_candidate_id`` / ``invalid_run_id``, next action ``halt``), not an input error: the
request is well formed, it just names something the guard must not act on, and callers get the
same one-JSON-object answer they parse for every other refusal.

check_transition: evaluation order
----------------------------------
The first failing check decides; the order goes from "is this request about this candidate at
all" to "may this particular move happen now", so the reason names the first thing to fix:

1. ``invalid_candidate_id``, ``invalid_run_id`` -- the request's own ids are malformed.
2. ``candidate_mismatch`` -- the state belongs to another candidate (checked only when the state
   carries ``candidateId``). Nothing else in the state means anything for this request.
3. ``missing_run_id``, ``run_mismatch:<state runId>`` -- the state has no run, or another run.
4. ``active_stage_mismatch:<activeStage>`` -- ``--from-stage`` disagrees with the state's
   ``activeStage`` (when both are given); ``missing_source_stage`` -- neither is given.
5. ``illegal_transition:<from>-><to>`` -- the edge is not in the policy's transition table
   (a terminal stage has no edges). Static: no evidence can make it legal.
6. ``candidate_paused_for_review`` (next action ``human_review``) -- a human hold outranks any
   evidence, so it comes before the evidence checks.
7. ``missing_previous_artifact`` -- the target stage requires the previous stage's artifact and
   none was given or it does not exist (``artifact_exists``, by default a filesystem check).
8. ``previous_gate_failed`` (if the target stage requires it), then ``risk_controls_not_passed``,
   then ``execution_controls_not_passed`` (always required: the policy gives risk and execution
   controls final authority) -- next action ``rollback``.
9. ``mutable_action_requires_gitops_or_ticketed_emergency`` -- a mutable target stage needs mode
   ``gitops``, or ``emergency`` with a non-blank ticket (if ``controls.
   emergencyOverrideRequiresTicket``). No mode at all is denied: the guard does not assume gitops.
   Last, because it is about *how* an otherwise allowed move is carried out.

All other denies have next action ``halt``. Compared with the reference script this order moves
``candidate_mismatch`` ahead of the run and stage checks (the reference checks it after the
transition table), and treats malformed ids as denies rather than errors.

evaluate_failure: counting failures
-----------------------------------
``attempt`` is the 1-based attempt of the stage that just failed; ``state.failureCounts[stage]``
is the number of failures of that stage recorded *before* this one. This failure is failure number
``n = max(failureCounts[stage] + 1, attempt)``; the two agree when the orchestrator records every
failure, and the larger wins when they do not (fail closed: pause sooner, never later). Then:

- ``n >= autopauseAfterFailures`` -> ``pause_for_review`` (the threshold outranks retries left);
- ``n <= maxRetries`` -> ``retry`` after ``initialBackoffSeconds * backoffMultiplier**(n-1)``
  seconds, capped at ``maxBackoffSeconds`` (rounded up to whole seconds);
- otherwise ``fail``.

With the shipped policy a transient failure retries after 15, 30, 60, 120 s and the fifth pauses
(the 300 s cap is not reached: 240 s would come at n = 5, which pauses); deterministic and spec
failures fail once and pause on the second; a policy failure pauses at once.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

DEFAULT_POLICY_PATH = Path(__file__).resolve().parent / "policies" / "orchestration-policy.yaml"

#: Candidate and run ids (torghut research ledger format).
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{5,62}")
STAGE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")

MODES = ("gitops", "emergency")
FAILURE_CLASSES = ("transient", "deterministic", "spec", "policy")

#: The control settings this engine implements; a policy asking for others is rejected.
SUPPORTED_CONTROLS: Mapping[str, str] = MappingProxyType(
    {
        "riskControlsAuthority": "final",
        "executionControlsAuthority": "final",
        "mutableActionMode": "gitops-first",
    }
)

NEXT_PROCEED = "proceed"
NEXT_HALT = "halt"
NEXT_HUMAN_REVIEW = "human_review"
NEXT_ROLLBACK = "rollback"

ACTION_RETRY = "retry"
ACTION_PAUSE = "pause_for_review"
ACTION_FAIL = "fail"


class GuardInputError(ValueError):
    """The question cannot be answered: bad policy, bad state or an unknown name."""


class PolicyError(GuardInputError):
    """The policy file is missing, unreadable or invalid."""


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class StagePolicy:
    name: str
    lane: str
    mutable_action: bool
    require_previous_artifact: bool
    require_previous_gate_pass: bool


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    initial_backoff_seconds: int
    backoff_multiplier: Decimal
    max_backoff_seconds: int
    autopause_after_failures: int

    def backoff_seconds(self, failure_number: int) -> int:
        """Backoff before retrying after the ``failure_number``-th failure (1-based), capped."""
        cap = Decimal(self.max_backoff_seconds)
        backoff = Decimal(self.initial_backoff_seconds)
        for _ in range(failure_number - 1):  # iterative so the cap bounds the numbers
            if backoff >= cap:
                break
            backoff *= self.backoff_multiplier
        return math.ceil(min(backoff, cap))


@dataclass(frozen=True)
class Policy:
    version: str
    stages: Mapping[str, StagePolicy]  # in file order
    transitions: Mapping[str, tuple[str, ...]]  # every stage; () for a terminal stage
    failure_policies: Mapping[str, RetryPolicy]
    emergency_override_requires_ticket: bool

    def stage(self, name: str, *, what: str = "stage") -> StagePolicy:
        try:
            return self.stages[name]
        except KeyError:
            raise GuardInputError(
                f"unknown {what} {name!r}; policy {self.version} knows: {', '.join(self.stages)}"
            ) from None

    def edges(self) -> list[tuple[str, str]]:
        return [(src, dst) for src, targets in self.transitions.items() for dst in targets]


def load_policy(path: Path | str = DEFAULT_POLICY_PATH) -> Policy:
    policy_path = Path(path)
    try:
        text = policy_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {policy_path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {policy_path} is not valid YAML: {exc}") from exc
    return parse_policy(data, source=str(policy_path))


def parse_policy(data: object, *, source: str = "<policy>") -> Policy:
    """Validate an already-parsed policy document; errors name ``source`` and the key path."""
    top = _mapping(data, source, "policy")
    _keys(top, source, "policy", required=_TOP_KEYS, optional=("description",))
    version = _text(top["version"], source, "version")
    stages = _parse_stages(top["stages"], source)
    transitions = _parse_transitions(top["transitions"], stages, source)
    failure_policies = _parse_failure_policies(top["failurePolicies"], source)
    controls = _mapping(top["controls"], source, "controls")
    _keys(
        controls,
        source,
        "controls",
        required=(*SUPPORTED_CONTROLS, "emergencyOverrideRequiresTicket"),
    )
    for key, supported in SUPPORTED_CONTROLS.items():
        if controls[key] != supported:
            raise PolicyError(
                f"{source}: controls.{key} must be {supported!r} (the only setting the guard "
                f"implements), got {controls[key]!r}"
            )
    requires_ticket = _flag(
        controls["emergencyOverrideRequiresTicket"],
        source,
        "controls.emergencyOverrideRequiresTicket",
    )
    return Policy(
        version=version,
        stages=MappingProxyType(stages),
        transitions=MappingProxyType(transitions),
        failure_policies=MappingProxyType(failure_policies),
        emergency_override_requires_ticket=requires_ticket,
    )


_TOP_KEYS = ("version", "stages", "transitions", "failurePolicies", "controls")
_STAGE_KEYS = (
    "stage",
    "lane",
    "mutableAction",
    "requirePreviousArtifact",
    "requirePreviousGatePass",
)
_RETRY_KEYS = (
    "maxRetries",
    "initialBackoffSeconds",
    "backoffMultiplier",
    "maxBackoffSeconds",
    "autopauseAfterFailures",
)


def _parse_stages(raw: object, source: str) -> dict[str, StagePolicy]:
    if not isinstance(raw, list) or not raw:
        raise PolicyError(f"{source}: stages must be a non-empty list")
    stages: dict[str, StagePolicy] = {}
    for index, item in enumerate(raw):
        where = f"stages[{index}]"
        entry = _mapping(item, source, where)
        _keys(entry, source, where, required=_STAGE_KEYS)
        name = _text(entry["stage"], source, f"{where}.stage")
        if not STAGE_NAME_PATTERN.fullmatch(name):
            raise PolicyError(f"{source}: {where}.stage {name!r} must be lowercase kebab-case")
        if name in stages:
            raise PolicyError(f"{source}: {where}.stage {name!r} is defined twice")
        stages[name] = StagePolicy(
            name=name,
            lane=_text(entry["lane"], source, f"{where}.lane"),
            mutable_action=_flag(entry["mutableAction"], source, f"{where}.mutableAction"),
            require_previous_artifact=_flag(
                entry["requirePreviousArtifact"], source, f"{where}.requirePreviousArtifact"
            ),
            require_previous_gate_pass=_flag(
                entry["requirePreviousGatePass"], source, f"{where}.requirePreviousGatePass"
            ),
        )
    return stages


def _parse_transitions(
    raw: object, stages: Mapping[str, StagePolicy], source: str
) -> dict[str, tuple[str, ...]]:
    table = _mapping(raw, source, "transitions")
    for src in table:
        if src not in stages:
            raise PolicyError(f"{source}: transitions has unknown source stage {src!r}")
    transitions: dict[str, tuple[str, ...]] = {}
    for src in stages:
        if src not in table:
            raise PolicyError(
                f"{source}: transitions.{src} is missing (use [] for a terminal stage)"
            )
        targets = table[src]
        if targets is None:
            targets = []
        if not isinstance(targets, list):
            raise PolicyError(f"{source}: transitions.{src} must be a list of stages")
        for index, dst in enumerate(targets):
            if not isinstance(dst, str) or dst not in stages:
                raise PolicyError(f"{source}: transitions.{src}[{index}] is unknown stage {dst!r}")
        if len(set(targets)) != len(targets):
            raise PolicyError(f"{source}: transitions.{src} lists a stage twice")
        transitions[src] = tuple(targets)
    return transitions


def _parse_failure_policies(raw: object, source: str) -> dict[str, RetryPolicy]:
    table = _mapping(raw, source, "failurePolicies")
    _keys(table, source, "failurePolicies", required=FAILURE_CLASSES)
    policies: dict[str, RetryPolicy] = {}
    for failure_class in FAILURE_CLASSES:
        where = f"failurePolicies.{failure_class}"
        entry = _mapping(table[failure_class], source, where)
        _keys(entry, source, where, required=_RETRY_KEYS)
        initial = _count(entry["initialBackoffSeconds"], source, f"{where}.initialBackoffSeconds")
        cap = _count(entry["maxBackoffSeconds"], source, f"{where}.maxBackoffSeconds")
        if cap < initial:
            raise PolicyError(
                f"{source}: {where}.maxBackoffSeconds ({cap}) is below "
                f"initialBackoffSeconds ({initial})"
            )
        multiplier_raw = entry["backoffMultiplier"]
        if isinstance(multiplier_raw, bool) or not isinstance(multiplier_raw, int | float):
            raise PolicyError(f"{source}: {where}.backoffMultiplier must be a number")
        multiplier = Decimal(str(multiplier_raw))
        if not multiplier.is_finite() or multiplier < 1:
            raise PolicyError(
                f"{source}: {where}.backoffMultiplier must be >= 1, got {multiplier_raw!r}"
            )
        autopause = _count(
            entry["autopauseAfterFailures"], source, f"{where}.autopauseAfterFailures"
        )
        if autopause < 1:
            raise PolicyError(f"{source}: {where}.autopauseAfterFailures must be >= 1")
        policies[failure_class] = RetryPolicy(
            max_retries=_count(entry["maxRetries"], source, f"{where}.maxRetries"),
            initial_backoff_seconds=initial,
            backoff_multiplier=multiplier,
            max_backoff_seconds=cap,
            autopause_after_failures=autopause,
        )
    return policies


def _mapping(value: object, source: str, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise PolicyError(f"{source}: {where} must be a mapping")
    for key in value:
        if not isinstance(key, str):
            raise PolicyError(f"{source}: {where} has a non-string key {key!r}")
    return value


def _keys(
    value: Mapping[str, object],
    source: str,
    where: str,
    *,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> None:
    missing = [key for key in required if key not in value]
    if missing:
        raise PolicyError(f"{source}: {where} is missing {', '.join(missing)}")
    unknown = sorted(set(value) - set(required) - set(optional))
    if unknown:
        raise PolicyError(f"{source}: {where} has unknown key(s) {', '.join(unknown)}")


def _text(value: object, source: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{source}: {where} must be a non-empty string")
    return value.strip()


def _flag(value: object, source: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{source}: {where} must be true or false, got {value!r}")
    return value


def _count(value: object, source: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(f"{source}: {where} must be an integer, got {value!r}")
    if value < 0:
        raise PolicyError(f"{source}: {where} must be >= 0, got {value}")
    return value


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class CandidateState:
    """What the guard reads about a candidate (JSON keys in brackets)."""

    candidate_id: str | None = None  # [candidateId]; None: not checked
    run_id: str | None = None  # [runId]; None: every transition is denied missing_run_id
    active_stage: str | None = None  # [activeStage]
    paused: bool = False  # [paused]
    failure_counts: Mapping[str, int] = field(  # [failureCounts]
        default_factory=lambda: MappingProxyType({})
    )

    @classmethod
    def from_mapping(cls, state: Mapping[str, object], policy: Policy) -> CandidateState:
        """Parse the state JSON; other keys are ignored, wrong types are ``GuardInputError``."""
        active_stage = _optional_text(state, "activeStage")
        if active_stage is not None:
            policy.stage(active_stage, what="activeStage in state")
        paused = state.get("paused", False)
        if not isinstance(paused, bool):
            raise GuardInputError(f"state.paused must be true or false, got {paused!r}")
        counts_raw = state.get("failureCounts", {})
        if counts_raw is None:
            counts_raw = {}
        if not isinstance(counts_raw, Mapping):
            raise GuardInputError("state.failureCounts must be an object of stage -> count")
        counts: dict[str, int] = {}
        for stage, count in counts_raw.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise GuardInputError(
                    f"state.failureCounts[{stage!r}] must be a non-negative integer, got {count!r}"
                )
            counts[str(stage)] = count
        return cls(
            candidate_id=_optional_text(state, "candidateId"),
            run_id=_optional_text(state, "runId"),
            active_stage=active_stage,
            paused=paused,
            failure_counts=MappingProxyType(counts),
        )


def load_state(path: Path | str) -> dict[str, Any]:
    """Read a candidate state JSON file (an object); ``GuardInputError`` if it is not one."""
    state_path = Path(path)
    try:
        text = state_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GuardInputError(f"cannot read state file {state_path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise GuardInputError(f"state file {state_path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise GuardInputError(f"state file {state_path} must hold a JSON object")
    return data


def _optional_text(state: Mapping[str, object], key: str) -> str | None:
    value = state.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise GuardInputError(f"state.{key} must be a string, got {value!r}")
    return value.strip() or None


def _as_state(state: Mapping[str, object] | CandidateState, policy: Policy) -> CandidateState:
    if isinstance(state, CandidateState):
        if state.active_stage is not None:
            policy.stage(state.active_stage, what="activeStage in state")
        return state
    return CandidateState.from_mapping(state, policy)


# --------------------------------------------------------------------------- transitions


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
    current = _as_state(state, policy)

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


# --------------------------------------------------------------------------- failures


@dataclass(frozen=True)
class FailureDecision:
    action: str  # retry | pause_for_review | fail
    reason: str
    stage: str
    failure_class: str
    attempt: int
    stage_failures: int  # this failure's number for the stage (see module doc)
    next_backoff_seconds: int | None  # on retry
    policy_version: str

    @property
    def retry(self) -> bool:
        return self.action == ACTION_RETRY

    def as_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "action": self.action,
            "reason": self.reason,
            "stage": self.stage,
            "failureClass": self.failure_class,
            "attempt": self.attempt,
            "stageFailures": self.stage_failures,
            "policyVersion": self.policy_version,
        }
        if self.next_backoff_seconds is not None:
            payload["nextBackoffSeconds"] = self.next_backoff_seconds
        return payload


def evaluate_failure(
    policy: Policy,
    state: Mapping[str, object] | CandidateState,
    stage: str,
    failure_class: str,
    attempt: int,
) -> FailureDecision:
    """Retry, pause or fail after a stage failure; see the module doc for how counts combine."""
    policy.stage(stage)
    if failure_class not in policy.failure_policies:
        raise GuardInputError(
            f"unknown failure class {failure_class!r}; expected one of {', '.join(FAILURE_CLASSES)}"
        )
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise GuardInputError(f"attempt must be an integer >= 1, got {attempt!r}")
    rules = policy.failure_policies[failure_class]
    current = _as_state(state, policy)
    failures = max(current.failure_counts.get(stage, 0) + 1, attempt)

    def decide(action: str, reason: str, backoff: int | None = None) -> FailureDecision:
        return FailureDecision(
            action=action,
            reason=reason,
            stage=stage,
            failure_class=failure_class,
            attempt=attempt,
            stage_failures=failures,
            next_backoff_seconds=backoff,
            policy_version=policy.version,
        )

    if failures >= rules.autopause_after_failures:
        return decide(ACTION_PAUSE, f"{failure_class}_failure_threshold_reached")
    if failures <= rules.max_retries:
        return decide(
            ACTION_RETRY, f"{failure_class}_retry_scheduled", rules.backoff_seconds(failures)
        )
    if rules.max_retries == 0:
        return decide(ACTION_FAIL, f"{failure_class}_non_retryable")
    return decide(ACTION_FAIL, f"{failure_class}_retries_exhausted")
