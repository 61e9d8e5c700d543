"""Two-person live approvals: the request → approve → revoke services, their refusals (each
writes nothing), the database constraints behind them and the firewall's read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from tests.conftest import paper_lane, staff_user
from trading.models import LiveApproval, SafetyEvent
from trading.selectors.live_approvals import live_approval_state
from trading.selectors.safety import live_approval_active
from trading.services.live_approvals import (
    LiveApprovalError,
    live_approval_approve,
    live_approval_request,
    live_approval_revoke,
)

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def live_lanes(settings):
    settings.TRADING_LANES = [paper_lane("paper"), paper_lane("live-1", mode="live")]
    settings.TRADING_LIVE_APPROVAL_MAX_TTL_HOURS = 24


@pytest.fixture
def requester():
    return staff_user("rita", "add_liveapproval")


@pytest.fixture
def approver():
    return staff_user("omar", "approve_liveapproval")


@pytest.fixture
def request_row(requester):
    return live_approval_request(
        account_label="live-1", actor=requester, reason="ramp to live", ttl=HOUR
    )


def written() -> tuple[list[Any], list[Any]]:
    """Every approval row and safety event, to compare before and after a refusal."""
    rows = list(
        LiveApproval.objects.order_by("pk").values_list(
            "pk", "status", "approved_by", "approved_at", "expires_at", "revoked_at", "revoked_by"
        )
    )
    events = list(SafetyEvent.objects.order_by("pk").values_list("pk", "kind"))
    return rows, events


def refused(code: str, call, *args, **kwargs) -> str:
    before = written()
    with pytest.raises(LiveApprovalError) as exc:
        call(*args, **kwargs)
    assert exc.value.code == code
    assert written() == before
    return exc.value.message


def test_request_approve_revoke_lifecycle_with_audit_events(requester, approver):
    approval = live_approval_request(
        account_label="live-1", actor=requester, reason=" ramp to live ", ttl=2 * HOUR
    )
    assert (approval.status, approval.requested_by_id, approval.reason, approval.ttl) == (
        "requested",
        requester.pk,
        "ramp to live",
        2 * HOUR,
    )
    assert (approval.approved_by_id, approval.approved_at, approval.expires_at) == (
        None,
        None,
        None,
    )
    assert live_approval_active("live-1") is None
    with time_machine.travel(timezone.now() + timedelta(minutes=30), tick=False):
        approved = live_approval_approve(approval_id=approval.pk, actor=approver, reason="ok")
        assert (approved.status, approved.approved_by_id) == ("approved", approver.pk)
        assert approved.approved_at == timezone.now()
        assert approved.expires_at == timezone.now() + 2 * HOUR  # the TTL counts from approval
    assert live_approval_active("live-1") == approved
    assert live_approval_active("paper") is None
    revoked = live_approval_revoke(approval_id=approval.pk, actor=approver, reason="pause")
    assert (revoked.status, revoked.revoked_by_id) == ("revoked", approver.pk)
    assert revoked.revoked_at is not None
    assert live_approval_active("live-1") is None
    events = list(
        SafetyEvent.objects.order_by("pk").values_list(
            "kind", "account_label", "actor_id", "actor_label", "reason"
        )
    )
    assert events == [
        ("live_approval_requested", "live-1", requester.pk, "rita", "ramp to live"),
        ("live_approval_granted", "live-1", approver.pk, "omar", "ok"),
        ("live_approval_revoked", "live-1", approver.pk, "omar", "pause"),
    ]
    details = [e.details for e in SafetyEvent.objects.order_by("pk")]
    assert details[0] == {"approval_id": approval.pk, "ttl_seconds": 7200}
    assert details[1] == {
        "approval_id": approval.pk,
        "requested_by": requester.pk,
        "expires_at": approved.expires_at.isoformat(),
    }
    assert details[2] == {"approval_id": approval.pk, "previous_status": "approved"}


def test_the_requester_cannot_approve_their_own_request(requester, request_row):
    both = staff_user("both", "add_liveapproval", "approve_liveapproval")
    own = live_approval_request(account_label="live-1", actor=both, reason="mine", ttl=HOUR)
    message = refused(
        "same_person", live_approval_approve, approval_id=own.pk, actor=both, reason="me"
    )
    assert message == f"both requested live approval {own.pk}: a different person must approve it"
    assert live_approval_active("live-1") is None


@pytest.mark.parametrize(
    ("fields", "perms", "code"),
    [
        ({}, (), "permission_denied"),
        ({"is_staff": False}, ("add_liveapproval",), "not_staff"),
        ({"is_active": False}, ("add_liveapproval",), "not_staff"),
    ],
)
def test_request_needs_an_active_staff_user_with_the_add_permission(fields, perms, code):
    from django.contrib.auth import get_user_model

    user = staff_user("someone", *perms)
    get_user_model().objects.filter(pk=user.pk).update(**fields)
    user = get_user_model().objects.get(pk=user.pk)
    refused(
        code,
        live_approval_request,
        account_label="live-1",
        actor=user,
        reason="let me",
        ttl=HOUR,
    )
    assert not LiveApproval.objects.exists()


def test_anonymous_and_missing_actors_are_refused():
    from django.contrib.auth.models import AnonymousUser

    for actor in (None, AnonymousUser()):
        refused(
            "not_staff",
            live_approval_request,
            account_label="live-1",
            actor=actor,
            reason="x",
            ttl=HOUR,
        )


def test_approve_needs_the_approve_permission_and_staff(request_row):
    no_perm = staff_user("viewer", "add_liveapproval", "change_liveapproval")
    message = refused(
        "permission_denied",
        live_approval_approve,
        approval_id=request_row.pk,
        actor=no_perm,
        reason="ok",
    )
    assert message == "viewer lacks the permission trading.approve_liveapproval"
    not_staff = staff_user("outsider", "approve_liveapproval", is_staff=False)
    refused(
        "not_staff",
        live_approval_approve,
        approval_id=request_row.pk,
        actor=not_staff,
        reason="ok",
    )


def test_revoke_needs_the_change_or_the_approve_permission(request_row, approver):
    refused(
        "permission_denied",
        live_approval_revoke,
        approval_id=request_row.pk,
        actor=staff_user("adder", "add_liveapproval"),
        reason="stop",
    )
    changer = staff_user("changer", "change_liveapproval")
    assert (
        live_approval_revoke(approval_id=request_row.pk, actor=changer, reason="stop").status
        == "revoked"
    )
    second = live_approval_request(
        account_label="live-1", actor=request_row.requested_by, reason="again", ttl=HOUR
    )
    assert (
        live_approval_revoke(approval_id=second.pk, actor=approver, reason="stop").status
        == "revoked"
    )


def test_a_request_expires_unapproved_after_its_ttl(request_row, approver):
    with time_machine.travel(request_row.requested_at + HOUR, tick=False):
        message = refused(
            "request_expired",
            live_approval_approve,
            approval_id=request_row.pk,
            actor=approver,
            reason="late",
        )
        assert message.endswith("it expired unapproved; request it again")
        assert live_approval_state(request_row, now=timezone.now()) == "request_expired"
    with time_machine.travel(request_row.requested_at + HOUR - timedelta(seconds=1), tick=False):
        assert live_approval_approve(
            approval_id=request_row.pk, actor=approver, reason="just in time"
        ).status == ("approved")


def test_an_approval_lapses_at_its_expiry(request_row, approver):
    approved = live_approval_approve(approval_id=request_row.pk, actor=approver, reason="ok")
    assert approved.expires_at is not None
    with time_machine.travel(approved.expires_at - timedelta(seconds=1), tick=False):
        assert live_approval_active("live-1") == approved
    with time_machine.travel(approved.expires_at, tick=False):
        assert live_approval_active("live-1") is None
        assert live_approval_state(approved, now=timezone.now()) == "expired"


@pytest.mark.parametrize("label", ["paper", "live-2", ""])
def test_only_configured_live_lanes_can_be_requested(requester, label):
    message = refused(
        "unknown_lane",
        live_approval_request,
        account_label=label,
        actor=requester,
        reason="x",
        ttl=HOUR,
    )
    assert message == f"{label!r} is not a configured live lane (live lanes: live-1)"


def test_a_lane_no_longer_live_cannot_be_approved(request_row, approver, settings):
    settings.TRADING_LANES = [paper_lane("live-1")]
    refused(
        "unknown_lane",
        live_approval_approve,
        approval_id=request_row.pk,
        actor=approver,
        reason="ok",
    )


def test_the_ttl_is_capped_by_the_setting(requester, settings):
    settings.TRADING_LIVE_APPROVAL_MAX_TTL_HOURS = 2
    message = refused(
        "ttl_above_max",
        live_approval_request,
        account_label="live-1",
        actor=requester,
        reason="x",
        ttl=2 * HOUR + timedelta(seconds=1),
    )
    assert message == "a TTL of 2:00:01 is above TRADING_LIVE_APPROVAL_MAX_TTL_HOURS=2"
    for ttl in (timedelta(0), -HOUR):
        refused(
            "ttl_invalid",
            live_approval_request,
            account_label="live-1",
            actor=requester,
            reason="x",
            ttl=ttl,
        )
    assert (
        live_approval_request(account_label="live-1", actor=requester, reason="x", ttl=2 * HOUR).ttl
        == 2 * HOUR
    )


def test_every_action_needs_a_reason(requester, approver, request_row):
    refused(
        "reason_required",
        live_approval_request,
        account_label="live-1",
        actor=requester,
        reason="  ",
        ttl=HOUR,
    )
    refused(
        "reason_required",
        live_approval_approve,
        approval_id=request_row.pk,
        actor=approver,
        reason="",
    )
    refused(
        "reason_required",
        live_approval_revoke,
        approval_id=request_row.pk,
        actor=approver,
        reason="\n",
    )


def test_approve_twice_and_revoke_twice_are_refused(request_row, approver):
    live_approval_approve(approval_id=request_row.pk, actor=approver, reason="ok")
    other = staff_user("otto", "approve_liveapproval")
    message = refused(
        "not_requested",
        live_approval_approve,
        approval_id=request_row.pk,
        actor=other,
        reason="again",
    )
    assert message == f"live approval {request_row.pk} is approved: only a request can be approved"
    live_approval_revoke(approval_id=request_row.pk, actor=approver, reason="stop")
    message = refused(
        "already_revoked",
        live_approval_revoke,
        approval_id=request_row.pk,
        actor=approver,
        reason="stop again",
    )
    assert message == f"live approval {request_row.pk} is already revoked"
    refused(
        "not_requested",
        live_approval_approve,
        approval_id=request_row.pk,
        actor=other,
        reason="revive",
    )


@pytest.mark.parametrize("approval_id", [0, 999_999, 2**63])
def test_unknown_ids_are_not_found(approver, approval_id):
    refused("not_found", live_approval_approve, approval_id=approval_id, actor=approver, reason="x")
    refused("not_found", live_approval_revoke, approval_id=approval_id, actor=approver, reason="x")


def test_the_database_refuses_an_approval_by_the_requester(request_row):
    """The CHECK behind `same_person`: written without the service, it still cannot hold."""
    now = timezone.now()
    with pytest.raises(IntegrityError, match="live_approval_two_people"), transaction.atomic():
        LiveApproval.objects.filter(pk=request_row.pk).update(
            status="approved",
            approved_by=request_row.requested_by,
            approved_at=now,
            expires_at=now + HOUR,
        )


@pytest.mark.parametrize(
    ("changes", "constraint"),
    [
        ({"status": "approved"}, "live_approval_approved_complete"),
        ({"status": "revoked"}, "live_approval_revoked_has_time"),
        ({"revoked_at": timezone.now()}, "live_approval_revoked_has_time"),
        ({"ttl": None}, "live_approval_ttl_positive"),
        ({"status": "granted"}, "live_approval_status_valid"),
        ({"reason": ""}, "live_approval_reason_required"),
    ],
)
def test_the_database_refuses_incomplete_states(request_row, changes, constraint):
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        LiveApproval.objects.filter(pk=request_row.pk).update(**changes)


def test_the_database_refuses_an_approved_row_without_expiry(request_row, approver):
    with (
        pytest.raises(IntegrityError, match="live_approval_approved_complete"),
        transaction.atomic(),
    ):
        LiveApproval.objects.filter(pk=request_row.pk).update(
            status="approved", approved_by=approver, approved_at=timezone.now(), expires_at=None
        )
