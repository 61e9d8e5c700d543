"""Orchestration guard: the policy file, both decisions, and the command end to end.

No database: the guard is pure. The tables below are written out by hand (from the torghut
inventory, section 8.4) so that an edit to the shipped YAML cannot silently change the rules.
"""

from __future__ import annotations

import copy
import io
import json
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from autonomy.guard import (
    DEFAULT_POLICY_PATH,
    CandidateState,
    GuardDecision,
    GuardInputError,
    PolicyError,
    RetryPolicy,
    StagePolicy,
    TransitionRequest,
    check_transition,
    evaluate_failure,
    load_policy,
    parse_policy,
)
from tests.conftest import manage

VERSION = "torghut-v3-orchestration-policy-v1"
POLICY = load_policy()

# (stage, lane, mutableAction, requirePreviousArtifact, requirePreviousGatePass)
STAGES = [
    ("research-intake", "lane-a", False, False, False),
    ("candidate-build", "lane-b", True, True, True),
    ("backtest-robustness", "lane-c", False, True, True),
    ("gate-evaluation", "lane-d", False, True, True),
    ("promotion-prerequisites", "lane-e", False, True, True),
    ("rollback-readiness", "lane-f", False, True, True),
    ("policy-dry-run", "lane-f", False, True, True),
    ("shadow-paper", "lane-e", True, True, True),
    ("live-ramp", "lane-e", True, True, True),
    ("continuous-monitoring", "lane-f", False, True, True),
    ("incident-recovery", "lane-f", True, True, False),
    ("audit-evidence", "lane-f", False, True, False),
]
STAGE_NAMES = [row[0] for row in STAGES]
LANE = {row[0]: row[1] for row in STAGES}
MUTABLE = {row[0] for row in STAGES if row[2]}
NEEDS_GATE = {row[0] for row in STAGES if row[4]}

EDGES = [
    ("research-intake", "candidate-build"),
    ("candidate-build", "backtest-robustness"),
    ("backtest-robustness", "gate-evaluation"),
    ("gate-evaluation", "research-intake"),
    ("gate-evaluation", "promotion-prerequisites"),
    ("promotion-prerequisites", "rollback-readiness"),
    ("promotion-prerequisites", "research-intake"),
    ("rollback-readiness", "policy-dry-run"),
    ("rollback-readiness", "incident-recovery"),
    ("policy-dry-run", "shadow-paper"),
    ("policy-dry-run", "incident-recovery"),
    ("shadow-paper", "live-ramp"),
    ("shadow-paper", "incident-recovery"),
    ("live-ramp", "continuous-monitoring"),
    ("live-ramp", "incident-recovery"),
    ("continuous-monitoring", "live-ramp"),
    ("continuous-monitoring", "incident-recovery"),
    ("incident-recovery", "research-intake"),
    ("incident-recovery", "audit-evidence"),
]
NON_EDGES = [(a, b) for a in STAGE_NAMES for b in STAGE_NAMES if (a, b) not in EDGES]

# (class, maxRetries, initialBackoffSeconds, backoffMultiplier, maxBackoffSeconds, autopause)
FAILURE_POLICIES = [
    ("transient", 4, 15, 2, 300, 5),
    ("deterministic", 0, 0, 1, 0, 2),
    ("spec", 0, 0, 1, 0, 2),
    ("policy", 0, 0, 1, 0, 1),
]

CANDIDATE = "cand-abc123"
RUN = "run-abc123"
ARTIFACT = "artifacts/gates/cand-abc123/report.json"


def artifact_exists(reference: str) -> bool:
    return reference == ARTIFACT


def state_at(stage: str | None, **fields: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"candidateId": CANDIDATE, "runId": RUN, "paused": False}
    if stage is not None:
        state["activeStage"] = stage
    state.update(fields)
    return state


def green(from_stage: str | None, to_stage: str, **fields: Any) -> TransitionRequest:
    """A request that passes every check the policy can make."""
    request = TransitionRequest(
        candidate_id=CANDIDATE,
        run_id=RUN,
        from_stage=from_stage,
        to_stage=to_stage,
        previous_artifact=ARTIFACT,
        previous_gate_passed=True,
        risk_controls_passed=True,
        execution_controls_passed=True,
        mode="gitops",
    )
    return replace(request, **fields)


