"""What an intake answers: `IntakeOutcome` and its builders, and `StorageUnavailable` (the
event is to be retried later)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from whitepapers.models import GithubIssueEvent, RunStatus, WhitepaperAnalysisRun

# outcomes that created or re-queued work (HTTP 202); the rest answer 200
WORK_REASONS = frozenset({"accepted", "requeued"})


class StorageUnavailable(Exception):
    """Object storage is unreachable and the event has attempts left: nothing was written for it
    but its `attempts` and `detail`; retry the event later."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class IntakeOutcome:
    accepted: bool
    reason: str
    run_id: str | None = None
    document_key: str | None = None
    agentrun_name: str | None = None
    detail: str = ""
    event_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "run_id": self.run_id,
            "document_key": self.document_key,
            "agentrun_name": self.agentrun_name,
            "detail": self.detail,
            "event_id": self.event_id,
        }


def stored_outcome(event: GithubIssueEvent) -> IntakeOutcome:
    run = event.run
    return IntakeOutcome(
        accepted=bool(event.accepted),
        reason=event.reason,
        run_id=run.run_id if run else None,
        document_key=run.document.document_key if run else None,
        agentrun_name=latest_agentrun_name(run) if run else None,
        detail=event.detail,
        event_id=event.pk,
    )


def latest_agentrun_name(run: WhitepaperAnalysisRun) -> str | None:
    latest = run.agentruns.order_by("-attempt").first()
    return latest.agentrun_name if latest else None


def outcome_refused(reason: str, detail: str = "") -> IntakeOutcome:
    return IntakeOutcome(accepted=False, reason=reason, detail=detail)


def run_outcome(run: WhitepaperAnalysisRun, reason: str, *, accepted: bool = True) -> IntakeOutcome:
    return IntakeOutcome(
        accepted=accepted,
        reason=reason,
        run_id=run.run_id,
        document_key=run.document.document_key,
        agentrun_name=latest_agentrun_name(run),
        detail=run.failure_reason if run.status == RunStatus.FAILED else "",
    )
