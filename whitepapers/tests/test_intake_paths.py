"""The other two intakes — GitHub's signed webhook and Froussard's Kafka topic — and the sweep that
re-queues lost work. Same rules as the API (test_workflow.py); here what is specific to each."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orderfeed.tests.conftest import create_topics, kafka_bootstrap  # noqa: F401 - fixture
from torghut_site.kafka.messages import RawMessage
from torghut_site.models import DeadLetterMessage
from whitepapers.consumer import WhitepaperEventHandler, whitepaper_consumer
from whitepapers.models import GithubIssueEvent, WhitepaperAnalysisRun, WhitepaperCodexAgentRun
from whitepapers.services.sweep import whitepaper_sweep_run
from whitepapers.tests.test_workflow import PAPER
from whitepapers.tests.workflow import comment_payload, envelope, issue_payload

pytestmark = [pytest.mark.django_db, pytest.mark.services]

SECRET = "webhook-secret"


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(
    body: bytes,
    *,
    event: str = "issues",
    delivery: str = "delivery-1",
    signature: str | None = None,
    content_type: str = "application/json",
):
    return APIClient().post(
        "/whitepapers/webhooks/github",
        data=body,
        content_type=content_type,
        HTTP_X_GITHUB_EVENT=event,
        HTTP_X_GITHUB_DELIVERY=delivery,
        HTTP_X_HUB_SIGNATURE_256=signed(body) if signature is None else signature,
    )


@pytest.fixture
def webhook(workflow, settings):
    settings.WHITEPAPER_GITHUB_WEBHOOK_SECRET = SECRET
    return workflow


def test_signed_webhook_is_stored_once_and_processed(webhook, django_capture_on_commit_callbacks):
    url = webhook.host.put("momentum.pdf", PAPER)
    body = json.dumps(issue_payload(url=url)).encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(body)
    assert response.status_code == 202
    assert response.json()["queued"] is True
    event = GithubIssueEvent.objects.get()
    assert (event.source, event.delivery_id, event.status, event.reason) == (
        "webhook",
        "delivery-1",
        "processed",
        "accepted",
    )
    run = WhitepaperAnalysisRun.objects.get()
    assert event.run_id == run.pk
    assert run.trigger_source == "github_issue_webhook"
    assert run.status == "agentrun_dispatched"

    # GitHub's redelivery keeps the delivery id: stored once, nothing processed again
    with django_capture_on_commit_callbacks(execute=True):
        again = deliver(body)
    assert again.status_code == 200
    assert again.json() == {"accepted": True, "duplicate": True, "delivery_id": "delivery-1"}
    assert GithubIssueEvent.objects.count() == 1
    assert len(webhook.jangar.submits()) == 1


def test_form_encoded_webhook(webhook, django_capture_on_commit_callbacks):
    url = webhook.host.put("momentum.pdf", PAPER)
    body = urlencode({"payload": json.dumps(issue_payload(url=url))}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 202
    assert WhitepaperAnalysisRun.objects.count() == 1


@pytest.mark.parametrize(
    "signature",
    ["", "sha256=" + "0" * 64, "sha1=abc", signed(b"another body")],
)
def test_bad_signatures_are_refused_and_store_nothing(webhook, signature):
    body = json.dumps(issue_payload(url="https://x.org/a.pdf")).encode()
    response = deliver(body, signature=signature)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert GithubIssueEvent.objects.count() == 0


def test_webhook_secret_wrong_on_our_side(webhook, settings):
    body = json.dumps(issue_payload(url="https://x.org/a.pdf")).encode()
    response = deliver(body, signature=signed(body, "someone-elses-secret"))
    assert response.status_code == 401
    settings.WHITEPAPER_GITHUB_WEBHOOK_SECRET = ""
    unconfigured = deliver(body)
    assert unconfigured.status_code == 503
    assert unconfigured.json()["error"]["code"] == "webhook_not_configured"
    assert GithubIssueEvent.objects.count() == 0


def test_ping_and_other_events_are_answered_not_stored(webhook):
    assert deliver(b'{"zen": "Keep it simple."}', event="ping").json() == {"pong": True}
    push = deliver(b'{"ref": "refs/heads/main"}', event="push")
    assert push.json() == {"accepted": False, "reason": "ignored_event", "event": "push"}
    assert GithubIssueEvent.objects.count() == 0


# -- Kafka ---------------------------------------------------------------------------------------


@pytest.fixture
def topic(kafka_bootstrap, settings):  # noqa: F811 - fixture
    name = f"wp-events-{uuid.uuid4().hex[:10]}"
    create_topics(kafka_bootstrap, (name, 1), (f"{name}.dlq", 1))
    settings.WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS = kafka_bootstrap
    settings.WHITEPAPER_KAFKA_TOPIC = name
    settings.WHITEPAPER_KAFKA_DLQ_TOPIC = f"{name}.dlq"
    settings.WHITEPAPER_KAFKA_GROUP_ID = f"wp-{uuid.uuid4().hex[:10]}"
    settings.WHITEPAPER_KAFKA_AUTO_OFFSET_RESET = "earliest"
    settings.WHITEPAPER_KAFKA_POLL_MS = 100
    return name


def produce(bootstrap: str, topic: str, *values: bytes) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(10) == 0


def test_kafka_events_are_stored_then_processed(
    workflow,
    topic,
    kafka_bootstrap,  # noqa: F811 - fixture
    django_capture_on_commit_callbacks,
):
    url = workflow.host.put("momentum.pdf", PAPER)
    produce(
        kafka_bootstrap,
        topic,
        json.dumps(envelope(issue_payload(url=url), delivery="k-1")).encode(),
        json.dumps(envelope({"ref": "refs/heads/main"}, event="push", delivery="k-2")).encode(),
        b"{not json",
        json.dumps(
            envelope(comment_payload(url=url, text="nice"), event="issue_comment", delivery="k-3")
        ).encode(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        stats = whitepaper_consumer(idle_exit_seconds=0.8).run()
    assert stats.messages == 4

    events = list(GithubIssueEvent.objects.order_by("source_offset"))
    assert [(e.source_offset, e.delivery_id, e.reason) for e in events] == [
        (0, "k-1", "accepted"),
        (3, "k-3", "comment_without_requeue_keyword"),
    ]
    run = WhitepaperAnalysisRun.objects.get()
    assert run.trigger_source == "github_issue_kafka"
    assert run.status == "agentrun_dispatched"
    letter = DeadLetterMessage.objects.get(consumer="whitepaper")
    assert (letter.reason, letter.offset) == ("invalid_json", 2)


def test_a_redelivered_kafka_batch_stores_nothing_twice(
    workflow, django_capture_on_commit_callbacks
):
    url = workflow.host.put("momentum.pdf", PAPER)
    value = json.dumps(envelope(issue_payload(url=url), delivery="k-1")).encode()
    batch = [RawMessage(topic="t", partition=0, offset=7, key=None, value=value)]
    handler = WhitepaperEventHandler()
    with django_capture_on_commit_callbacks(execute=True):
        assert handler.handle_batch(batch) == []
    with django_capture_on_commit_callbacks(execute=True):
        assert handler.handle_batch(batch) == []
    assert GithubIssueEvent.objects.count() == 1
    assert WhitepaperAnalysisRun.objects.count() == 1
    assert WhitepaperCodexAgentRun.objects.count() == 1


# -- sweep ---------------------------------------------------------------------------------------


def test_sweep_requeues_lost_processing_and_dispatch(
    workflow, settings, django_capture_on_commit_callbacks
):
    url = workflow.host.put("momentum.pdf", PAPER)
    settings.WHITEPAPER_AGENTRUN_AUTO_DISPATCH = False  # the dispatch task is "lost"
    from whitepapers.services.intake import github_event_record

    with django_capture_on_commit_callbacks(execute=False):  # the processing task is "lost"
        event = github_event_record(source="api", payload=issue_payload(url=url))
    old = timezone.now() - timedelta(seconds=settings.WHITEPAPER_SWEEP_AFTER_SECONDS + 5)
    GithubIssueEvent.objects.filter(pk=event.pk).update(received_at=old)
    assert whitepaper_sweep_run() == {"events": 1, "runs": 0, "exhausted": 0}
    run = WhitepaperAnalysisRun.objects.get()
    assert run.status == "queued"
    assert workflow.jangar.submits() == []

    settings.WHITEPAPER_AGENTRUN_AUTO_DISPATCH = True
    WhitepaperAnalysisRun.objects.filter(pk=run.pk).update(updated_at=old)
    assert whitepaper_sweep_run() == {"events": 0, "runs": 1, "exhausted": 0}
    run.refresh_from_db()
    assert run.status == "agentrun_dispatched"
    assert whitepaper_sweep_run() == {"events": 0, "runs": 0, "exhausted": 0}
    assert len(workflow.jangar.submits()) == 1


def test_a_reused_kafka_log_position_is_dead_lettered_not_dropped(
    workflow, django_capture_on_commit_callbacks
):
    """A stored log position that comes back with another event (the log handed the offset out
    again) is dead-lettered, not ignored by the unique position; the same record again is not."""
    url = workflow.host.put("momentum.pdf", PAPER)
    first = json.dumps(envelope(issue_payload(url=url), delivery="k-1")).encode()
    other = json.dumps(envelope(issue_payload(url=url, number=8), delivery="k-2")).encode()
    handler = WhitepaperEventHandler()
    stored = RawMessage(topic="t", partition=0, offset=7, key=None, value=first)
    reused = RawMessage(topic="t", partition=0, offset=7, key=None, value=other)
    with django_capture_on_commit_callbacks(execute=True):
        assert handler.handle_batch([stored]) == []
        assert handler.handle_batch([stored]) == []
        letters = handler.handle_batch([reused])

    assert [(letter.message, letter.reason, letter.error) for letter in letters] == [
        (
            reused,
            "offset_reused",
            "t[0]@7 holds a stored event with another payload: the log reused the offset",
        )
    ]
    assert GithubIssueEvent.objects.count() == 1
    assert WhitepaperAnalysisRun.objects.count() == 1