def check(
    from_stage: str | None, to_stage: str, *, state: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    decision = check_transition(
        POLICY,
        state_at(from_stage) if state is None else state,
        green(from_stage, to_stage, **fields),
        artifact_exists=artifact_exists,
    )
    return decision.as_json()


def allowed(to_stage: str) -> dict[str, Any]:
    return {
        "allowed": True,
        "reason": "transition_allowed",
        "nextAction": "proceed",
        "lane": LANE[to_stage],
        "toStage": to_stage,
        "policyVersion": VERSION,
    }


def denied(to_stage: str, reason: str, next_action: str = "halt") -> dict[str, Any]:
    return {
        "allowed": False,
        "reason": reason,
        "nextAction": next_action,
        "toStage": to_stage,
        "policyVersion": VERSION,
    }


# --------------------------------------------------------------------------- the shipped policy


def test_shipped_policy_is_the_inventory_policy():
    assert DEFAULT_POLICY_PATH == Path(__file__).resolve().parents[1] / "policies" / (
        "orchestration-policy.yaml"
    )
    assert POLICY.version == VERSION
    assert list(POLICY.stages.values()) == [StagePolicy(*row) for row in STAGES]
    assert sorted(POLICY.edges()) == sorted(EDGES)
    assert POLICY.transitions["audit-evidence"] == ()
    assert dict(POLICY.failure_policies) == {
        name: RetryPolicy(retries, initial, Decimal(multiplier), cap, pause)
        for name, retries, initial, multiplier, cap, pause in FAILURE_POLICIES
    }
    assert POLICY.emergency_override_requires_ticket is True


def test_parse_policy_of_the_shipped_document_equals_load_policy():
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    assert parse_policy(data, source="shipped") == POLICY


# --------------------------------------------------------------------------- transitions


def test_seed_readme_example_is_an_illegal_transition():
    result = check("gate-evaluation", "shadow-paper")
    assert result == denied("shadow-paper", "illegal_transition:gate-evaluation->shadow-paper")


def test_policy_dry_run_to_shadow_paper_with_all_evidence_and_gitops_is_allowed():
    assert check("policy-dry-run", "shadow-paper") == allowed("shadow-paper")


@pytest.mark.parametrize(("from_stage", "to_stage"), EDGES)
def test_every_hand_listed_transition_is_allowed(from_stage, to_stage):
    assert check(from_stage, to_stage) == allowed(to_stage)


@pytest.mark.parametrize(("from_stage", "to_stage"), POLICY.edges())
def test_every_transition_in_the_policy_file_is_allowed(from_stage, to_stage):
    assert (from_stage, to_stage) in EDGES
    assert check(from_stage, to_stage) == allowed(to_stage)


@pytest.mark.parametrize(("from_stage", "to_stage"), NON_EDGES)
def test_every_other_pair_is_an_illegal_transition(from_stage, to_stage):
    assert check(from_stage, to_stage) == denied(
        to_stage, f"illegal_transition:{from_stage}->{to_stage}"
    )


@pytest.mark.parametrize("to_stage", STAGE_NAMES)
def test_audit_evidence_is_terminal(to_stage):
    assert check("audit-evidence", to_stage) == denied(
        to_stage, f"illegal_transition:audit-evidence->{to_stage}"
    )


def test_source_stage_defaults_to_the_state_active_stage():
    assert check(None, "shadow-paper", state=state_at("policy-dry-run")) == allowed("shadow-paper")
    assert check(None, "shadow-paper", state=state_at("gate-evaluation")) == denied(
        "shadow-paper", "illegal_transition:gate-evaluation->shadow-paper"
    )


def test_from_stage_is_enough_when_the_state_has_no_active_stage():
    assert check("policy-dry-run", "shadow-paper", state=state_at(None)) == allowed("shadow-paper")


def test_missing_source_stage():
    assert check(None, "shadow-paper", state=state_at(None)) == denied(
        "shadow-paper", "missing_source_stage"
    )


def test_active_stage_mismatch_names_the_state_stage():
    result = check("policy-dry-run", "shadow-paper", state=state_at("rollback-readiness"))
    assert result == denied("shadow-paper", "active_stage_mismatch:rollback-readiness")


@pytest.mark.parametrize("state_run", [None, "", "   "])
def test_missing_run_id(state_run):
    state = state_at("policy-dry-run", runId=state_run)
    assert check("policy-dry-run", "shadow-paper", state=state) == denied(
        "shadow-paper", "missing_run_id"
    )


def test_run_mismatch_names_the_state_run():
    state = state_at("policy-dry-run", runId="run-other99")
    assert check("policy-dry-run", "shadow-paper", state=state) == denied(
        "shadow-paper", "run_mismatch:run-other99"
    )


def test_candidate_mismatch():
    state = state_at("policy-dry-run", candidateId="cand-other99")
    assert check("policy-dry-run", "shadow-paper", state=state) == denied(
        "shadow-paper", "candidate_mismatch"
    )


def test_candidate_is_not_checked_when_the_state_has_none():
    state = state_at("policy-dry-run")
    del state["candidateId"]
    assert check("policy-dry-run", "shadow-paper", state=state) == allowed("shadow-paper")


def test_paused_candidate_goes_to_human_review():
    state = state_at("policy-dry-run", paused=True)
    assert check("policy-dry-run", "shadow-paper", state=state) == denied(
        "shadow-paper", "candidate_paused_for_review", "human_review"
    )


@pytest.mark.parametrize(
    "bad_id",
    [
        "CAND-abc123",  # upper case
        "-cand-abc123",  # must start with a letter or digit
        "cand1",  # 5 characters: one short
        "c" * 64,  # one too long
        "cand_abc123",  # underscore
        "cand-abc123\n",  # a trailing newline must not slip through `$`
        "",
    ],
)
def test_invalid_ids_are_denied(bad_id):
    assert check("policy-dry-run", "shadow-paper", candidate_id=bad_id) == denied(
        "shadow-paper", "invalid_candidate_id"
    )
    state = state_at("policy-dry-run", runId=bad_id)
    assert check("policy-dry-run", "shadow-paper", state=state, run_id=bad_id) == denied(
        "shadow-paper", "invalid_run_id"
    )


@pytest.mark.parametrize("good_id", ["cand12", "0" * 63, "a-----"])
def test_ids_at_the_pattern_bounds_are_accepted(good_id):
    state = state_at("policy-dry-run", candidateId=good_id, runId=good_id)
    result = check(
        "policy-dry-run", "shadow-paper", state=state, candidate_id=good_id, run_id=good_id
    )
    assert result == allowed("shadow-paper")


@pytest.mark.parametrize("artifact", [None, "", "artifacts/elsewhere.json"])
def test_missing_previous_artifact(artifact):
    assert check("policy-dry-run", "shadow-paper", previous_artifact=artifact) == denied(
        "shadow-paper", "missing_previous_artifact"
    )


@pytest.mark.parametrize("from_stage", ["gate-evaluation", "promotion-prerequisites"])
def test_research_intake_needs_no_previous_artifact(from_stage):
    result = check(from_stage, "research-intake", previous_artifact=None)
    assert result == allowed("research-intake")


def test_default_artifact_check_looks_at_the_filesystem(tmp_path):
    report = tmp_path / "report.json"
    request = green("policy-dry-run", "shadow-paper", previous_artifact=str(report))
    state = state_at("policy-dry-run")
    assert check_transition(POLICY, state, request).reason == "missing_previous_artifact"
    report.write_text("{}", encoding="utf-8")
    assert check_transition(POLICY, state, request).allowed is True


@pytest.mark.parametrize(("from_stage", "to_stage"), EDGES)
def test_previous_gate_is_required_except_for_incident_recovery_and_audit(from_stage, to_stage):
    result = check(from_stage, to_stage, previous_gate_passed=False)
    if to_stage in NEEDS_GATE:
        assert result == denied(to_stage, "previous_gate_failed", "rollback")
    else:
        assert to_stage in ("incident-recovery", "audit-evidence", "research-intake")
        assert result == allowed(to_stage)


@pytest.mark.parametrize(("from_stage", "to_stage"), EDGES)
def test_risk_and_execution_controls_are_always_required(from_stage, to_stage):
    assert check(from_stage, to_stage, risk_controls_passed=False) == denied(
        to_stage, "risk_controls_not_passed", "rollback"
    )
    assert check(from_stage, to_stage, execution_controls_passed=False) == denied(
        to_stage, "execution_controls_not_passed", "rollback"
    )


@pytest.mark.parametrize(
    ("mode", "ticket", "ok"),
    [
        ("gitops", None, True),
        ("gitops", "CHG-1", True),
        ("emergency", "INC-42", True),
        ("emergency", None, False),
        ("emergency", "", False),
        ("emergency", "   ", False),
        (None, None, False),
        (None, "INC-42", False),
    ],
)
def test_mutable_stage_needs_gitops_or_a_ticketed_emergency(mode, ticket, ok):
    result = check("policy-dry-run", "shadow-paper", mode=mode, ticket=ticket)
    if ok:
        assert result == allowed("shadow-paper")
    else:
        assert result == denied(
            "shadow-paper", "mutable_action_requires_gitops_or_ticketed_emergency"
        )


@pytest.mark.parametrize(("from_stage", "to_stage"), EDGES)
def test_mode_matters_only_for_mutable_target_stages(from_stage, to_stage):
    result = check(from_stage, to_stage, mode=None)
    if to_stage in MUTABLE:
        assert result == denied(to_stage, "mutable_action_requires_gitops_or_ticketed_emergency")
    else:
        assert result == allowed(to_stage)
    assert MUTABLE == {"candidate-build", "shadow-paper", "live-ramp", "incident-recovery"}


def test_emergency_without_ticket_is_allowed_only_if_the_policy_says_so():
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    data["controls"]["emergencyOverrideRequiresTicket"] = False
    policy = parse_policy(data)
    request = green("policy-dry-run", "shadow-paper", mode="emergency", ticket=None)
    decision = check_transition(
        policy, state_at("policy-dry-run"), request, artifact_exists=artifact_exists
    )
    assert decision.allowed is True


def test_deny_reasons_come_in_the_documented_order():
    """Start with a request that fails every check; fix one fault at a time."""
    state: dict[str, Any] = {
        "candidateId": "cand-other99",
        "activeStage": "backtest-robustness",
        "paused": True,
    }
    request = TransitionRequest(candidate_id="BAD", run_id="BAD", to_stage="shadow-paper")
    fixes: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
        ("invalid_candidate_id", "halt", {}, {"candidate_id": CANDIDATE}),
        ("invalid_run_id", "halt", {}, {"run_id": RUN}),
        ("candidate_mismatch", "halt", {"candidateId": CANDIDATE}, {}),
        ("missing_run_id", "halt", {"runId": "run-other99"}, {}),
        ("run_mismatch:run-other99", "halt", {"runId": RUN}, {}),
        (
            "illegal_transition:backtest-robustness->shadow-paper",
            "halt",
            {},
            {"from_stage": "policy-dry-run"},
        ),
        (
            "active_stage_mismatch:backtest-robustness",
            "halt",
            {"activeStage": "policy-dry-run"},
            {},
        ),
        ("candidate_paused_for_review", "human_review", {"paused": False}, {}),
        ("missing_previous_artifact", "halt", {}, {"previous_artifact": ARTIFACT}),
        ("previous_gate_failed", "rollback", {}, {"previous_gate_passed": True}),
        ("risk_controls_not_passed", "rollback", {}, {"risk_controls_passed": True}),
        ("execution_controls_not_passed", "rollback", {}, {"execution_controls_passed": True}),
        (
            "mutable_action_requires_gitops_or_ticketed_emergency",
            "halt",
            {},
            {"mode": "emergency", "ticket": "INC-42"},
        ),
    ]
    for reason, next_action, state_fix, request_fix in fixes:
        decision = check_transition(POLICY, state, request, artifact_exists=artifact_exists)
        assert (decision.allowed, decision.reason, decision.next_action) == (
            False,
            reason,
            next_action,
        )
        state = {**state, **state_fix}
        request = replace(request, **request_fix)
    final = check_transition(POLICY, state, request, artifact_exists=artifact_exists)
    assert final.as_json() == allowed("shadow-paper")


