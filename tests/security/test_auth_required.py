"""Every state-changing route refuses a caller without credentials, and writes nothing.

The routes come from the URL resolver, not from a list: a new endpoint is checked the day it is
added. For each POST/PUT/PATCH/DELETE handler of a DRF view, a request that would write if it
were let in (a plausible body, an existing run) is sent without credentials, with a wrong token
and, for the privileged endpoints, as a signed-in user without the permission; the answer must be
401/403 and no table may have gained or lost a row. A positive control with the right
credentials shows that the same request does get in. Admin pages (plain Django views) must send
an anonymous POST to the login page, also without writing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient
from rest_framework.views import APIView

from torghut_site.auth import api_token_issue
from trading.models import SafetyEvent, SafetyState
from whitepapers.models import (
    DocumentSource,
    GithubIssueEvent,
    WhitepaperAnalysisRun,
    WhitepaperDocument,
)
from whitepapers.run_tokens import run_token

pytestmark = pytest.mark.django_db

UNSAFE = ("post", "put", "patch", "delete")
RUN_ID = "wp-a0700000000000000000000a"
WORKFLOW_TOKEN = "wf-token-for-auth-tests-0123456789"  # noqa: S105
WEBHOOK_SECRET = "webhook-secret-for-auth-tests"  # noqa: S105

# The only state-changing endpoint open to anonymous callers: GitHub signs its body instead.
SIGNED_INTAKES = {"whitepapers/webhooks/github"}
# Endpoints the workflow token (WHITEPAPER_WORKFLOW_API_TOKEN) also opens.
WORKFLOW_TOKEN_ROUTES = {
    "whitepapers/events/github-issue",
    "whitepapers/runs/<str:run_id>/dispatch-agentrun",
}
# Endpoints the run's own token (whitepapers.run_tokens) opens, for that run only.
RUN_TOKEN_ROUTES = {"whitepapers/runs/<str:run_id>/finalize"}
# A request that writes if it gets in.
BODIES: dict[str, dict[str, Any]] = {
    "trading/kill-switch": {"engaged": True, "reason": "auth test"},
    "trading/emergency-stop/clear": {"reason": "auth test"},
    "trading/live-approvals": {"account_label": "live-auth", "reason": "auth test", "ttl_hours": 1},
    "whitepapers/events/github-issue": {
        "action": "opened",
        "issue": {"number": 7, "title": "t", "body": "no marker", "user": {"login": "r"}},
        "repository": {"full_name": "proompteng/lab"},
        "sender": {"login": "r"},
    },
    "whitepapers/runs/<str:run_id>/finalize": {
        "status": "completed",
        "synthesis": {"executive_summary": "written only by an authorised caller"},
    },
}
SAMPLE_ARGS = {
    "run_id": RUN_ID,
    "object_id": "1",
    "content_type_id": "1",
    "id": "1",
    "app_label": "trading",
    "url": "nope/",
}


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def _url(route: str) -> str:
    """A concrete path for a route: converters and named groups get sample values."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: SAMPLE_ARGS.get(m.group(1), "x"), route)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: SAMPLE_ARGS.get(m.group(1), "x"), path)
    return "/" + path.replace("^", "").replace("$", "")


ROUTES = list(_walk(get_resolver().url_patterns))
API_WRITES = [
    pytest.param(route, method, id=f"{method.upper()} /{route}")
    for route, callback in ROUTES
    if isinstance(view := getattr(callback, "view_class", None), type) and issubclass(view, APIView)
    for method in UNSAFE
    if hasattr(view, method)
]
ADMIN_ROUTES = [
    pytest.param(route, id=f"/{route}")
    for route, _ in ROUTES
    # the login page takes anonymous POSTs by design; logout only ends a session
    if route.startswith("admin/") and route not in ("admin/login/", "admin/logout/")
]


def _row_counts() -> dict[str, int]:
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    }


def _state() -> tuple[Any, ...]:
    safety = SafetyState.objects.filter(scope="global").values_list(
        "kill_switch_engaged", "emergency_stop_active"
    )
    run = WhitepaperAnalysisRun.objects.values_list("status", "dispatch_attempt").get(run_id=RUN_ID)
    return (_row_counts(), list(safety), run)


@pytest.fixture
def world(settings, relaxed_throttles) -> None:
    """An active emergency stop (so clearing it would write), a queued run and a live lane (so
    a live-approval request would write)."""
    settings.TRADING_LANES = [
        *settings.TRADING_LANES,
        {**settings.TRADING_LANES[0], "label": "live-auth", "mode": "live"},
    ]
    settings.WHITEPAPER_WORKFLOW_ENABLED = True
    settings.WHITEPAPER_WORKFLOW_API_TOKEN = WORKFLOW_TOKEN
    settings.WHITEPAPER_GITHUB_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.WHITEPAPER_AGENTRUN_AUTO_DISPATCH = False
    settings.WHITEPAPER_AGENTRUN_SUBMIT_URL = "http://127.0.0.1:9/v1/agent-runs"
    settings.WHITEPAPER_AGENTRUN_MAX_ATTEMPTS = 1
    SafetyState.objects.update_or_create(
        scope="global",
        defaults={
            "emergency_stop_active": True,
            "emergency_stop_reasons": ["auth_test"],
            "emergency_stop_triggered_at": timezone.now(),
        },
    )
    document = WhitepaperDocument.objects.create(
        document_key="a07" + "0" * 37,
        source=DocumentSource.GITHUB_ISSUE,
        source_identifier="proompteng/lab#7",
    )
    WhitepaperAnalysisRun.objects.create(run_id=RUN_ID, document=document)


