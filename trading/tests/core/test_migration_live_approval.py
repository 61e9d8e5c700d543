"""Migration 0007: single-person approvals recorded before it end up revoked (live trading
stops until a two-person approval), within the new constraints."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from trading.selectors.safety import live_approval_active

BEFORE = [("trading", "0007_strategy_uncertainty_action")]
AFTER = [("trading", "0008_live_approval_two_person")]


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


@pytest.mark.django_db(transaction=True)
def test_single_person_approvals_are_revoked_by_the_migration():
    executor = migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE[0]).apps
        user = old.get_model("auth", "User").objects.create(username="old-approver")
        approval = old.get_model("trading", "LiveApproval")
        now = timezone.now()
        in_force = approval.objects.create(
            account_label="live-1", approved_by=user, reason="go", expires_at=None
        )
        revoked_at = now - timedelta(days=1)
        revoked = approval.objects.create(
            account_label="live-1",
            approved_by=user,
            reason="old",
            revoked_at=revoked_at,
            revoked_by=user,
        )
        executor = migrate(AFTER)
        new = executor.loader.project_state(AFTER[0]).apps
        rows = {
            row.pk: row for row in new.get_model("trading", "LiveApproval").objects.order_by("pk")
        }
        first, second = rows[in_force.pk], rows[revoked.pk]
        assert (first.status, first.requested_by_id, first.approved_by_id) == (
            "revoked",
            user.pk,
            user.pk,
        )
        assert first.requested_at == first.approved_at
        assert first.revoked_at >= now and first.revoked_by_id is None
        assert (second.status, second.revoked_at, second.revoked_by_id) == (
            "revoked",
            revoked_at,
            user.pk,
        )
        events = new.get_model("trading", "SafetyEvent").objects.values_list(
            "kind", "account_label", "actor_label", "details"
        )
        assert list(events) == [
            (
                "live_approval_revoked",
                "live-1",
                "migration 0008_live_approval_two_person",
                {"approval_id": in_force.pk},
            )
        ]
    finally:
        migrate(executor.loader.graph.leaf_nodes())
    assert live_approval_active("live-1") is None