def test_missing_run_id_comes_before_missing_source_stage():
    state = {"candidateId": CANDIDATE}
    assert check(None, "shadow-paper", state=state) == denied("shadow-paper", "missing_run_id")


def test_candidate_state_dataclass_is_accepted():
    state = CandidateState(candidate_id=CANDIDATE, run_id=RUN, active_stage="policy-dry-run")
    decision = check_transition(
        POLICY, state, green(None, "shadow-paper"), artifact_exists=artifact_exists
    )
    assert decision == GuardDecision(
        allowed=True,
        reason="transition_allowed",
        next_action="proceed",
        to_stage="shadow-paper",
        lane="lane-e",
        policy_version=VERSION,
    )


@pytest.mark.parametrize(
    ("state", "fields", "message"),
    [
        (state_at("policy-dry-run"), {"to_stage": "paper"}, "unknown target stage 'paper'"),
        (
            state_at("policy-dry-run"),
            {"from_stage": "dry-run"},
            "unknown source stage 'dry-run'",
        ),
        (state_at("policy-dry-run"), {"mode": "manual"}, "mode must be one of gitops, emergency"),
        (state_at("shadow"), {}, "unknown activeStage in state 'shadow'"),
        (state_at("policy-dry-run", paused="no"), {}, "state.paused must be true or false"),
        (state_at("policy-dry-run", runId=7), {}, "state.runId must be a string, got 7"),
        (
            state_at("policy-dry-run", failureCounts=[1]),
            {},
            "state.failureCounts must be an object",
        ),
    ],
)
def test_invalid_transition_input_raises(state, fields, message):
    with pytest.raises(GuardInputError, match=re.escape(message)):
        request = replace(green("policy-dry-run", "shadow-paper"), **fields)
        check_transition(POLICY, state, request)


