"""``evaluate_failure``: retry, pause for review or fail a stage's failure (the counting rules
are in the package docstring), and the decision it returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autonomy.guard.policy import Policy
from autonomy.guard.state import CandidateState, candidate_state_resolve
from autonomy.guard.vocabulary import (
    ACTION_FAIL,
    ACTION_PAUSE,
    ACTION_RETRY,
    FAILURE_CLASSES,
    GuardInputError,
)


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
    current = candidate_state_resolve(state, policy)
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
