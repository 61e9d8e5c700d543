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

The package, by part (each submodule imports its siblings, never this package):

- ``vocabulary``: ``DEFAULT_POLICY_PATH``, ``ID_PATTERN``, ``MODES``, ``FAILURE_CLASSES``, the
  ``NEXT_*`` and ``ACTION_*`` names, ``GuardInputError``, ``PolicyError``;
- ``policy``: ``StagePolicy``, ``RetryPolicy``, ``Policy``, ``load_policy``, ``parse_policy``;
- ``state``: ``CandidateState``, ``load_state``;
- ``transitions``: ``TransitionRequest``, ``GuardDecision``, ``check_transition``;
- ``failures``: ``FailureDecision``, ``evaluate_failure``.
"""

from __future__ import annotations

from autonomy.guard.failures import (
    FailureDecision,
    evaluate_failure,
)
from autonomy.guard.policy import (
    Policy,
    RetryPolicy,
    StagePolicy,
    load_policy,
    parse_policy,
)
from autonomy.guard.state import (
    CandidateState,
    load_state,
)
from autonomy.guard.transitions import (
    GuardDecision,
    TransitionRequest,
    check_transition,
)
from autonomy.guard.vocabulary import (
    ACTION_FAIL,
    ACTION_PAUSE,
    ACTION_RETRY,
    DEFAULT_POLICY_PATH,
    FAILURE_CLASSES,
    ID_PATTERN,
    MODES,
    NEXT_HALT,
    NEXT_HUMAN_REVIEW,
    NEXT_PROCEED,
    NEXT_ROLLBACK,
    STAGE_NAME_PATTERN,
    SUPPORTED_CONTROLS,
    GuardInputError,
    PolicyError,
)

__all__ = [
    "ACTION_FAIL",
    "ACTION_PAUSE",
    "ACTION_RETRY",
    "CandidateState",
    "DEFAULT_POLICY_PATH",
    "FAILURE_CLASSES",
    "FailureDecision",
    "GuardDecision",
    "GuardInputError",
    "ID_PATTERN",
    "MODES",
    "NEXT_HALT",
    "NEXT_HUMAN_REVIEW",
    "NEXT_PROCEED",
    "NEXT_ROLLBACK",
    "Policy",
    "PolicyError",
    "RetryPolicy",
    "STAGE_NAME_PATTERN",
    "SUPPORTED_CONTROLS",
    "StagePolicy",
    "TransitionRequest",
    "check_transition",
    "evaluate_failure",
    "load_policy",
    "load_state",
    "parse_policy",
]