def test_unknown_stage_error_lists_the_known_stages():
    with pytest.raises(GuardInputError) as excinfo:
        check_transition(POLICY, state_at(None), green(None, "paper"))
    assert str(excinfo.value) == (
        f"unknown target stage 'paper'; policy {VERSION} knows: " + ", ".join(STAGE_NAMES)
    )


# --------------------------------------------------------------------------- failures


def failure(
    failure_class: str, attempt: int, stored: int | None = None, stage: str = "candidate-build"
) -> dict[str, Any]:
    state = {} if stored is None else {"failureCounts": {stage: stored}}
    return evaluate_failure(POLICY, state, stage, failure_class, attempt).as_json()


def test_transient_failures_back_off_15_30_60_120_then_pause_at_the_fifth():
    outcomes = [
        (result["action"], result.get("nextBackoffSeconds"), result["stageFailures"])
        for result in (failure("transient", n, stored=n - 1) for n in range(1, 7))
    ]
    assert outcomes == [
        ("retry", 15, 1),
        ("retry", 30, 2),
        ("retry", 60, 3),
        ("retry", 120, 4),
        ("pause_for_review", None, 5),
        ("pause_for_review", None, 6),
    ]


def test_transient_retry_and_pause_payloads():
    assert failure("transient", 2, stored=1) == {
        "action": "retry",
        "reason": "transient_retry_scheduled",
        "stage": "candidate-build",
        "failureClass": "transient",
        "attempt": 2,
        "stageFailures": 2,
        "nextBackoffSeconds": 30,
        "policyVersion": VERSION,
    }
    assert failure("transient", 5, stored=4) == {
        "action": "pause_for_review",
        "reason": "transient_failure_threshold_reached",
        "stage": "candidate-build",
        "failureClass": "transient",
        "attempt": 5,
        "stageFailures": 5,
        "policyVersion": VERSION,
    }


