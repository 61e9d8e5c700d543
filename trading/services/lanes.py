"""Lane bookkeeping: the cycle lease and the persisted lane state."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from trading.lanes import LaneConfig
from trading.models import AccountLane, LaneState


def lane_ensure(*, lane: LaneConfig) -> LaneState:
    AccountLane.objects.update_or_create(
        label=lane.label,
        defaults={"mode": lane.mode, "broker": lane.broker, "enabled": lane.enabled},
    )
    state, _ = LaneState.objects.get_or_create(account_label=lane.label)
    return state


def lease_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lane_lease_acquire(*, account_label: str, owner: str, purpose: str = "cycle") -> bool:
    """Compare-and-set lease: only one worker runs a lane's cycle at a time. A killed worker's
    lease lapses after TRADING_LANE_LEASE_SECONDS."""
    now = timezone.now()
    LaneState.objects.get_or_create(account_label=account_label)
    won = (
        LaneState.objects.filter(account_label=account_label)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner))
        .update(
            lease_owner=f"{owner}#{purpose}" if purpose != "cycle" else owner,
            lease_until=now + timedelta(seconds=settings.TRADING_LANE_LEASE_SECONDS),
        )
    )
    return won == 1


def lane_lease_release(*, account_label: str, owner: str) -> None:
    LaneState.objects.filter(account_label=account_label, lease_owner=owner).update(
        lease_owner="", lease_until=None
    )


def lane_state_update(*, account_label: str, **fields: Any) -> None:
    LaneState.objects.filter(account_label=account_label).update(
        **fields, updated_at=timezone.now()
    )
