"""A promotion is posted to the operators' webhooks once: approving the champion again is no new
promotion and no new post."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User

from autonomy.models import ResearchCandidate
from autonomy.services.promotion import promotion_approve
from tests.servers.notify_receiver import signature_valid
from trading.models import Notification

pytestmark = pytest.mark.django_db


def test_a_paper_promotion_is_posted_once(
    run_lane_cmd, receiver, eager_celery, django_capture_on_commit_callbacks
):
    candidate = ResearchCandidate.objects.get(candidate_id=run_lane_cmd()["candidate_id"])
    alice = User.objects.create_user("alice", password="x")
    alice.user_permissions.add(*Permission.objects.filter(codename="approve_promotion"))
    alice = User.objects.get(pk=alice.pk)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            result = promotion_approve(
                candidate=candidate, mode="paper", actor=alice, reason="reviewed"
            )
    row = Notification.objects.get()
    assert (row.event_id, row.kind, row.status) == (
        f"promotion:{result.promotion.pk}",
        "promotion",
        "sent",
    )
    [hook] = receiver.posted("/hook")
    assert signature_valid(hook) is True
    assert hook.json()["payload"] == {
        "action": "promote",
        "candidate_id": candidate.candidate_id,
        "mode": "paper",
        "account_label": "paper",
        "approver": "alice",
        "reason": "reviewed",
        "rollback_candidate_id": "",
    }
    assert len(receiver.posted("/slack")) == 1