def test_attempt_counts_when_the_state_has_no_failure_count():
    assert failure("transient", 4)["nextBackoffSeconds"] == 120
    assert failure("transient", 5)["action"] == "pause_for_review"


def test_stored_failure_count_wins_when_it_is_higher_than_the_attempt():
    result = failure("transient", 1, stored=4)
    assert (result["action"], result["stageFailures"], result["attempt"]) == (
        "pause_for_review",
        5,
        1,
    )
    assert failure("transient", 1, stored=2)["nextBackoffSeconds"] == 60


def test_failure_counts_of_other_stages_are_ignored():
    state = {"failureCounts": {"gate-evaluation": 9}}
    result = evaluate_failure(POLICY, state, "candidate-build", "transient", 1)
    assert (result.action, result.next_backoff_seconds) == ("retry", 15)


@pytest.mark.parametrize(
    ("failure_class", "pause_at"),
    [("transient", 5), ("deterministic", 2), ("spec", 2), ("policy", 1)],
)
def test_each_class_pauses_at_its_threshold(failure_class, pause_at):
    before = failure(failure_class, pause_at - 1) if pause_at > 1 else None
    at = failure(failure_class, pause_at)
    assert at["action"] == "pause_for_review"
    assert at["reason"] == f"{failure_class}_failure_threshold_reached"
    assert at["stageFailures"] == pause_at
    if before is not None:
        assert before["action"] == ("retry" if failure_class == "transient" else "fail")


@pytest.mark.parametrize("failure_class", ["deterministic", "spec"])
def test_deterministic_and_spec_fail_once_then_pause(failure_class):
    assert failure(failure_class, 1) == {
        "action": "fail",
        "reason": f"{failure_class}_non_retryable",
        "stage": "candidate-build",
        "failureClass": failure_class,
        "attempt": 1,
        "stageFailures": 1,
        "policyVersion": VERSION,
    }
    assert failure(failure_class, 1, stored=1)["action"] == "pause_for_review"


def test_policy_failure_pauses_at_once():
    assert failure("policy", 1)["action"] == "pause_for_review"


def custom_policy(**transient: Any):
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    data["failurePolicies"]["transient"].update(transient)
    return parse_policy(data)


