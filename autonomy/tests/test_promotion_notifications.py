"""Every promotion action is posted to the operators' webhooks once: approving the champion again
is no new promotion and no new post; a deny, a demotion and a rollback are each one post."""

from __future__ import annotations

import pytest

from autonomy.services.promotion import (
    promotion_approve,
    promotion_demote,
    promotion_deny,
    promotion_rollback,
)
from autonomy.tests.test_promotion import approver, candidate  # noqa: F401
from tests.servers.notify_receiver import signature_valid
from trading.models import Notification
from trading.notifications import canonical_body

pytestmark = pytest.mark.django_db


def test_a_paper_promotion_is_posted_once(
    candidate,  # noqa: F811
    receiver,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    alice = approver()
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


def _posts_match_rows(receiver, expected: list[str]) -> list[dict]:
    """One sent row per event id, each posted once with its canonical body, signed."""
    rows = list(Notification.objects.order_by("pk"))
    assert [(r.event_id, r.status) for r in rows] == [(e, "sent") for e in expected]
    hooks = receiver.posted("/hook")
    assert [h.json()["event_id"] for h in hooks] == expected
    for hook, row in zip(hooks, rows, strict=True):
        assert hook.body == canonical_body(row)
        assert signature_valid(hook) is True
    return [h.json()["payload"] for h in hooks]


def test_a_deny_and_a_rollback_are_each_posted_once(
    candidate,  # noqa: F811
    receiver,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    alice = approver()
    with django_capture_on_commit_callbacks(execute=True):
        denied = promotion_deny(candidate=candidate, mode="live", actor=alice, reason="thin data")
    with django_capture_on_commit_callbacks(execute=True):
        promoted = promotion_approve(candidate=candidate, mode="paper", actor=alice, reason="ok")
    with django_capture_on_commit_callbacks(execute=True):
        rolled_back = promotion_rollback(candidate=candidate, actor=alice, reason="undo")
    payloads = _posts_match_rows(
        receiver,
        [
            f"promotion_denied:{denied.pk}",
            f"promotion:{promoted.promotion.pk}",
            f"promotion_rolled_back:{rolled_back.pk}",
        ],
    )
    assert payloads[0] == {
        "action": "deny",
        "candidate_id": candidate.candidate_id,
        "mode": "live",
        "account_label": "",
        "approver": "alice",
        "reason": "thin data",
        "rollback_candidate_id": "",
    }
    assert payloads[2] == {
        "action": "rollback",
        "candidate_id": candidate.candidate_id,
        "mode": "paper",
        "account_label": "paper",
        "approver": "alice",
        "reason": "undo",
        "rollback_candidate_id": "",
    }


def test_a_demotion_by_drift_governance_is_posted_once(
    candidate,  # noqa: F811
    receiver,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    alice = approver()
    with django_capture_on_commit_callbacks(execute=True):
        promoted = promotion_approve(candidate=candidate, mode="paper", actor=alice, reason="ok")
    with django_capture_on_commit_callbacks(execute=True):
        demoted = promotion_demote(candidate=candidate, actor=None, reason="drift", system="drift")
    payloads = _posts_match_rows(
        receiver, [f"promotion:{promoted.promotion.pk}", f"promotion_demoted:{demoted.pk}"]
    )
    assert payloads[1] == {
        "action": "demote",
        "candidate_id": candidate.candidate_id,
        "mode": "paper",
        "account_label": "paper",
        "approver": "system:drift",
        "reason": "drift",
        "rollback_candidate_id": "",
    }


def test_with_no_webhook_a_promotion_action_writes_no_notification(
    settings,
    candidate,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    settings.TORGHUT_NOTIFY_WEBHOOK_URL = ""
    settings.TORGHUT_NOTIFY_SLACK_WEBHOOK_URL = ""
    with django_capture_on_commit_callbacks(execute=False):
        promotion_deny(candidate=candidate, mode="paper", actor=approver(), reason="thin data")
    assert Notification.objects.count() == 0
