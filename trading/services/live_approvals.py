"""Live approvals by two people: request, approve, revoke.

A live lane's orders pass the order firewall only while the lane has an approved, unexpired,
unrevoked `LiveApproval` (`trading.selectors.safety.live_approval_active`, read on every
submit). Getting one takes two staff users:

1. `live_approval_request`: someone with `trading.add_liveapproval` asks for a configured live
   lane, with a reason and a TTL of at most `TRADING_LIVE_APPROVAL_MAX_TTL_HOURS`;
2. `live_approval_approve`: a *different* user with `trading.approve_liveapproval` approves it
   within the TTL; the approval then lasts the TTL from that moment;
3. `live_approval_revoke`: a user with `trading.change_liveapproval` or the approve permission
   revokes a request or an approval; the next order of the lane is refused.

An approval or a request that runs out of its TTL changes no row (the firewall compares the
time); `live_approvals_expired_notify` (beat, while a webhook is configured) posts each one to
the operators once, as `live_approval_expired:<id>`.

Each step is one compare-and-set UPDATE on `status` plus a `SafetyEvent` in the same
transaction. A refusal raises `LiveApprovalError` (a stable `code` and a message saying why)
before anything is written.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from trading.lanes import live_lane_labels
from trading.models import LiveApproval, LiveApprovalStatus, SafetyEvent
from trading.models.safety import SafetyEventKind
from trading.notifications import notify, notify_safety_event, targets_configured

Actor = AbstractBaseUser | AnonymousUser | None

REQUEST_PERMISSION = "trading.add_liveapproval"
APPROVE_PERMISSION = "trading.approve_liveapproval"
REVOKE_PERMISSIONS = ("trading.change_liveapproval", APPROVE_PERMISSION)
# the largest TTL any entry point accepts: the upper bound of TRADING_LIVE_APPROVAL_MAX_TTL_HOURS
# (torghut_site/settings/trading.py); the setting itself is the cap that applies
TTL_HOURS_LIMIT = 8784
# who may list the approvals (admin changelist, API): anyone taking part, or a viewer
READ_PERMISSIONS = ("trading.view_liveapproval", REQUEST_PERMISSION, *REVOKE_PERMISSIONS)


class LiveApprovalError(Exception):
    """A refused live-approval action. Codes: `not_staff`, `permission_denied`,
    `reason_required`, `unknown_lane`, `ttl_invalid`, `ttl_above_max`, `not_found`,
    `same_person`, `not_requested`, `request_expired`, `already_revoked`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _staff_actor(actor: Actor, *permissions: str) -> AbstractBaseUser:
    """The actor, if it is an active staff user holding one of `permissions`."""
    if not isinstance(actor, AbstractBaseUser):
        raise LiveApprovalError("not_staff", "a signed-in active staff user is required")
    name = actor.get_username()
    if not actor.is_active or not getattr(actor, "is_staff", False):
        raise LiveApprovalError(
            "not_staff", f"{name} is not an active staff user: live approvals need staff users"
        )
    has_perm = getattr(actor, "has_perm", None)
    if has_perm is None or not any(has_perm(permission) for permission in permissions):
        raise LiveApprovalError(
            "permission_denied", f"{name} lacks the permission {' or '.join(permissions)}"
        )
    return actor


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise LiveApprovalError("reason_required", "a reason is required")
    return text


def _live_lane(account_label: str) -> str:
    labels = live_lane_labels()
    if account_label not in labels:
        known = ", ".join(labels) or "none configured"
        raise LiveApprovalError(
            "unknown_lane",
            f"{account_label!r} is not a configured live lane (live lanes: {known})",
        )
    return account_label


def _ttl(ttl: timedelta) -> timedelta:
    if ttl <= timedelta(0):
        raise LiveApprovalError("ttl_invalid", "the TTL must be positive")
    max_hours = settings.TRADING_LIVE_APPROVAL_MAX_TTL_HOURS
    if ttl > timedelta(hours=max_hours):
        raise LiveApprovalError(
            "ttl_above_max",
            f"a TTL of {ttl} is above TRADING_LIVE_APPROVAL_MAX_TTL_HOURS={max_hours}",
        )
    return ttl


MAX_ID = 2**63 - 1  # bigint


def _approval(approval_id: int) -> LiveApproval:
    """The row, locked until the transaction ends (the caller's UPDATE is also conditional)."""
    approval = None
    if 1 <= approval_id <= MAX_ID:
        approval = (
            LiveApproval.objects.select_for_update(of=("self",))
            .filter(pk=approval_id)
            .order_by("pk")
            .first()
        )
    if approval is None:
        raise LiveApprovalError("not_found", f"no live approval {approval_id}")
    return approval


def _event(
    kind: SafetyEventKind,
    approval: LiveApproval,
    user: AbstractBaseUser,
    reason: str,
    **details: object,
) -> None:
    event = SafetyEvent.objects.create(
        kind=kind,
        account_label=approval.account_label,
        actor_id=user.pk,
        actor_label=user.get_username(),
        reason=reason,
        details={"approval_id": approval.pk, **details},
    )
    notify_safety_event(event)


