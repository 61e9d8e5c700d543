"""The order feed on `/trading/status` and `/trading/health` (ingest without Kafka)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from orderfeed.services import order_events_ingest
from orderfeed.tests.conftest import make_order, trade_update
from torghut_site.kafka.messages import RawMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> APIClient:
    api = APIClient()
    api.force_authenticate(get_user_model().objects.create_user("ops"))
    return api


def message(offset: int, value: dict | bytes) -> RawMessage:
    body = value if isinstance(value, bytes) else json.dumps(value).encode()
    return RawMessage("feed", 0, offset, b"AAPL", body)


def test_status_counts_outcomes_unknown_orders_and_dead_letters(client, settings):
    _, execution = make_order()
    result = order_events_ingest(
        [
            message(0, trade_update(execution, "new", status="new", ts="2026-03-03T14:30:01Z")),
            message(1, {"order": {"id": "foreign", "status": "new"}, "event": "new"}),
            message(2, b"garbage"),
        ]
    )
    assert [d.reason for d in result.dead_letters] == ["invalid_json"]

    feed = client.get("/trading/status").json()["order_feed"]
    assert feed["enabled"] is False
    assert feed["events_window"] == 2
    assert feed["outcomes_window"] == {"applied": 1, "unknown_order": 1}
    assert feed["unknown_orders_open"] == 1
    assert feed["consumers"] == []


def test_health_without_kafka_is_degraded_when_the_feed_is_enabled(client, settings):
    settings.TRADING_ORDER_FEED_ENABLED = True
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = ""
    body = client.get("/trading/health").json()
    assert body["dependencies"]["order_feed"] == {
        "ok": False,
        "reasons": ["kafka_unreachable"],
        "error": "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS is empty",
        "consumers": [],
        "unknown_orders_open": 0,
    }
    assert body["status"] == "degraded"
