"""The safety net for lost tasks: a Celery message can be lost (broker restart, a worker killed
before it acked), the database cannot. Events still `pending` and runs still `queued` without an
AgentRun for their attempt after WHITEPAPER_SWEEP_AFTER_SECONDS are queued again; processing and
dispatch are idempotent, so a sweep that races the original task changes nothing.

An event claimed by a running attempt is left alone (its claim outlives the task's hard time
limit); a pending event whose WHITEPAPER_STORAGE_RETRY_ATTEMPTS attempts are used up is closed
as `attempts_exhausted` here instead of being queued again."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from torghut_site.queueing import task_send
from whitepapers.models import (
    EventStatus,
    GithubIssueEvent,
    RunStatus,
    WhitepaperAnalysisRun,
    WhitepaperAnalysisStep,
    WhitepaperCodexAgentRun,
)
from whitepapers.services.intake import github_event_exhaust

SWEEP_LIMIT = 200


def whitepaper_sweep_run() -> dict[str, int]:
    if not settings.WHITEPAPER_WORKFLOW_ENABLED:
        return {"events": 0, "runs": 0, "exhausted": 0}
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.WHITEPAPER_SWEEP_AFTER_SECONDS)
    # pending and not claimed by a running attempt
    stale = GithubIssueEvent.objects.filter(
        status=EventStatus.PENDING, received_at__lt=cutoff
    ).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
    cap = settings.WHITEPAPER_STORAGE_RETRY_ATTEMPTS
    used_up = stale.filter(attempts__gte=cap).order_by("received_at")
    exhausted = sum(
        github_event_exhaust(pk) for pk in used_up.values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    events = list(
        stale.filter(attempts__lt=cap)
        .order_by("received_at")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    for event_id in events:
        task_send("whitepapers.tasks.process_github_event", event_id)

    undispatched = WhitepaperAnalysisRun.objects.filter(
        status=RunStatus.QUEUED, updated_at__lt=cutoff
    ).exclude(
        Exists(
            WhitepaperCodexAgentRun.objects.filter(
                run=OuterRef("pk"), attempt=OuterRef("dispatch_attempt")
            )
        )
    )
    if not settings.WHITEPAPER_AGENTRUN_AUTO_DISPATCH:
        # only the runs someone asked to dispatch (a requeue)
        undispatched = undispatched.filter(
            Exists(
                WhitepaperAnalysisStep.objects.filter(
                    run=OuterRef("pk"),
                    step_name="requeue_request",
                    attempt=OuterRef("dispatch_attempt"),
                )
            )
        )
    runs = list(undispatched.order_by("updated_at").values_list("run_id", flat=True)[:SWEEP_LIMIT])
    for run_id in runs:
        task_send("whitepapers.tasks.dispatch_agentrun", run_id)
    return {"events": len(events), "runs": len(runs), "exhausted": exhausted}
