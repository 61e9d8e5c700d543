"""Analysis-run and document lifecycles as explicit state machines.

A run is `queued` when its PDF is stored, `agentrun_dispatched` once Jangar accepted the AgentRun,
then finalized `completed`, `failed` or `cancelled` (`running` if the agent reports progress).
A failed or cancelled run can be queued again (requeue comment, re-dispatch); a completed run is
final. Staying in the same status is always allowed, so a repeated finalize is a no-op.
"""

from __future__ import annotations

from whitepapers.models import DocumentStatus as DS
from whitepapers.models import RunStatus as R

RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    R.QUEUED: frozenset({R.AGENTRUN_DISPATCHED, R.RUNNING, R.COMPLETED, R.FAILED, R.CANCELLED}),
    R.AGENTRUN_DISPATCHED: frozenset({R.RUNNING, R.COMPLETED, R.FAILED, R.CANCELLED, R.QUEUED}),
    R.RUNNING: frozenset({R.COMPLETED, R.FAILED, R.CANCELLED, R.QUEUED}),
    # an agent may finalize after our side gave up on the dispatch (the submit was ambiguous)
    R.FAILED: frozenset({R.QUEUED, R.AGENTRUN_DISPATCHED, R.RUNNING, R.COMPLETED, R.CANCELLED}),
    R.CANCELLED: frozenset({R.QUEUED, R.FAILED}),
    R.COMPLETED: frozenset(),
}

# statuses an agent may report through finalize
FINALIZE_STATUSES = (R.COMPLETED, R.FAILED, R.CANCELLED, R.RUNNING)

DOCUMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    DS.UPLOADED: frozenset({DS.QUEUED, DS.FAILED}),
    DS.QUEUED: frozenset({DS.ANALYZED, DS.FAILED}),
    DS.FAILED: frozenset({DS.QUEUED, DS.ANALYZED}),
    DS.ANALYZED: frozenset({DS.QUEUED}),  # a second paper version analysed again
}

# AgentRun phases after which another attempt may be submitted
RETRYABLE_AGENTRUN_STATUSES = frozenset(
    {"failed", "error", "cancelled", "canceled", "timeout", "timed_out"}
)


def run_can_move(from_status: str, to_status: str) -> bool:
    return from_status == to_status or to_status in RUN_TRANSITIONS.get(from_status, frozenset())


def document_can_move(from_status: str, to_status: str) -> bool:
    return from_status == to_status or to_status in DOCUMENT_TRANSITIONS.get(
        from_status, frozenset()
    )