def test_backoff_is_capped_at_max_backoff_seconds():
    policy = custom_policy(maxRetries=7, autopauseAfterFailures=9)
    outcomes = [
        (d.action, d.next_backoff_seconds, d.reason)
        for d in (evaluate_failure(policy, {}, "live-ramp", "transient", n) for n in range(1, 10))
    ]
    assert outcomes == [
        ("retry", 15, "transient_retry_scheduled"),
        ("retry", 30, "transient_retry_scheduled"),
        ("retry", 60, "transient_retry_scheduled"),
        ("retry", 120, "transient_retry_scheduled"),
        ("retry", 240, "transient_retry_scheduled"),
        ("retry", 300, "transient_retry_scheduled"),
        ("retry", 300, "transient_retry_scheduled"),
        ("fail", None, "transient_retries_exhausted"),
        ("pause_for_review", None, "transient_failure_threshold_reached"),
    ]


def test_fractional_multiplier_rounds_backoff_up_to_whole_seconds():
    policy = custom_policy(initialBackoffSeconds=10, backoffMultiplier=1.5)
    backoffs = [
        evaluate_failure(policy, {}, "live-ramp", "transient", n).next_backoff_seconds
        for n in range(1, 5)
    ]
    assert backoffs == [10, 15, 23, 34]  # 10, 15, 22.5, 33.75


@pytest.mark.parametrize(
    ("state", "stage", "failure_class", "attempt", "message"),
    [
        ({}, "candidate-build", "transient", 0, "attempt must be an integer >= 1, got 0"),
        ({}, "build", "transient", 1, "unknown stage 'build'"),
        ({}, "candidate-build", "network", 1, "unknown failure class 'network'"),
        (
            {"failureCounts": {"candidate-build": -1}},
            "candidate-build",
            "spec",
            1,
            "state.failureCounts['candidate-build'] must be a non-negative integer, got -1",
        ),
        (
            {"failureCounts": {"candidate-build": True}},
            "candidate-build",
            "spec",
            1,
            "state.failureCounts['candidate-build'] must be a non-negative integer, got True",
        ),
    ],
)
def test_invalid_failure_input_raises(state, stage, failure_class, attempt, message):
    with pytest.raises(GuardInputError, match=re.escape(message)):
        evaluate_failure(POLICY, state, stage, failure_class, attempt)


# --------------------------------------------------------------------------- invalid policies


def shipped() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8")))


def _set(path: str, value: Any):
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return mutate


_DELETE = object()


def _duplicate_first_stage(data: dict[str, Any]) -> None:
    data["stages"].append(copy.deepcopy(data["stages"][0]))


INVALID_POLICIES = [
    (_set("version", _DELETE), "policy is missing version"),
    (_set("transition", {}), "policy has unknown key(s) transition"),
    (_set("stages", []), "stages must be a non-empty list"),
    (_duplicate_first_stage, "stages[12].stage 'research-intake' is defined twice"),
    (_set("stages/0/lane", _DELETE), "stages[0] is missing lane"),
    (_set("stages/0/stage", "Research Intake"), "must be lowercase kebab-case"),
    (
        _set("stages/1/mutableAction", "yes"),
        "stages[1].mutableAction must be true or false, got 'yes'",
    ),
    (
        _set("transitions/gate-evaluation", ["research-intake", "shadow-paperr"]),
        "transitions.gate-evaluation[1] is unknown stage 'shadow-paperr'",
    ),
    (_set("transitions/nowhere", []), "transitions has unknown source stage 'nowhere'"),
    (
        _set("transitions/audit-evidence", _DELETE),
        "transitions.audit-evidence is missing (use [] for a terminal stage)",
    ),
    (
        _set("transitions/research-intake", ["candidate-build", "candidate-build"]),
        "transitions.research-intake lists a stage twice",
    ),
    (_set("transitions/research-intake", "candidate-build"), "must be a list of stages"),
    (
        _set("failurePolicies/transient/maxRetries", -1),
        "failurePolicies.transient.maxRetries must be >= 0, got -1",
    ),
    (
        _set("failurePolicies/transient/maxRetries", 1.5),
        "failurePolicies.transient.maxRetries must be an integer, got 1.5",
    ),
    (
        _set("failurePolicies/transient/maxRetries", True),
        "failurePolicies.transient.maxRetries must be an integer, got True",
    ),
    (
        _set("failurePolicies/transient/backoffMultiplier", 0.5),
        "failurePolicies.transient.backoffMultiplier must be >= 1, got 0.5",
    ),
    (
        _set("failurePolicies/transient/maxBackoffSeconds", 10),
        "failurePolicies.transient.maxBackoffSeconds (10) is below initialBackoffSeconds (15)",
    ),
    (
        _set("failurePolicies/policy/autopauseAfterFailures", 0),
        "failurePolicies.policy.autopauseAfterFailures must be >= 1",
    ),
    (_set("failurePolicies/spec", _DELETE), "failurePolicies is missing spec"),
    (_set("failurePolicies/network", {}), "failurePolicies has unknown key(s) network"),
    (_set("failurePolicies/transient/jitter", 0.1), "has unknown key(s) jitter"),
    (
        _set("controls/riskControlsAuthority", "advisory"),
        "controls.riskControlsAuthority must be 'final' (the only setting the guard implements), "
        "got 'advisory'",
    ),
    (
        _set("controls/emergencyOverrideRequiresTicket", _DELETE),
        "controls is missing emergencyOverrideRequiresTicket",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), INVALID_POLICIES)
