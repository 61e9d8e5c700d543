"""Issue #18 finding 3: a small crafted PDF must not stop trading.

The crafted shape (`make_form_bomb`, about 1.4 KB): the page invokes a form XObject 400 times, that
form invokes another 400 times, the innermost shows one 200,000-letter `Tj` string, so an
unbounded extractor works for hours. Real processes: a Celery worker on the `torghut` queue runs
the trade cycle, a second worker on the `whitepapers` queue processes the GitHub event (download
from a loopback host, store, extract), both on a private Redis and the test database. The event
is queued the way intake queues it (routed by CELERY_TASK_ROUTES); while its PDF is being
extracted, beat ticks of the trade cycle keep completing within their normal latency. The
extraction ends at WHITEPAPER_EXTRACT_TIMEOUT_SECONDS with the paper stored and the limit
recorded.

Before the change, the processing task went to the one `torghut` queue and parsed the PDF in the
worker's own process, inside the intake transaction: the trade worker was held and no cycle ran.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings

from tests.faults.conftest import (
    Worker,
    lanes_ready,
    signals_csv,
    tick,
    trading_env,
    wait_for,
)
from trading.models import LaneState
from whitepapers.models import GithubIssueEvent, WhitepaperContent
from whitepapers.services.intake import github_event_record
from whitepapers.tests.pdfs import make_form_bomb
from whitepapers.tests.workflow import issue_payload

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]

EXTRACT_TIMEOUT = 20  # the whitepaper worker's wall-clock limit on the crafted PDF
CYCLE_LATENCY = 5.0  # a trade cycle of the replayed lane finishes well within this when idle
TICKS = 5


def intake_client(broker_url: str) -> Celery:
    """Sends tasks the way the intake does: with the project's routes (CELERY_TASK_ROUTES)."""
    return Celery(
        f"intake-{uuid.uuid4().hex[:6]}",
        broker=broker_url,
        set_as_current=False,
        config_source={
            "task_serializer": "json",
            "accept_content": ["json"],
            "task_default_queue": settings.CELERY_TASK_DEFAULT_QUEUE,
            "task_routes": getattr(settings, "CELERY_TASK_ROUTES", None),
            "broker_connection_retry_on_startup": True,
        },
    )


def cycle_latency(client: Celery, lane: str) -> float | None:
    """Send one beat tick of the lane's cycle; seconds until it finished (None: not in time)."""
    before = LaneState.objects.filter(account_label=lane).values_list(
        "last_cycle_finished_at", flat=True
    )
    previous = before.first()
    started = time.monotonic()
    tick(client, lane)

    def finished() -> bool:
        now = before.first()
        return now is not None and now != previous

    if not wait_for(finished, timeout=CYCLE_LATENCY, step=0.05):
        return None
    return time.monotonic() - started


def test_a_crafted_pdf_on_the_whitepapers_queue_does_not_delay_the_trade_cycle(
    private_redis, paper_host, tmp_path: Path
):
    lanes_ready(["paper"])
    signals = signals_csv(tmp_path / "signals.csv")
    env = trading_env(
        signals,
        tmp_path,
        private_redis.url,
        WHITEPAPER_WORKFLOW_ENABLED="true",
        WHITEPAPER_AGENTRUN_AUTO_DISPATCH="false",
        WHITEPAPER_CEPH_ENDPOINT="",
        WHITEPAPER_DOWNLOAD_TIMEOUT_SECONDS="10",
        WHITEPAPER_EXTRACT_CPU_SECONDS="60",
        WHITEPAPER_EXTRACT_TIMEOUT_SECONDS=str(EXTRACT_TIMEOUT),
        WHITEPAPER_EXTRACT_MAX_CHARS="100000000",
        WHITEPAPER_EXTRACT_MEMORY_MB="1024",
        WHITEPAPER_ALLOWED_REPOSITORIES="proompteng/lab",  # the payload's repository
        # the PDF host is a loopback test server: the test-only allowance, and its address
        DJANGO_SETTINGS_MODULE="tests.settings_loopback",
        WHITEPAPER_PDF_ALLOWED_HOSTS="127.0.0.1",
    )
    trade = Worker("trade", env, tmp_path, queues="torghut")
    research = Worker("research", env, tmp_path, queues="whitepapers")
    client = intake_client(private_redis.url)
    try:
        # the trade worker is up and the lane's cycle runs (its first cycle may trade)
        tick(client, "paper")
        assert wait_for(
            lambda: LaneState.objects.filter(last_cycle_finished_at__isnull=False).exists(),
            timeout=90,
        ), trade.log()
        idle = cycle_latency(client, "paper")
        assert idle is not None, trade.log()

        url = paper_host.put("bomb.pdf", make_form_bomb())
        event = github_event_record(source="api", payload=issue_payload(url=url), process=False)
        queued_at = time.monotonic()
        client.send_task("whitepapers.tasks.process_github_event", args=[event.pk])
        # the research worker has taken the event and is extracting its text
        assert wait_for(lambda: paper_host.downloads("bomb.pdf") == 1, timeout=60), research.log()

        latencies = []
        for _ in range(TICKS):
            latencies.append(cycle_latency(client, "paper"))
            time.sleep(0.5)
        still_extracting = GithubIssueEvent.objects.get(pk=event.pk).status == "pending"
        assert all(latency is not None for latency in latencies), (latencies, trade.log())
        assert still_extracting  # every tick above ran while the PDF was being parsed

        assert wait_for(
            lambda: GithubIssueEvent.objects.get(pk=event.pk).status == "processed",
            timeout=EXTRACT_TIMEOUT + 30,
        ), research.log()
        assert time.monotonic() - queued_at < EXTRACT_TIMEOUT + 30
        event.refresh_from_db()
        assert (event.reason, event.attempts, event.claimed_until) == ("accepted", 1, None)
        content = WhitepaperContent.objects.get()
        assert content.full_text == ""
        assert content.extraction_warnings == [
            "extraction_limit_exceeded:timeout",
            f"no answer within {EXTRACT_TIMEOUT} s",
        ]
        assert trade.proc.poll() is None
        assert research.proc.poll() is None
    finally:
        trade.stop()
        research.stop()
