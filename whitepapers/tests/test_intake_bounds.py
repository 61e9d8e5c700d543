"""Processing an event is bounded: text extraction runs with no transaction open, a Celery soft
time limit ends the attempt (never swallowed), each attempt claims the event so no second copy
starts while it runs, and an event whose attempts are used up is closed, not queued again."""

from __future__ import annotations

import signal
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django.utils import timezone
from prometheus_client import REGISTRY

from whitepapers.models import GithubIssueEvent, WhitepaperAnalysisRun, WhitepaperContent
from whitepapers.services.intake import (
    EVENT_CLAIM_SECONDS,
    EVENT_TASK_TIME_LIMIT,
    github_event_process,
    github_event_record,
)
from whitepapers.services.sweep import whitepaper_sweep_run
from whitepapers.tests.pdfs import make_form_bomb
from whitepapers.tests.test_extract import children_alive
from whitepapers.tests.workflow import intake_row_counts, issue_payload

pytestmark = [pytest.mark.services]

BOMB = make_form_bomb()
# 4,000,000 characters when expanded: about a second of pypdf, enough to watch it run
SMALL_BOMB = make_form_bomb(calls=20, nesting=2, text_bytes=10_000)


def _recorded(url: str, **fields: Any) -> GithubIssueEvent:
    event = github_event_record(source="webhook", payload=issue_payload(url=url), process=False)
    if fields:
        GithubIssueEvent.objects.filter(pk=event.pk).update(**fields)
        event.refresh_from_db()
    return event


def _exhausted_count() -> float:
    value = REGISTRY.get_sample_value(
        "torghut_whitepaper_events_total", {"source": "webhook", "reason": "attempts_exhausted"}
    )
    return value or 0.0


# -- no transaction open while the text is extracted ----------------------------------------------


class _TransactionWatch(threading.Thread):
    """Samples, on its own connection, how many other sessions of the test database sit inside
    an open transaction, and whether an extraction child is running at that moment."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.samples: list[tuple[int, bool]] = []

    def run(self) -> None:
        try:
            with connection.cursor() as cursor:
                while not self.stop.is_set():
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%%'"
                    )
                    (open_transactions,) = cursor.fetchone()
                    self.samples.append((open_transactions, bool(children_alive())))
                    time.sleep(0.01)
        finally:
            connection.close()


def _longest_run(flags: Any) -> int:
    longest = current = 0
    for flag in flags:
        current = current + 1 if flag else 0
        longest = max(longest, current)
    return longest


@pytest.mark.django_db(transaction=True)
def test_text_extraction_runs_with_no_transaction_open(workflow, settings):
    settings.WHITEPAPER_EXTRACT_MAX_CHARS = 3_000_000
    settings.WHITEPAPER_AGENTRUN_AUTO_DISPATCH = False  # only the intake's transactions matter
    url = workflow.host.put("bomb.pdf", SMALL_BOMB)
    event = _recorded(url)
    watch = _TransactionWatch()
    watch.start()
    try:
        outcome = github_event_process(event.pk, retry_unavailable_storage=True)
    finally:
        watch.stop.set()
        watch.join(timeout=10)
    assert outcome.reason == "accepted"
    # the intake's own short write transaction may be seen once or twice, never for long
    assert _longest_run(open_tx > 0 for open_tx, _ in watch.samples) < 10, watch.samples
    during_extraction = [open_tx for open_tx, child in watch.samples if child]
    assert len(during_extraction) >= 3, watch.samples
    assert set(during_extraction) == {0}, watch.samples
    content = WhitepaperContent.objects.get()
    assert content.char_count == 3_000_000
    assert "extraction_limit_exceeded:output" in content.extraction_warnings
    version = content.document_version
    assert version.parse_status == "stored"
    assert version.extraction_metadata["limit_exceeded"] == "output"


@pytest.mark.django_db
def test_a_limit_leaves_the_paper_stored_with_empty_text_and_the_run_queued(workflow, settings):
    settings.WHITEPAPER_EXTRACT_CPU_SECONDS = 60
    settings.WHITEPAPER_EXTRACT_TIMEOUT_SECONDS = 1.0
    settings.WHITEPAPER_EXTRACT_MAX_CHARS = 100_000_000
    settings.WHITEPAPER_AGENTRUN_AUTO_DISPATCH = False
    url = workflow.host.put("bomb.pdf", BOMB)
    started = time.monotonic()
    outcome = github_event_process(_recorded(url).pk, retry_unavailable_storage=True)
    assert time.monotonic() - started < 1.0 + 5  # the download, the store and the child's start
    assert (outcome.accepted, outcome.reason) == (True, "accepted")
    content = WhitepaperContent.objects.get()
    assert (content.full_text, content.page_count) == ("", 0)
    assert content.extraction_warnings == [
        "extraction_limit_exceeded:timeout",
        "no answer within 1 s",
    ]
    assert content.document_version.parse_status == "stored"
    assert WhitepaperAnalysisRun.objects.get().status == "queued"
    assert children_alive() == []


# -- a soft time limit ends the attempt --------------------------------------------------------


def _soft_time_limit_in(seconds: float) -> threading.Timer:
    """What billiard does to a pool process at the soft time limit: a signal whose handler
    raises SoftTimeLimitExceeded in the task's (main) thread."""

    def handler(signum: int, frame: Any) -> None:
        raise SoftTimeLimitExceeded

    signal.signal(signal.SIGUSR1, handler)
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(seconds, lambda: signal.pthread_kill(main, signal.SIGUSR1))
    timer.start()
    return timer


