"""Issue #18: a signed GitHub webhook body replayed under a new X-GitHub-Delivery is a duplicate,
and the webhook is throttled (scope `webhook`, WHITEPAPER_WEBHOOK_THROTTLE).

The signature proves the body came from GitHub once; the delivery id is a header the replayer
chooses. Deduplicating on the delivery id alone let anyone holding one signed body (a proxy log,
a leaked request) store and process it again and again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework import throttling
from rest_framework.test import APIClient

from tests.foundation.test_settings_behaviour_site import settings_from_env
from tests.schema_conformance import response_component, schema_errors
from whitepapers.models import GithubIssueEvent

pytestmark = pytest.mark.django_db

SECRET = "webhook-secret-for-replay-tests"  # noqa: S105
EVENT = {
    "action": "opened",
    "issue": {"number": 7, "title": "t", "body": "no marker", "user": {"login": "r"}},
    "repository": {"full_name": "proompteng/lab"},
    "sender": {"login": "r"},
}


@pytest.fixture
def webhook(settings, relaxed_throttles) -> None:
    settings.WHITEPAPER_WORKFLOW_ENABLED = True
    settings.WHITEPAPER_GITHUB_WEBHOOK_SECRET = SECRET


def _post(
    body: bytes, *, delivery: str, event: str = "issues", secret: str = SECRET, addr: str = ""
) -> Any:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers: dict[str, Any] = {
        "HTTP_X_HUB_SIGNATURE_256": f"sha256={signature}",
        "HTTP_X_GITHUB_EVENT": event,
        "HTTP_X_GITHUB_DELIVERY": delivery,
    }
    if addr:
        headers["REMOTE_ADDR"] = addr
    client: Any = APIClient()
    return client.post(
        "/whitepapers/webhooks/github", body, content_type="application/json", **headers
    )


def test_a_signed_body_replayed_under_a_new_delivery_id_is_a_duplicate(
    webhook, django_capture_on_commit_callbacks
):
    body = json.dumps(EVENT).encode()
    with django_capture_on_commit_callbacks() as first_queued:
        first = _post(body, delivery="delivery-1")
    assert first.status_code == 202, first.content
    assert len(first_queued) == 1  # processing queued after the commit
    event = GithubIssueEvent.objects.get()

    for delivery in ("delivery-2", "delivery-3"):
        with django_capture_on_commit_callbacks() as queued:
            replay = _post(body, delivery=delivery)
        assert replay.status_code == 200, replay.content
        assert replay.json() == {"accepted": True, "duplicate": True, "delivery_id": delivery}
        assert queued == [], "a replay queued processing"
    assert list(GithubIssueEvent.objects.values_list("pk", "delivery_id")) == [
        (event.pk, "delivery-1")
    ]
    event.refresh_from_db()
    assert event.body_sha256 == hashlib.sha256(body).hexdigest()


def test_github_redelivery_and_new_events_behave_as_before(webhook):
    body = json.dumps(EVENT).encode()
    assert _post(body, delivery="d-1").status_code == 202
    # GitHub's own redelivery: same delivery id, same body
    assert _post(body, delivery="d-1").json()["duplicate"] is True
    # a new event (another body) under a new delivery id is stored
    edited = json.dumps({**EVENT, "action": "edited"}).encode()
    assert _post(edited, delivery="d-2").status_code == 202
    assert GithubIssueEvent.objects.count() == 2


def test_body_dedupe_is_for_webhook_events_only(
    webhook, settings, django_capture_on_commit_callbacks
):
    """The same payload through the control API (an operator's manual replay) is stored: only
    webhook events carry and are deduplicated on a body hash."""
    settings.WHITEPAPER_WORKFLOW_API_TOKEN = "wf-token-for-replay-tests"  # noqa: S105
    assert _post(json.dumps(EVENT).encode(), delivery="d-1").status_code == 202
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer wf-token-for-replay-tests")
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/whitepapers/events/github-issue",
                EVENT,
                format="json",
                HTTP_X_GITHUB_EVENT="issues",
            )
        assert response.status_code == 200, response.content
    assert list(GithubIssueEvent.objects.order_by("pk").values_list("source", "body_sha256")) == [
        ("webhook", hashlib.sha256(json.dumps(EVENT).encode()).hexdigest()),
        ("api", ""),
        ("api", ""),
    ]


def _throttle_rates(monkeypatch: pytest.MonkeyPatch, value: str) -> dict[str, str]:
    """DRF's rates as settings.py builds them with WHITEPAPER_WEBHOOK_THROTTLE=value."""
    module = settings_from_env(monkeypatch, {"WHITEPAPER_WEBHOOK_THROTTLE": value})
    return dict(module["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"])


def test_the_webhook_is_throttled_by_whitepaper_webhook_throttle(webhook, monkeypatch):
    rates = _throttle_rates(monkeypatch, "3/min")
    assert rates["webhook"] == "3/min"
    assert _throttle_rates(monkeypatch, "120/min")["webhook"] == "120/min"
    monkeypatch.setattr(throttling.ScopedRateThrottle, "THROTTLE_RATES", rates)
    cache.clear()
    ping = json.dumps({"zen": "x"}).encode()
    answers = [_post(ping, delivery=f"p-{i}", event="ping").status_code for i in range(3)]
    assert answers == [200, 200, 200]

    # the fourth request in the minute: refused before anything is checked or stored
    refused = _post(json.dumps(EVENT).encode(), delivery="after-limit")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert "Retry-After" in refused.headers
    unsigned = APIClient().post("/whitepapers/webhooks/github", b"{}", content_type="text/plain")
    assert unsigned.status_code == 429
    assert GithubIssueEvent.objects.count() == 0

    # counted per client address: another address still gets in
    other = _post(json.dumps(EVENT).encode(), delivery="other-addr", addr="10.9.8.7")
    assert other.status_code == 202, other.content
    cache.clear()


def test_an_invalid_throttle_rate_stops_startup(monkeypatch):
    from torghut_site.env import ConfigError

    for value in ("lots", "0/min", "10/fortnight", "10"):
        with pytest.raises(ConfigError) as caught:
            settings_from_env(monkeypatch, {"WHITEPAPER_WEBHOOK_THROTTLE": value})
        assert any(
            problem.startswith(f"WHITEPAPER_WEBHOOK_THROTTLE={value!r} is not a rate")
            for problem in caught.value.problems
        ), caught.value.problems


def test_every_webhook_answer_matches_its_schema(webhook):
    """The four success answers each match the schema's exact object for their status code
    (closed objects: an unnamed key fails), and only that one of the 200 forms."""
    body = json.dumps(EVENT).encode()
    answers = {
        "queued": _post(body, delivery="d-1"),
        "duplicate": _post(body, delivery="d-1"),
        "pong": _post(b"{}", delivery="d-2", event="ping"),
        "ignored": _post(b"{}", delivery="d-3", event="push"),
    }
    assert {name: r.status_code for name, r in answers.items()} == {
        "queued": 202,
        "duplicate": 200,
        "pong": 200,
        "ignored": 200,
    }
    assert response_component("/whitepapers/webhooks/github", "post", "202") == "WebhookQueued"
    assert response_component("/whitepapers/webhooks/github", "post") == "GithubWebhookAnswer"
    assert schema_errors(answers["queued"].json(), "WebhookQueued") == []
    forms = {"duplicate": "WebhookDuplicate", "pong": "WebhookPong", "ignored": "WebhookIgnored"}
    for name, component in forms.items():
        answer = answers[name].json()
        assert schema_errors(answer, "GithubWebhookAnswer") == [], name
        assert [other for other in forms.values() if not schema_errors(answer, other)] == [
            component
        ]
    assert schema_errors({**answers["queued"].json(), "extra": 1}, "WebhookQueued") == [
        ": Additional properties are not allowed ('extra' was unexpected)"
    ]
