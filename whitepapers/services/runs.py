"""Run and document status changes, checked against the state machines."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from whitepapers.models import WhitepaperAnalysisRun, WhitepaperDocument
from whitepapers.statemachine import document_can_move, run_can_move


class IllegalRunTransition(Exception):
    def __init__(self, run_id: str, from_status: str, to_status: str) -> None:
        super().__init__(f"{run_id}: {from_status} -> {to_status} is not allowed")
        self.from_status = from_status
        self.to_status = to_status


def run_move(run: WhitepaperAnalysisRun, to_status: str, **fields: Any) -> None:
    """Move a run (locked by the caller) to `to_status`, saving `fields` with it."""
    if not run_can_move(run.status, to_status):
        raise IllegalRunTransition(run.run_id, run.status, to_status)
    run.status = to_status
    for name, value in fields.items():
        setattr(run, name, value)
    run.save(update_fields=["status", "updated_at", *fields])


def document_move(document: WhitepaperDocument, to_status: str) -> None:
    """Documents follow their runs; a move the machine does not allow is left out, not raised
    (the run's own transition is what guards the workflow)."""
    if document.status == to_status or not document_can_move(document.status, to_status):
        return
    document.status = to_status
    document.last_processed_at = timezone.now()
    document.save(update_fields=["status", "last_processed_at", "updated_at"])