def test_invalid_policy_file_is_rejected_with_the_offending_key(tmp_path, mutate, message):
    data = shipped()
    mutate(data)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(PolicyError, match=re.escape(message)) as excinfo:
        load_policy(path)
    assert str(excinfo.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "policy must be a mapping"),
        ("- a\n- b\n", "policy must be a mapping"),
        ("stages: [\n", "is not valid YAML"),
    ],
)
def test_policy_file_that_is_not_a_mapping_is_rejected(tmp_path, text, message):
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=re.escape(message)):
        load_policy(path)


def test_missing_policy_file_is_rejected(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(PolicyError) as excinfo:
        load_policy(path)
    assert str(excinfo.value) == f"cannot read policy file {path}: No such file or directory"


# --------------------------------------------------------------------------- the command


@pytest.fixture
def files(tmp_path):
    state = tmp_path / "candidate-state.json"
    state.write_text(json.dumps(state_at("policy-dry-run")), encoding="utf-8")
    report = tmp_path / "report.json"
    report.write_text("{}", encoding="utf-8")
    return state, report


def transition_args(state: Path, report: Path, from_stage: str, to_stage: str) -> list[str]:
    return [
        "check-transition",
        "--state",
        str(state),
        "--candidate-id",
        CANDIDATE,
        "--run-id",
        RUN,
        "--from-stage",
        from_stage,
        "--to-stage",
        to_stage,
        "--previous-artifact",
        str(report),
        "--previous-gate-passed",
        "--risk-controls-passed",
        "--execution-controls-passed",
        "--mode",
        "gitops",
    ]


def guard(*args: str) -> tuple[int, str]:
    """Run the command in-process; the exit code it would give and its stdout."""
    out = io.StringIO()
    try:
        call_command("orchestration_guard", *args, stdout=out, stderr=io.StringIO())
    except SystemExit as exc:
        assert isinstance(exc.code, int)
        return exc.code, out.getvalue()
    return 0, out.getvalue()


def test_command_allows_a_legal_transition(files):
    state, report = files
    code, out = guard(*transition_args(state, report, "policy-dry-run", "shadow-paper"))
    assert code == 0
    assert out == json.dumps(allowed("shadow-paper"), sort_keys=True) + "\n"


def test_command_denies_the_seed_example_with_exit_2(files):
    state, report = files
    state.write_text(json.dumps(state_at("gate-evaluation")), encoding="utf-8")
    out = io.StringIO()
    with pytest.raises(SystemExit) as excinfo:
        call_command(
            "orchestration_guard",
            *transition_args(state, report, "gate-evaluation", "shadow-paper"),
            stdout=out,
        )
    assert excinfo.value.code == 2
    assert json.loads(out.getvalue()) == denied(
        "shadow-paper", "illegal_transition:gate-evaluation->shadow-paper"
    )


def test_command_emergency_ticket_flag_and_its_alias(files):
    state, report = files
    args = transition_args(state, report, "policy-dry-run", "shadow-paper")[:-1] + ["emergency"]
    assert guard(*args)[0] == 2
    assert guard(*args, "--ticket", "INC-42")[0] == 0
    assert guard(*args, "--emergency-ticket", "INC-42")[0] == 0


@pytest.mark.parametrize(
    ("attempt", "stored", "code", "action"),
    [("2", 1, 0, "retry"), ("5", 4, 2, "pause_for_review")],
)
def test_command_evaluates_failures(tmp_path, attempt, stored, code, action):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"failureCounts": {"candidate-build": stored}}), encoding="utf-8")
    result = guard(
        "evaluate-failure",
        "--state",
        str(state),
        "--stage",
        "candidate-build",
        "--failure-class",
        "transient",
        "--attempt",
        attempt,
    )
    assert result[0] == code
    assert json.loads(result[1])["action"] == action