@pytest.mark.timeout(120)
@pytest.mark.django_db
def test_a_soft_time_limit_ends_the_attempt_and_leaves_the_event_claimable(workflow, settings):
    settings.WHITEPAPER_EXTRACT_CPU_SECONDS = 60
    settings.WHITEPAPER_EXTRACT_TIMEOUT_SECONDS = 60.0
    settings.WHITEPAPER_EXTRACT_MAX_CHARS = 100_000_000
    settings.WHITEPAPER_AGENTRUN_AUTO_DISPATCH = False
    url = workflow.host.put("bomb.pdf", BOMB)
    event = _recorded(url)
    previous = signal.getsignal(signal.SIGUSR1)
    timer = _soft_time_limit_in(2.0)
    started = time.monotonic()
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            github_event_process(event.pk, retry_unavailable_storage=True)
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
    assert time.monotonic() - started < 2.0 + 3
    assert children_alive() == []  # the child did not outlive the attempt
    event.refresh_from_db()
    assert (event.status, event.attempts, event.claimed_until, event.claim_token) == (
        "pending",
        1,
        None,
        "",
    )
    assert event.detail == "attempt 1 interrupted: SoftTimeLimitExceeded"
    assert intake_row_counts()["runs"] == 0

    # a later attempt (the sweep's) is counted and, bounded, completes
    settings.WHITEPAPER_EXTRACT_MAX_CHARS = 10_000
    outcome = github_event_process(event.pk, retry_unavailable_storage=True)
    assert (outcome.accepted, outcome.reason) == (True, "accepted")
    event.refresh_from_db()
    assert (event.status, event.attempts, event.claimed_until) == ("processed", 2, None)
    assert WhitepaperContent.objects.get().char_count == 10_000


# -- claims and the attempt cap ------------------------------------------------------------------


def test_the_claim_outlives_the_task_hard_time_limit():
    assert EVENT_CLAIM_SECONDS > EVENT_TASK_TIME_LIMIT


@pytest.mark.django_db
def test_a_live_claim_stops_the_sweep_and_a_duplicate_message(workflow, settings):
    url = workflow.host.put("paper.pdf", SMALL_BOMB)
    old = timezone.now() - timedelta(seconds=settings.WHITEPAPER_SWEEP_AFTER_SECONDS + 5)
    event = _recorded(
        url,
        received_at=old,
        attempts=1,
        claimed_until=timezone.now() + timedelta(seconds=300),
        claim_token="a" * 32,
    )
    assert whitepaper_sweep_run() == {"events": 0, "runs": 0, "exhausted": 0}
    duplicate = github_event_process(event.pk, retry_unavailable_storage=True)
    assert (duplicate.accepted, duplicate.reason) == (False, "event_claimed")
    event.refresh_from_db()
    assert (event.status, event.attempts, event.claim_token) == ("pending", 1, "a" * 32)
    assert workflow.host.downloads("paper.pdf") == 0
    assert intake_row_counts()["runs"] == 0

    # the claim lapses (its attempt died with its worker): the sweep queues the event again
    GithubIssueEvent.objects.filter(pk=event.pk).update(claimed_until=timezone.now())
    assert whitepaper_sweep_run() == {"events": 1, "runs": 0, "exhausted": 0}
    event.refresh_from_db()  # eager Celery: processed by the re-queued task
    assert (event.status, event.reason, event.attempts) == ("processed", "accepted", 2)
    assert workflow.host.downloads("paper.pdf") == 1


@pytest.mark.django_db
def test_an_event_with_no_attempt_left_is_closed_not_requeued(workflow, settings):
    settings.WHITEPAPER_STORAGE_RETRY_ATTEMPTS = 3
    url = workflow.host.put("paper.pdf", SMALL_BOMB)
    old = timezone.now() - timedelta(seconds=settings.WHITEPAPER_SWEEP_AFTER_SECONDS + 5)
    event = _recorded(
        url, received_at=old, attempts=3, detail="attempt 3 interrupted: SoftTimeLimitExceeded"
    )
    before = _exhausted_count()
    assert whitepaper_sweep_run() == {"events": 0, "runs": 0, "exhausted": 1}
    event.refresh_from_db()
    assert (event.status, event.accepted, event.reason, event.attempts) == (
        "processed",
        False,
        "attempts_exhausted",
        3,
    )
    assert event.detail == (
        "3 attempts, none finished; the last: attempt 3 interrupted: SoftTimeLimitExceeded"
    )
    assert _exhausted_count() == before + 1
    assert whitepaper_sweep_run() == {"events": 0, "runs": 0, "exhausted": 0}
    assert workflow.host.downloads("paper.pdf") == 0
    assert intake_row_counts()["runs"] == 0


@pytest.mark.django_db
def test_a_message_for_an_event_with_no_attempt_left_closes_it(workflow, settings):
    settings.WHITEPAPER_STORAGE_RETRY_ATTEMPTS = 2
    url = workflow.host.put("paper.pdf", SMALL_BOMB)
    event = _recorded(url, attempts=2)
    outcome = github_event_process(event.pk, retry_unavailable_storage=True)
    assert (outcome.accepted, outcome.reason) == (False, "attempts_exhausted")
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("processed", 2)
    assert workflow.host.downloads("paper.pdf") == 0