def _send(client: Any, method: str, route: str, **extra: Any) -> Any:
    body = BODIES.get(route, {})
    return getattr(client, method)(_url(route), body, format="json", **extra)


@pytest.mark.parametrize(("route", "method"), API_WRITES)
def test_api_write_refuses_missing_or_wrong_credentials(world, route, method):
    client = APIClient()
    attempts = {
        "no credentials": {},
        "unknown API token": {"HTTP_AUTHORIZATION": "Token tg_not-a-real-token"},
        "wrong bearer token": {"HTTP_AUTHORIZATION": "Bearer wrong-token"},
        "wrong x-whitepaper-token": {"HTTP_X_WHITEPAPER_TOKEN": "wrong-token"},
    }
    for label, headers in attempts.items():
        before = _state()
        response = _send(client, method, route, **headers)
        if route in SIGNED_INTAKES:
            # no X-Hub-Signature-256: refused as unsigned whatever else is presented
            assert response.status_code == 401, (label, response.content)
            assert response.json()["error"]["code"] == "invalid_signature"
        else:
            assert response.status_code in (401, 403), (label, response.content)
        assert _state() == before, f"{method.upper()} /{route} wrote with {label}"


@pytest.mark.parametrize(("route", "method"), API_WRITES)
def test_api_write_refuses_a_user_without_the_permission(world, route, method):
    if route in SIGNED_INTAKES:
        pytest.skip("the webhook has no users: its signature is checked below")
    user = get_user_model().objects.create_user("no-perms", password="pw-no-perms-123")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=user, name='t').key}")
    before = _state()
    response = _send(client, method, route)
    # an endpoint every signed-in user may write to would need its own entry and reason here
    assert response.status_code == 403, response.content
    assert _state() == before


@pytest.mark.parametrize(("route", "method"), API_WRITES)
def test_api_write_gets_in_with_the_right_credentials(world, route, method):
    """The positive control: the very request refused above is accepted when authorised."""
    client = APIClient()
    if route in SIGNED_INTAKES:
        body = json.dumps(BODIES["whitepapers/events/github-issue"]).encode()
        signature = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        response = getattr(client, method)(
            _url(route),
            body,
            content_type="application/json",
            HTTP_X_HUB_SIGNATURE_256=f"sha256={signature}",
            HTTP_X_GITHUB_EVENT="issues",
            HTTP_X_GITHUB_DELIVERY="auth-test-1",
        )
        assert response.status_code == 202, response.content
        assert GithubIssueEvent.objects.filter(delivery_id="auth-test-1").exists()
        return
    if route in WORKFLOW_TOKEN_ROUTES:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {WORKFLOW_TOKEN}")
    elif route in RUN_TOKEN_ROUTES:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {run_token(RUN_ID, 1)}")
    else:
        admin = get_user_model().objects.create_superuser("root", password="pw-root-12345")
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=admin, name='t').key}")
    before = _state()
    response = _send(client, method, route)
    if route not in BODIES:
        # no known request that writes (dispatch: the run has no stored PDF, 409; a new route):
        # the credentials are accepted, whatever the request's own fate
        assert response.status_code not in (401, 403), response.content
        return
    assert response.status_code in (200, 201, 202), response.content
    assert _state() != before, f"{method.upper()} /{route} wrote nothing when authorised"


def test_state_changing_api_views_are_never_open_to_anonymous_callers():
    for route, callback in ROUTES:
        view = getattr(callback, "view_class", None)
        if not (isinstance(view, type) and issubclass(view, APIView)):
            continue
        if not any(hasattr(view, method) for method in UNSAFE) or route in SIGNED_INTAKES:
            continue
        assert AllowAny not in view.permission_classes, route
        assert view.authentication_classes, route


@pytest.mark.parametrize("route", ADMIN_ROUTES)
def test_admin_post_without_login_goes_to_the_login_page(world, route):
    before = _state()
    response = Client().post(_url(route), {"action": "kill_switch_on", "reason": "x"})
    assert _state() == before
    assert response.status_code == 302, response.status_code
    assert response["Location"].startswith("/admin/login/"), response["Location"]


def test_the_webhook_refuses_a_wrong_signature_and_writes_nothing(world):
    body = json.dumps(BODIES["whitepapers/events/github-issue"]).encode()
    wrong = hmac.new(b"another-secret", body, hashlib.sha256).hexdigest()
    before = _state()
    for signature in (f"sha256={wrong}", wrong, "sha1=" + "0" * 40, ""):
        response = APIClient().post(
            "/whitepapers/webhooks/github",
            body,
            content_type="application/json",
            HTTP_X_HUB_SIGNATURE_256=signature,
            HTTP_X_GITHUB_EVENT="issues",
            HTTP_X_GITHUB_DELIVERY="auth-test-2",
        )
        assert response.status_code == 401, signature
    assert _state() == before


def test_safety_events_written_by_the_api_name_the_caller(world):
    """The positive control's write is attributable: the audit row names the token's user."""
    admin = get_user_model().objects.create_superuser("sec-root", password="pw-root-12345")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=admin, name='t').key}")
    client.post("/trading/kill-switch", {"engaged": True, "reason": "drill"}, format="json")
    event = SafetyEvent.objects.latest("pk")
    assert (event.actor_id, event.reason) == (admin.pk, "drill")
