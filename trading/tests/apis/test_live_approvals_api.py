"""`/trading/live-approvals`: list, request, approve, revoke. The acting user is the API token's
user (a body field naming someone else is ignored); refusals use the one error format and write
nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import paper_lane, staff_user
from torghut_site.auth import api_token_issue
from trading.models import LiveApproval, SafetyEvent
from trading.selectors.safety import live_approval_active

pytestmark = pytest.mark.django_db

LIST = "/trading/live-approvals"


@pytest.fixture(autouse=True)
def live_lane(settings):
    settings.TRADING_LANES = [paper_lane("live-1", mode="live")]
    settings.TRADING_LIVE_APPROVAL_MAX_TTL_HOURS = 24


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=user, name='t').key}")
    return client


@pytest.fixture
def rita():
    return staff_user("rita", "add_liveapproval")


@pytest.fixture
def omar():
    return staff_user("omar", "approve_liveapproval")


def error(response: Any, code: str, message: str) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "details": None},
        "request_id": response["X-Request-ID"],
    }


def state() -> tuple[list[Any], int]:
    return (
        list(LiveApproval.objects.order_by("pk").values_list("pk", "status", "approved_by")),
        SafetyEvent.objects.count(),
    )


def iso(value: Any) -> str:
    return str(value.isoformat()).replace("+00:00", "Z")


def test_request_approve_list_revoke_as_the_token_users(rita, omar):
    now = timezone.now()
    # the requester is the caller: a body naming another is refused, not read
    impostor = client_for(rita).post(
        LIST,
        {"account_label": "live-1", "reason": "go live", "ttl_hours": 2, "requested_by": "x"},
        format="json",
    )
    assert (impostor.status_code, impostor.json()["error"]["details"]) == (
        400,
        {"requested_by": ["unknown field"]},
    )
    assert LiveApproval.objects.count() == 0
    with time_machine.travel(now, tick=False):
        response = client_for(rita).post(
            LIST, {"account_label": "live-1", "reason": "go live", "ttl_hours": 2}, format="json"
        )
    assert response.status_code == 201, response.content
    approval = LiveApproval.objects.get()
    assert response.json() == {
        "id": approval.pk,
        "account_label": "live-1",
        "status": "requested",
        "state": "requested",
        "reason": "go live",
        "ttl_seconds": 7200,
        "requested_by": "rita",
        "requested_at": iso(now),
        "request_expires_at": iso(now + timedelta(hours=2)),
        "approved_by": None,
        "approved_at": None,
        "expires_at": None,
        "revoked_by": None,
        "revoked_at": None,
    }
    approve = f"{LIST}/{approval.pk}/approve"
    with time_machine.travel(now + timedelta(minutes=1), tick=False):
        response = client_for(omar).post(approve, {"reason": "checked"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["state"], body["approved_by"]) == ("approved", "approved", "omar")
    assert body["expires_at"] == iso(now + timedelta(hours=2, minutes=1))
    assert live_approval_active("live-1") == approval
    listed = client_for(rita).get(LIST).json()
    assert listed == {"next": None, "results": [body]}
    response = client_for(omar).post(
        f"{LIST}/{approval.pk}/revoke", {"reason": "pause"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["revoked_by"]) == ("revoked", "omar")
    assert live_approval_active("live-1") is None
    events = SafetyEvent.objects.order_by("pk").values_list("kind", "actor_id", "reason")
    assert list(events) == [
        ("live_approval_requested", rita.pk, "go live"),
        ("live_approval_granted", omar.pk, "checked"),
        ("live_approval_revoked", omar.pk, "pause"),
    ]


def request_one(rita: Any) -> LiveApproval:
    from trading.services.live_approvals import live_approval_request

    return live_approval_request(
        account_label="live-1", actor=rita, reason="go live", ttl=timedelta(hours=1)
    )


def test_the_requester_cannot_approve_their_own_request_over_the_api():
    both = staff_user("both", "add_liveapproval", "approve_liveapproval")
    approval = request_one(both)
    before = state()
    response = client_for(both).post(
        f"{LIST}/{approval.pk}/approve", {"reason": "me"}, format="json"
    )
    assert response.status_code == 403
    assert response.json() == error(
        response,
        "same_person",
        f"both requested live approval {approval.pk}: a different person must approve it",
    )
    assert state() == before


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (
            {"account_label": "paper", "reason": "x", "ttl_hours": 1},
            400,
            "unknown_lane",
            "'paper' is not a configured live lane (live lanes: live-1)",
        ),
        (
            {"account_label": "live-1", "reason": "x", "ttl_hours": 25},
            400,
            "ttl_above_max",
            "a TTL of 1 day, 1:00:00 is above TRADING_LIVE_APPROVAL_MAX_TTL_HOURS=24",
        ),
    ],
)
def test_request_refusals(rita, body, status, code, message):
    response = client_for(rita).post(LIST, body, format="json")
    assert response.status_code == status
    assert response.json() == error(response, code, message)
    assert state() == ([], 0)


@pytest.mark.parametrize(
    "body",
    [
        {"account_label": "live-1", "reason": "  ", "ttl_hours": 1},
        {"account_label": "live-1", "reason": "x", "ttl_hours": 0},
        {"account_label": "live-1", "reason": "x", "ttl_hours": 8785},
        {"account_label": "live-1", "reason": "x"},
    ],
)
def test_invalid_request_bodies_are_400(rita, body):
    response = client_for(rita).post(LIST, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert state() == ([], 0)


def test_permissions_are_checked_per_action(rita, omar):
    approval = request_one(rita)
    before = state()
    nobody = staff_user("nobody")
    for client, method, path, body in [
        (client_for(nobody), "get", LIST, None),
        (
            client_for(omar),
            "post",
            LIST,
            {"account_label": "live-1", "reason": "x", "ttl_hours": 1},
        ),
        (client_for(rita), "post", f"{LIST}/{approval.pk}/approve", {"reason": "x"}),
        (client_for(rita), "post", f"{LIST}/{approval.pk}/revoke", {"reason": "x"}),
    ]:
        response = getattr(client, method)(path, body, format="json")
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "permission_denied"
    assert state() == before


def test_a_user_with_the_permission_but_not_staff_is_refused(rita):
    approval = request_one(rita)
    before = state()
    outsider = staff_user("outsider", "approve_liveapproval", is_staff=False)
    response = client_for(outsider).post(
        f"{LIST}/{approval.pk}/approve", {"reason": "x"}, format="json"
    )
    assert response.status_code == 403
    assert response.json() == error(
        response,
        "not_staff",
        "outsider is not an active staff user: live approvals need staff users",
    )
    assert state() == before


def test_an_expired_request_approve_twice_and_revoke_twice_are_409(rita, omar):
    expired = request_one(rita)
    before = state()
    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1)):
        response = client_for(omar).post(
            f"{LIST}/{expired.pk}/approve", {"reason": "late"}, format="json"
        )
    assert (response.status_code, response.json()["error"]["code"]) == (409, "request_expired")
    assert state() == before
    approval = request_one(rita)
    client = client_for(omar)
    assert (
        client.post(f"{LIST}/{approval.pk}/approve", {"reason": "a"}, format="json").status_code
        == 200
    )
    before = state()
    response = client.post(f"{LIST}/{approval.pk}/approve", {"reason": "b"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "not_requested")
    assert state() == before
    assert (
        client.post(f"{LIST}/{approval.pk}/revoke", {"reason": "c"}, format="json").status_code
        == 200
    )
    before = state()
    response = client.post(f"{LIST}/{approval.pk}/revoke", {"reason": "d"}, format="json")
    assert response.status_code == 409
    assert response.json() == error(
        response, "already_revoked", f"live approval {approval.pk} is already revoked"
    )
    assert state() == before


@pytest.mark.parametrize("raw", ["0", "99999", "abc", "9223372036854775808", "-1", "1.5"])
def test_unknown_or_malformed_ids_are_404_in_the_error_format(omar, raw):
    response = client_for(omar).post(f"{LIST}/{raw}/approve", {"reason": "x"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_list_filters_and_paginates(rita, omar):
    first = request_one(rita)
    second = request_one(rita)
    client = client_for(omar)
    client.post(f"{LIST}/{second.pk}/approve", {"reason": "ok"}, format="json")
    reader = client_for(staff_user("viewer", "view_liveapproval"))
    body = reader.get(LIST, {"status": "requested"}).json()
    assert [row["id"] for row in body["results"]] == [first.pk]
    body = reader.get(LIST, {"limit": 1}).json()
    assert [row["id"] for row in body["results"]] == [second.pk]
    assert body["next"] == f"http://testserver{LIST}?limit=1&after_id={second.pk}"
    last = reader.get(body["next"]).json()
    assert ([row["id"] for row in last["results"]], last["next"]) == ([first.pk], None)
    assert reader.get(LIST, {"account_label": "live-2"}).json() == {"next": None, "results": []}
    response = reader.get(LIST, {"status": "granted"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("query", "details"),
    [
        ({"limit": "501"}, {"limit": ["Ensure this value is less than or equal to 500."]}),
        ({"limit": ""}, {"limit": ["may not be empty"]}),
        ({"after_id": "1.0"}, {"after_id": ["A valid integer is required."]}),
        ({"account_label": "live 1"}, {"account_label": ["This value does not match the required pattern."]}),
        ({"offset": "5", "status": ["requested", "approved"]}, {"status": ["may be given once"]}),
    ],
)  # fmt: skip
def test_list_query_is_checked_exactly(rita, query, details):
    request_one(rita)
    reader = client_for(staff_user("viewer", "view_liveapproval"))
    response = reader.get(LIST, query)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_request",
        "message": "The request is not valid.",
        "details": details,
    }
