"""Reads of the two-person live approvals (the firewall's check is
`trading.selectors.safety.live_approval_active`)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from trading.models import LiveApproval, LiveApprovalStatus


def live_approval_list(
    *, account_label: str | None = None, status: str | None = None
) -> QuerySet[LiveApproval]:
    """Newest request first, with the three users joined."""
    rows = LiveApproval.objects.select_related("requested_by", "approved_by", "revoked_by")
    if account_label:
        rows = rows.filter(account_label=account_label)
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-requested_at", "-pk")


def live_approval_page(
    *, account_label: str | None, status: str | None, after_id: int | None, limit: int
) -> tuple[list[LiveApproval], int | None]:
    """A cursor page, newest first by id (the order requests are made in): the rows and the id
    to continue after, None on the last page. One query, a row more than `limit` read."""
    rows = live_approval_list(account_label=account_label, status=status).order_by("-pk")
    if after_id:
        rows = rows.filter(pk__lt=after_id)
    found = list(rows[: limit + 1])
    if len(found) > limit:
        return found[:limit], found[limit - 1].pk
    return found, None


def live_approval_state(approval: LiveApproval, *, now: datetime) -> str:
    """What the row means at `now`: `requested`, `request_expired` (never approved within its
    TTL), `approved` (in force), `expired` (approved, past `expires_at`) or `revoked`."""
    if approval.status == LiveApprovalStatus.REVOKED:
        return "revoked"
    if approval.status == LiveApprovalStatus.APPROVED:
        assert approval.expires_at is not None
        return "approved" if now < approval.expires_at else "expired"
    assert approval.ttl is not None
    return "requested" if now < approval.requested_at + approval.ttl else "request_expired"
