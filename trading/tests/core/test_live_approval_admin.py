"""The LiveApproval admin: "Add" records a request by the signed-in user; the actions approve
and revoke through the services, with a message for each refusal and nothing written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from tests.conftest import paper_lane, staff_user
from trading.models import LiveApproval, SafetyEvent
from trading.selectors.safety import live_approval_active
from trading.services.live_approvals import live_approval_request

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/trading/liveapproval/"
ADD = "/admin/trading/liveapproval/add/"


@pytest.fixture(autouse=True)
def live_lane(settings):
    settings.TRADING_LANES = [paper_lane("paper"), paper_lane("live-1", mode="live")]
    settings.TRADING_LIVE_APPROVAL_MAX_TTL_HOURS = 24


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def rita():
    return staff_user("rita", "add_liveapproval")


@pytest.fixture
def omar():
    return staff_user("omar", "approve_liveapproval")


def state() -> tuple[list[Any], int]:
    return (
        list(LiveApproval.objects.order_by("pk").values_list("pk", "status", "approved_by")),
        SafetyEvent.objects.count(),
    )


def texts(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def act(client: Client, action: str, ids: list[int], reason: str) -> Any:
    return client.post(
        CHANGELIST,
        {"action": action, "index": 0, "_selected_action": ids, "reason": reason},
        follow=True,
    )


def test_add_records_a_request_by_the_signed_in_user(rita):
    client = logged_in(rita)
    page = client.get(ADD)
    assert page.status_code == 200
    assert list(page.context["form"].fields["account_label"].choices) == [("live-1", "live-1")]
    response = client.post(
        ADD,
        {"account_label": "live-1", "reason": "ramp", "ttl_hours": 3, "requested_by": "999"},
        follow=True,
    )
    approval = LiveApproval.objects.get()
    assert response.redirect_chain == [(CHANGELIST, 302)]
    assert (approval.status, approval.requested_by_id, approval.ttl, approval.reason) == (
        "requested",
        rita.pk,
        timedelta(hours=3),
        "ramp",
    )
    assert texts(response) == [
        f"Live approval {approval.pk} requested for live-1: another person must approve it"
    ]
    assert SafetyEvent.objects.get().kind == "live_approval_requested"


def test_add_refusals_write_nothing(rita, settings):
    client = logged_in(rita)
    response = client.post(ADD, {"account_label": "live-1", "reason": "x", "ttl_hours": 25})
    assert response.status_code == 200
    assert texts(response) == [
        "a TTL of 1 day, 1:00:00 is above TRADING_LIVE_APPROVAL_MAX_TTL_HOURS=24"
    ]
    response = client.post(ADD, {"account_label": "paper", "reason": "x", "ttl_hours": 1})
    assert response.status_code == 200
    assert "account_label" in response.context["form"].errors  # not a live lane: not offered
    assert state() == ([], 0)


def test_add_needs_the_add_permission(omar):
    client = logged_in(omar)
    assert client.get(ADD).status_code == 403
    response = client.post(ADD, {"account_label": "live-1", "reason": "x", "ttl_hours": 1})
    assert response.status_code == 403
    assert state() == ([], 0)


def test_approve_and_revoke_actions(rita, omar):
    approval = live_approval_request(
        account_label="live-1", actor=rita, reason="ramp", ttl=timedelta(hours=1)
    )
    client = logged_in(omar)
    page = client.get(CHANGELIST)
    assert set(page.context["action_form"].fields["action"].choices) >= {
        ("approve_requests", "Approve selected requests"),
        ("revoke_approvals", "Revoke selected approvals"),
    }
    response = act(client, "approve_requests", [approval.pk], "second look")
    assert texts(response) == [f"live approval {approval.pk} approved"]
    assert live_approval_active("live-1") == approval
    granted = SafetyEvent.objects.get(kind="live_approval_granted")
    assert (granted.actor_id, granted.reason) == (omar.pk, "second look")
    response = act(client, "revoke_approvals", [approval.pk], "pause")
    assert texts(response) == [f"live approval {approval.pk} revoked"]
    assert live_approval_active("live-1") is None
    revoked = SafetyEvent.objects.get(kind="live_approval_revoked")
    assert (revoked.actor_id, revoked.reason) == (omar.pk, "pause")


def test_action_refusals_are_messages_and_write_nothing(rita, omar):
    approval = live_approval_request(
        account_label="live-1", actor=rita, reason="ramp", ttl=timedelta(hours=1)
    )
    both = staff_user("both", "add_liveapproval", "approve_liveapproval")
    own = live_approval_request(
        account_label="live-1", actor=both, reason="mine", ttl=timedelta(hours=1)
    )
    before = state()
    response = act(logged_in(both), "approve_requests", [own.pk], "me")
    assert texts(response) == [
        f"live approval {own.pk}: both requested live approval {own.pk}: "
        "a different person must approve it"
    ]
    response = act(logged_in(omar), "approve_requests", [approval.pk], "")
    assert texts(response) == [f"live approval {approval.pk}: a reason is required"]
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        response = act(logged_in(omar), "approve_requests", [approval.pk], "late")
    assert texts(response) == [
        f"live approval {approval.pk}: live approval {approval.pk} was requested at "
        f"{approval.requested_at.isoformat()} with a TTL of 1:00:00: it expired unapproved; "
        "request it again"
    ]
    assert state() == before


def test_approve_twice_and_revoke_twice_give_messages(rita, omar):
    approval = live_approval_request(
        account_label="live-1", actor=rita, reason="ramp", ttl=timedelta(hours=1)
    )
    client = logged_in(omar)
    act(client, "approve_requests", [approval.pk], "ok")
    before = state()
    response = act(client, "approve_requests", [approval.pk], "again")
    assert texts(response) == [
        f"live approval {approval.pk}: live approval {approval.pk} is approved: "
        "only a request can be approved"
    ]
    assert state() == before
    act(client, "revoke_approvals", [approval.pk], "stop")
    before = state()
    response = act(client, "revoke_approvals", [approval.pk], "stop again")
    assert texts(response) == [
        f"live approval {approval.pk}: live approval {approval.pk} is already revoked"
    ]
    assert state() == before


def test_actions_are_offered_only_with_their_permission(rita):
    approval = live_approval_request(
        account_label="live-1", actor=rita, reason="ramp", ttl=timedelta(hours=1)
    )
    client = logged_in(rita)  # may request, may not approve or revoke
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert page.context["action_form"] is None  # no action offered
    before = state()
    act(client, "approve_requests", [approval.pk], "sneaky")
    act(client, "revoke_approvals", [approval.pk], "sneaky")
    assert state() == before


def test_rows_cannot_be_edited_or_deleted(rita, omar):
    approval = live_approval_request(
        account_label="live-1", actor=rita, reason="ramp", ttl=timedelta(hours=1)
    )
    client = logged_in(staff_user("boss", "change_liveapproval", "delete_liveapproval"))
    response = client.post(
        f"{CHANGELIST}{approval.pk}/change/", {"status": "approved", "reason": "edited"}
    )
    assert response.status_code == 403
    assert client.post(f"{CHANGELIST}{approval.pk}/delete/", {"post": "yes"}).status_code == 403
    approval.refresh_from_db()
    assert (approval.status, approval.reason) == ("requested", "ramp")


def test_a_non_staff_user_with_the_permissions_never_reaches_the_admin(rita):
    approval = live_approval_request(
        account_label="live-1", actor=rita, reason="ramp", ttl=timedelta(hours=1)
    )
    outsider = staff_user("outsider", "add_liveapproval", "approve_liveapproval", is_staff=False)
    client = logged_in(outsider)
    before = state()
    response = act(client, "approve_requests", [approval.pk], "x")
    assert response.redirect_chain[0][0].startswith("/admin/login/")
    response = client.post(ADD, {"account_label": "live-1", "reason": "x", "ttl_hours": 1})
    assert (response.status_code, response["Location"][:13]) == (302, "/admin/login/")
    assert state() == before
