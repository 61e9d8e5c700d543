"""Every write an operator can make in the admin records who did it.

Safety controls write a `SafetyEvent` naming the user and the reason; the whitepaper actions and
Django's own change/delete views write the admin's `LogEntry` (each object's History). The first
test lists the actions the admin offers, so a new one fails here until it has an audit test.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client, RequestFactory

from torghut_site.auth import api_token_issue
from torghut_site.models import ApiToken
from trading.models import SafetyEvent, SafetyState, Strategy
from whitepapers.models import DocumentSource, WhitepaperAnalysisRun, WhitepaperDocument

pytestmark = pytest.mark.django_db

CONTROLS = "/admin/trading/safetystate/controls/"
RUNS = "/admin/whitepapers/whitepaperanalysisrun/"
# custom actions by model; Django's delete_selected is covered by test_delete_is_logged
AUDITED_ACTIONS = {
    "whitepapers.WhitepaperAnalysisRun": {"requeue_runs", "redispatch_runs"},
    "trading.LiveApproval": {"approve_requests", "revoke_approvals"},
    # audited in trading/tests/notifications/test_notifications_admin.py
    "trading.Notification": {"resend_failed"},
}


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("audit-root", password="pw-audit-root-1")


@pytest.fixture
def root_client(root) -> Client:
    client = Client()
    client.force_login(root)
    return client


@pytest.fixture
def run(db) -> WhitepaperAnalysisRun:
    document = WhitepaperDocument.objects.create(
        document_key="aud" + "0" * 37,
        source=DocumentSource.GITHUB_ISSUE,
        source_identifier="proompteng/lab#9",
    )
    return WhitepaperAnalysisRun.objects.create(
        run_id="wp-aud00000000000000000001", document=document
    )


def test_every_admin_action_has_an_audit_test(root):
    request = RequestFactory().get("/admin/")
    request.user = root
    custom = {}
    for model, model_admin in admin.site._registry.items():
        names = set(model_admin.get_actions(request)) - {"delete_selected"}
        if names:
            custom[model._meta.label] = names
    assert custom == AUDITED_ACTIONS


@pytest.mark.parametrize(
    ("action", "kind", "engaged", "stop_active"),
    [
        ("kill_switch_on", "kill_switch_on", True, True),
        ("kill_switch_off", "kill_switch_off", False, True),
        ("emergency_stop_clear", "emergency_stop_cleared", False, False),
    ],
)
def test_safety_controls_record_the_operator_and_reason(
    root, root_client, action, kind, engaged, stop_active
):
    from django.utils import timezone

    SafetyState.objects.update_or_create(
        scope="global",
        defaults={
            "kill_switch_engaged": action == "kill_switch_off",
            "emergency_stop_active": True,
            "emergency_stop_reasons": ["drill"],
            "emergency_stop_triggered_at": timezone.now(),
            "kill_switch_changed_at": timezone.now(),
        },
    )
    response = root_client.post(CONTROLS, {"action": action, "reason": f"audit {action}"})
    assert response.status_code == 302
    event = SafetyEvent.objects.get()
    assert (event.kind, event.actor_id, event.reason) == (kind, root.pk, f"audit {action}")
    assert event.actor_label == root.username
    state = SafetyState.objects.get(scope="global")
    assert (state.kill_switch_engaged, state.emergency_stop_active) == (engaged, stop_active)


def test_safety_controls_refuse_staff_without_the_permission(db):
    staff = get_user_model().objects.create_user(
        "audit-staff", password="pw-staff-123", is_staff=True
    )
    staff.user_permissions.add(Permission.objects.get(codename="view_safetystate"))
    client = Client()
    client.force_login(staff)
    response = client.post(CONTROLS, {"action": "kill_switch_on", "reason": "not mine to pull"})
    assert response.status_code == 200  # the page again, the form not acted on
    assert not SafetyEvent.objects.exists()
    assert not SafetyState.objects.filter(kill_switch_engaged=True).exists()


def test_live_approval_actions_record_the_operator_and_reason(root, root_client, settings):
    from datetime import timedelta

    from tests.conftest import paper_lane, staff_user
    from trading.services.live_approvals import live_approval_request

    settings.TRADING_LANES = [paper_lane("live-1", mode="live")]
    requester = staff_user("audit-requester", "add_liveapproval")
    approval = live_approval_request(
        account_label="live-1", actor=requester, reason="ramp", ttl=timedelta(hours=1)
    )
    page = "/admin/trading/liveapproval/"
    for action, reason in (("approve_requests", "audit approve"), ("revoke_approvals", "stop")):
        response = root_client.post(
            page,
            {"action": action, "index": 0, "_selected_action": [approval.pk], "reason": reason},
        )
        assert response.status_code == 302
    events = SafetyEvent.objects.order_by("pk").values_list(
        "kind", "actor_id", "actor_label", "reason"
    )
    assert list(events) == [
        ("live_approval_requested", requester.pk, "audit-requester", "ramp"),
        ("live_approval_granted", root.pk, root.username, "audit approve"),
        ("live_approval_revoked", root.pk, root.username, "stop"),
    ]


def test_requeue_action_is_logged_with_the_operator_and_outcome(root, root_client, run):
    response = root_client.post(
        RUNS, {"action": "requeue_runs", "index": 0, "_selected_action": [run.pk]}
    )
    assert response.status_code == 302
    entry = LogEntry.objects.get(object_id=str(run.pk))
    assert (entry.user_id, entry.action_flag) == (root.pk, CHANGE)
    # this run never had a PDF: nothing was queued, and the History says so
    assert entry.change_message.startswith("Requeue analysis: requeue_not_ready")


def test_redispatch_action_is_logged_with_the_operator(root, root_client, run, monkeypatch):
    from whitepapers import tasks

    queued: list[str] = []
    monkeypatch.setattr(tasks.dispatch_agentrun, "delay", queued.append)
    response = root_client.post(
        RUNS, {"action": "redispatch_runs", "index": 0, "_selected_action": [run.pk]}
    )
    assert response.status_code == 302
    assert queued == [run.run_id]
    entry = LogEntry.objects.get(object_id=str(run.pk))
    assert (entry.user_id, entry.action_flag) == (root.pk, CHANGE)
    assert entry.change_message == "Re-dispatch AgentRun: dispatch queued"


def test_whitepaper_actions_need_the_run_permission(db, run, monkeypatch):
    from whitepapers import tasks

    staff = get_user_model().objects.create_user(
        "audit-viewer", password="pw-viewer-123", is_staff=True
    )
    staff.user_permissions.add(Permission.objects.get(codename="view_whitepaperanalysisrun"))
    client = Client()
    client.force_login(staff)
    queued: list[str] = []
    monkeypatch.setattr(tasks.dispatch_agentrun, "delay", queued.append)
    for action in ("requeue_runs", "redispatch_runs"):
        client.post(RUNS, {"action": action, "index": 0, "_selected_action": [run.pk]})
    assert queued == []
    assert not LogEntry.objects.exists()


def test_model_edits_are_logged(root, root_client):
    strategy = Strategy.objects.create(name="audit-s", strategy_type="legacy_macd_rsi")
    page = root_client.get(f"/admin/trading/strategy/{strategy.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data["enabled"] = "" if strategy.enabled else "on"
    data = {k: v for k, v in data.items() if v != ""}
    response = root_client.post(f"/admin/trading/strategy/{strategy.pk}/change/", data)
    assert response.status_code == 302, page.context["adminform"].form.errors
    entry = LogEntry.objects.get(object_id=str(strategy.pk))
    assert (entry.user_id, entry.action_flag) == (root.pk, CHANGE)
    assert "Enabled" in entry.get_change_message()


def test_delete_is_logged(root, root_client):
    token = api_token_issue(user=root, name="audit-delete").token
    response = root_client.post(
        "/admin/ops/apitoken/",
        {"action": "delete_selected", "_selected_action": [token.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    entry = LogEntry.objects.get(object_id=str(token.pk))
    assert (entry.user_id, entry.action_flag) == (root.pk, DELETION)
