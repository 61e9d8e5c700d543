"""A book-mismatch incident is posted once to the operators' webhooks: the next check that finds
it still open posts nothing; the check that finds the books agreeing again posts its resolution
once; a later disagreement is a new incident and a new post."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.servers.notify_receiver import signature_valid
from trading.models import Incident, Notification
from trading.notifications import canonical_body
from trading.services.reconcile import reconcile_lane
from trading.simbroker.models import SimPosition
from trading.tests.books.test_books_cycle import run, two_strategies  # noqa: F401

pytestmark = pytest.mark.django_db


def test_a_book_mismatch_incident_is_posted_once(two_strategies, receiver):  # noqa: F811
    run(30)
    run(90)
    SimPosition.objects.filter(symbol="AAPL").update(qty=Decimal(18))
    reconcile_lane(account_label="paper")
    reconcile_lane(account_label="paper")
    SimPosition.objects.filter(symbol="AAPL").update(qty=Decimal(15))
    reconcile_lane(account_label="paper")
    reconcile_lane(account_label="paper")  # still agreeing: nothing more
    SimPosition.objects.filter(symbol="AAPL").update(qty=Decimal(14))
    reconcile_lane(account_label="paper")
    keys = list(Incident.objects.order_by("pk").values_list("incident_key", flat=True))
    assert len(keys) == 2
    rows = list(Notification.objects.order_by("pk").values_list("event_id", "kind", "payload"))
    assert [(event_id, kind) for event_id, kind, _ in rows] == [
        (f"incident:{keys[0]}", "incident"),
        (f"incident_resolved:{keys[0]}", "incident_resolved"),
        (f"incident:{keys[1]}", "incident"),
    ]
    resolved, resolved_at = rows[1][2], Incident.objects.get(incident_key=keys[0]).resolved_at
    assert resolved_at is not None
    assert (resolved["incident_kind"], resolved["symbol"], resolved["at"]) == (
        "book_mismatch",
        "AAPL",
        resolved_at.isoformat(),
    )
    first = rows[0][2]
    assert (first["incident_kind"], first["account_label"], first["symbol"]) == (
        "book_mismatch",
        "paper",
        "AAPL",
    )
    assert first["snapshot"]["difference"] == "3.00000000"


def test_a_resolved_book_mismatch_is_posted_signed_after_the_commit(
    two_strategies,  # noqa: F811
    receiver,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    run(30)
    run(90)
    SimPosition.objects.filter(symbol="AAPL").update(qty=Decimal(18))
    with django_capture_on_commit_callbacks(execute=True):
        reconcile_lane(account_label="paper")
    SimPosition.objects.filter(symbol="AAPL").update(qty=Decimal(15))
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            reconcile_lane(account_label="paper")
    incident = Incident.objects.get()
    row = Notification.objects.get(kind="incident_resolved")
    assert (row.event_id, row.status, row.attempts) == (
        f"incident_resolved:{incident.incident_key}",
        "sent",
        1,
    )
    hooks = receiver.posted("/hook")
    assert [h.json()["event_id"] for h in hooks] == [
        f"incident:{incident.incident_key}",
        row.event_id,
    ]
    assert hooks[1].body == canonical_body(row)
    assert signature_valid(hooks[1]) is True
    assert incident.resolved_at is not None
    assert hooks[1].json()["payload"]["at"] == incident.resolved_at.isoformat()
