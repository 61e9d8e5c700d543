"""A book-mismatch incident is posted once to the operators' webhooks: the next check that finds
it still open posts nothing; a later disagreement is a new incident and a new post."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trading.models import Incident, Notification
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
    SimPosition.objects.filter(symbol="AAPL").update(qty=Decimal(14))
    reconcile_lane(account_label="paper")
    keys = list(Incident.objects.order_by("pk").values_list("incident_key", flat=True))
    assert len(keys) == 2
    rows = list(Notification.objects.order_by("pk").values_list("event_id", "kind", "payload"))
    assert [(event_id, kind) for event_id, kind, _ in rows] == [
        (f"incident:{keys[0]}", "incident"),
        (f"incident:{keys[1]}", "incident"),
    ]
    first = rows[0][2]
    assert (first["incident_kind"], first["account_label"], first["symbol"]) == (
        "book_mismatch",
        "paper",
        "AAPL",
    )
    assert first["snapshot"]["difference"] == "3.00000000"