def test_command_deterministic_failure_fails_with_exit_2(tmp_path):
    state = tmp_path / "state.json"
    state.write_text("{}", encoding="utf-8")
    code, out = guard(
        "evaluate-failure",
        *("--state", str(state), "--stage", "gate-evaluation"),
        *("--failure-class", "deterministic", "--attempt", "1"),
    )
    assert code == 2
    assert json.loads(out)["reason"] == "deterministic_non_retryable"


def test_command_uses_the_policy_option(files, tmp_path):
    state, report = files
    data = shipped()
    data["transitions"]["gate-evaluation"].append("shadow-paper")
    policy = tmp_path / "permissive.yaml"
    policy.write_text(yaml.safe_dump(data), encoding="utf-8")
    state.write_text(json.dumps(state_at("gate-evaluation")), encoding="utf-8")
    args = transition_args(state, report, "gate-evaluation", "shadow-paper")
    assert guard(*args)[0] == 2
    assert guard(*args, "--policy", str(policy)) == (
        0,
        json.dumps(allowed("shadow-paper"), sort_keys=True) + "\n",
    )


@pytest.mark.parametrize(
    ("setup", "extra", "message"),
    [
        ("missing", [], "cannot read state file {state}: No such file or directory"),
        ("not-json", [], "state file {state} is not valid JSON"),
        ("array", [], "state file {state} must hold a JSON object"),
        ("ok", ["--to-stage", "paper"], "unknown target stage 'paper'"),
        ("ok", ["--policy", "{tmp}/absent.yaml"], "cannot read policy file {tmp}/absent.yaml"),
    ],
)
def test_command_input_errors_are_command_errors_with_exit_1(
    files, tmp_path, setup, extra, message
):
    state, report = files
    if setup == "missing":
        state.unlink()
    elif setup == "not-json":
        state.write_text("{activeStage:", encoding="utf-8")
    elif setup == "array":
        state.write_text("[]", encoding="utf-8")
    args = transition_args(state, report, "policy-dry-run", "shadow-paper")
    extra = [part.format(tmp=tmp_path) for part in extra]
    out = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("orchestration_guard", *args, *extra, stdout=out)
    assert excinfo.value.returncode == 1
    assert str(excinfo.value).startswith(message.format(state=state, tmp=tmp_path))
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Error: the following arguments are required: command"),
        (
            ["evaluate-failure", "--state", "s.json", "--stage", "candidate-build"],
            "Error: the following arguments are required: --failure-class, --attempt",
        ),
        (
            ["evaluate-failure", "--state", "s.json", "--stage", "candidate-build"]
            + ["--failure-class", "flaky", "--attempt", "1"],
            "Error: argument --failure-class: invalid choice: 'flaky'",
        ),
    ],
)
def test_command_usage_errors_are_command_errors_with_exit_1(args, message):
    with pytest.raises(CommandError, match=re.escape(message)) as excinfo:
        call_command("orchestration_guard", *args)
    assert excinfo.value.returncode == 1


# --------------------------------------------------------------------------- real manage.py


def test_manage_py_legal_transition_exits_0(files):
    state, report = files
    proc = manage(
        "orchestration_guard", *transition_args(state, report, "policy-dry-run", "shadow-paper")
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout) == allowed("shadow-paper")


def test_manage_py_seed_example_exits_2(files):
    state, report = files
    state.write_text(json.dumps(state_at("gate-evaluation")), encoding="utf-8")
    proc = manage(
        "orchestration_guard", *transition_args(state, report, "gate-evaluation", "shadow-paper")
    )
    assert proc.returncode == 2
    assert json.loads(proc.stdout) == denied(
        "shadow-paper", "illegal_transition:gate-evaluation->shadow-paper"
    )


def test_manage_py_input_and_usage_errors_exit_1(tmp_path):
    missing = tmp_path / "absent.json"
    proc = manage(
        "orchestration_guard",
        *("evaluate-failure", "--state", str(missing), "--stage", "candidate-build"),
        *("--failure-class", "transient", "--attempt", "1"),
    )
    assert (proc.returncode, proc.stdout) == (1, "")
    assert (
        proc.stderr
        == f"CommandError: cannot read state file {missing}: No such file or directory\n"
    )

    proc = manage("orchestration_guard", "evaluate-failure", "--state", str(missing))
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.startswith("CommandError: Error: the following arguments are required: ")
