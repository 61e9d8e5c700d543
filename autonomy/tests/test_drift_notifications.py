"""A drift incident (a scheduled run's drift check with reason codes) is posted to the operators'
webhooks once per run, next to the demotion it triggers; a clean check posts nothing."""

from __future__ import annotations

import pytest

from autonomy.models import DriftCheck, Promotion, ResearchCandidate
from autonomy.services.governance import drift_record
from autonomy.services.promotion import promotion_approve
from autonomy.services.schedule import lane_tick
from autonomy.tests.test_governance import NOW, approver, losing_window, scheduled  # noqa: F401
from tests.servers.notify_receiver import signature_valid
from trading.models import Notification
from trading.notifications import canonical_body, notification_deliver

pytestmark = pytest.mark.django_db


def test_a_drift_incident_is_posted_once_with_the_demotion_it_caused(
    run_lane_cmd,
    scheduled,  # noqa: F811
    receiver,
):
    champion = ResearchCandidate.objects.get(candidate_id=run_lane_cmd()["candidate_id"])
    promotion_approve(candidate=champion, mode="paper", actor=approver(), reason="ok")
    losing_window(NOW)
    result = lane_tick(now=NOW)
    assert result.lane_run is not None
    run = result.lane_run.run
    check = DriftCheck.objects.get(run=run)
    drift_record(run=run, drift={"reason_codes": ["again"]})  # once per run: nothing new
    demote = Promotion.objects.get(decision_action="demote")
    rows = list(Notification.objects.order_by("pk"))
    assert [r.event_id for r in rows] == [
        f"promotion:{Promotion.objects.get(decision_action='promote').pk}",
        f"promotion_demoted:{demote.pk}",
        f"drift_incident:{run.run_id}",
    ]
    incident = rows[2]
    notification_deliver(notification_id=incident.pk)
    [hook] = receiver.posted("/hook")
    assert hook.body == canonical_body(incident)
    assert signature_valid(hook) is True
    assert hook.json() == {
        "event_id": f"drift_incident:{run.run_id}",
        "kind": "drift_incident",
        "payload": {
            "run_id": run.run_id,
            "strategy_name": "legacy-macd-rsi-v3",
            "trigger": "schedule",
            "reason_codes": ["performance_net_pnl_below_min"],
            "action": "reselection",
            "action_status": "triggered",
            "rollback_candidate_id": champion.candidate_id,
            "at": check.checked_at.isoformat(),
        },
    }


def test_a_clean_drift_check_posts_nothing_nor_does_any_without_a_webhook(
    run_lane_cmd, receiver, settings
):
    run = ResearchCandidate.objects.get(candidate_id=run_lane_cmd()["candidate_id"]).run
    DriftCheck.objects.filter(run=run).delete()
    drift_record(run=run, drift={"reason_codes": []})
    assert (DriftCheck.objects.filter(run=run).count(), Notification.objects.count()) == (1, 0)
    DriftCheck.objects.filter(run=run).delete()
    settings.TORGHUT_NOTIFY_WEBHOOK_URL = ""
    settings.TORGHUT_NOTIFY_SLACK_WEBHOOK_URL = ""
    drift_record(run=run, drift={"reason_codes": ["performance_net_pnl_below_min"]})
    assert (DriftCheck.objects.filter(run=run).count(), Notification.objects.count()) == (1, 0)
    assert receiver.posted("/hook") == []