def live_approval_request(
    *, account_label: str, actor: Actor, reason: str, ttl: timedelta
) -> LiveApproval:
    """Ask for live trading on `account_label`; a second person must approve within `ttl`."""
    user = _staff_actor(actor, REQUEST_PERMISSION)
    text = _reason(reason)
    label = _live_lane(account_label)
    ttl = _ttl(ttl)
    with transaction.atomic():
        approval = LiveApproval.objects.create(
            account_label=label,
            status=LiveApprovalStatus.REQUESTED,
            reason=text,
            requested_by_id=user.pk,
            requested_at=timezone.now(),
            ttl=ttl,
        )
        _event(
            SafetyEventKind.LIVE_APPROVAL_REQUESTED,
            approval,
            user,
            text,
            ttl_seconds=int(ttl.total_seconds()),
        )
    return approval


def _check_approvable(approval: LiveApproval, *, user: AbstractBaseUser, now: datetime) -> None:
    if approval.status != LiveApprovalStatus.REQUESTED:
        raise LiveApprovalError(
            "not_requested",
            f"live approval {approval.pk} is {approval.status}: only a request can be approved",
        )
    if approval.requested_by_id == user.pk:
        raise LiveApprovalError(
            "same_person",
            f"{user.get_username()} requested live approval {approval.pk}: "
            "a different person must approve it",
        )
    assert approval.ttl is not None  # a requested row has one (live_approval_ttl_positive)
    if now >= approval.requested_at + approval.ttl:
        raise LiveApprovalError(
            "request_expired",
            f"live approval {approval.pk} was requested at {approval.requested_at.isoformat()} "
            f"with a TTL of {approval.ttl}: it expired unapproved; request it again",
        )
    _live_lane(approval.account_label)


def live_approval_approve(*, approval_id: int, actor: Actor, reason: str) -> LiveApproval:
    """Approve another person's unexpired request; it then lasts its TTL from now."""
    user = _staff_actor(actor, APPROVE_PERMISSION)
    text = _reason(reason)
    now = timezone.now()
    with transaction.atomic():
        approval = _approval(approval_id)
        _check_approvable(approval, user=user, now=now)
        assert approval.ttl is not None
        expires_at = now + approval.ttl
        changed = LiveApproval.objects.filter(
            pk=approval.pk, status=LiveApprovalStatus.REQUESTED
        ).update(
            status=LiveApprovalStatus.APPROVED,
            approved_by_id=user.pk,
            approved_at=now,
            expires_at=expires_at,
        )
        if changed != 1:  # approved or revoked by someone else since it was read
            raise LiveApprovalError(
                "not_requested", f"live approval {approval.pk} changed meanwhile: look again"
            )
        _event(
            SafetyEventKind.LIVE_APPROVAL_GRANTED,
            approval,
            user,
            text,
            requested_by=approval.requested_by_id,
            expires_at=expires_at.isoformat(),
        )
    approval.refresh_from_db()
    return approval


def live_approval_revoke(*, approval_id: int, actor: Actor, reason: str) -> LiveApproval:
    """Revoke a request or an approval: the lane's next live order is refused."""
    user = _staff_actor(actor, *REVOKE_PERMISSIONS)
    text = _reason(reason)
    now = timezone.now()
    with transaction.atomic():
        approval = _approval(approval_id)
        changed = (
            LiveApproval.objects.filter(pk=approval.pk)
            .exclude(status=LiveApprovalStatus.REVOKED)
            .update(status=LiveApprovalStatus.REVOKED, revoked_at=now, revoked_by_id=user.pk)
        )
        if changed != 1:
            raise LiveApprovalError(
                "already_revoked", f"live approval {approval.pk} is already revoked"
            )
        _event(
            SafetyEventKind.LIVE_APPROVAL_REVOKED,
            approval,
            user,
            text,
            previous_status=approval.status,
        )
    approval.refresh_from_db()
    return approval


# an expiry is posted by the first sweep after it; one missed for longer than this (beat down) is
# not posted
EXPIRY_LOOKBACK = timedelta(days=1)


def live_approvals_expired_notify(*, now: datetime | None = None) -> list[str]:
    """Post each approval, and each request left unapproved, whose TTL ran out in the last
    EXPIRY_LOOKBACK (one post per approval: a lapsed request can no longer be approved). A no-op
    with no webhook configured. Returns the event ids raised (already posted ones included)."""
    if not targets_configured():
        return []
    now = now or timezone.now()
    since = now - EXPIRY_LOOKBACK
    approved = LiveApproval.objects.filter(
        status=LiveApprovalStatus.APPROVED, expires_at__gt=since, expires_at__lte=now
    ).annotate(ran_out_at=F("expires_at"))
    requested = (
        LiveApproval.objects.filter(status=LiveApprovalStatus.REQUESTED, ttl__isnull=False)
        .annotate(ran_out_at=F("requested_at") + F("ttl"))
        .filter(ran_out_at__gt=since, ran_out_at__lte=now)
    )
    raised = []
    for approval in sorted([*approved, *requested], key=lambda row: row.pk):
        event_id = f"live_approval_expired:{approval.pk}"
        payload = {
            "account_label": approval.account_label,
            "approval_id": approval.pk,
            "status": approval.status,
            "reason": approval.reason,
            "at": approval.ran_out_at,  # type: ignore[attr-defined]
        }
        notify("live_approval_expired", event_id, payload)
        raised.append(event_id)
    return raised
