"""An unknown order's incident is posted once to the operators' webhooks (`incident:<key>`):
a later event for the same order (or the same batch again) posts nothing more."""

from __future__ import annotations

import pytest

from orderfeed.services import POSTGRES_STORE
from orderfeed.tests.test_ingest import ingest, rec
from tests.servers.notify_receiver import signature_valid
from trading.models import Incident, Notification
from trading.notifications import canonical_body

pytestmark = pytest.mark.django_db

FOREIGN = {"id": "foreign-1", "client_order_id": "manual-1", "symbol": "TSLA", "qty": "3"}


def test_an_unknown_order_incident_is_posted_once_signed(
    receiver, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ingest(POSTGRES_STORE, rec(0, {"order": {**FOREIGN, "status": "new"}, "event": "new"}))
    for offset, status in ((1, "filled"), (2, "canceled")):  # the same order again
        with django_capture_on_commit_callbacks(execute=True):
            ingest(POSTGRES_STORE, rec(offset, {"order": {**FOREIGN, "status": status}}))
    incident = Incident.objects.get()
    row = Notification.objects.get()
    assert (row.event_id, row.kind, row.status) == (
        "incident:unknown-order:paper:foreign-1",
        "incident",
        "sent",
    )
    [hook] = receiver.posted("/hook")
    assert hook.body == canonical_body(row)
    assert signature_valid(hook) is True
    assert hook.json()["payload"] == {
        "incident_kind": "unknown_order",
        "account_label": "",
        "symbol": "",
        "reasons": ["unknown_order"],
        "snapshot": {
            "account_label": "paper",
            "broker_order_id": "foreign-1",
            "client_order_id": "manual-1",
            "symbol": "TSLA",
            "status": "new",
            "first_event": "new",
        },
        "at": incident.created_at.isoformat(),
    }
    assert len(receiver.posted("/slack")) == 1


def test_with_no_webhook_an_unknown_order_writes_no_notification(
    settings, django_capture_on_commit_callbacks
):
    settings.TORGHUT_NOTIFY_WEBHOOK_URL = ""
    settings.TORGHUT_NOTIFY_SLACK_WEBHOOK_URL = ""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ingest(POSTGRES_STORE, rec(0, {"order": {**FOREIGN, "status": "new"}, "event": "new"}))
    assert (Incident.objects.count(), Notification.objects.count(), len(callbacks)) == (1, 0, 0)
