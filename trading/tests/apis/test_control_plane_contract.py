"""`/trading/status` and `/trading/metrics` carry `control_plane_contract` (our versioned subset,
`torghut.control-plane.v1`, docs/compatibility.md#endpoints) and `metrics` (the
`torghut_trading_*` counters summed over labels and processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.conftest import ROOT
from torghut_site.metrics import counter_totals
from trading.metrics import DECISIONS, DUPLICATE_DECISIONS
from trading.models import LaneState
from trading.services.safety import kill_switch_set

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def reader():
    cache.clear()
    client = APIClient()
    user = get_user_model().objects.create_user("contract-reader", password="x")
    client.force_authenticate(user)
    return client


@pytest.fixture
def lanes(settings):
    base = settings.TRADING_LANES[0]
    settings.TRADING_LANES = [
        {**base, "label": "paper", "mode": "paper", "enabled": True},
        {**base, "label": "stale", "mode": "paper", "enabled": True},
        {**base, "label": "live-1", "mode": "live", "enabled": False},
    ]
    settings.TRADING_ENABLED = True
    settings.TRADING_MODE = "paper"
    settings.TRADING_POLL_MS = 5000
    settings.TRADING_KILL_SWITCH_ENABLED = False
    settings.TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD = 2
    LaneState.objects.create(
        account_label="paper",
        last_cycle_finished_at=NOW - timedelta(seconds=10),
        last_cycle_status="ok",
        last_signal_ts=NOW - timedelta(seconds=5),
        market_open=True,
    )
    LaneState.objects.create(
        account_label="stale",
        last_cycle_finished_at=NOW - timedelta(seconds=16),  # past 3 x TRADING_POLL_MS
        last_cycle_status="ok",
    )


CONTRACT = {
    "schema_version": "torghut.control-plane.v1",
    "as_of": "2026-11-02T15:00:00Z",
    "mode": "paper",
    "trading_enabled": True,
    "running": True,
    "kill_switch_engaged": False,
    "emergency_stop_active": False,
    "lanes": [
        {
            "label": "paper",
            "enabled": True,
            "live": False,
            "last_cycle_at": "2026-11-02T14:59:50Z",
            "healthy": True,
        },
        {
            "label": "stale",
            "enabled": True,
            "live": False,
            "last_cycle_at": "2026-11-02T14:59:44Z",
            "healthy": False,
        },
        {
            "label": "live-1",
            "enabled": False,
            "live": True,
            "last_cycle_at": None,
            "healthy": False,
        },
    ],
    "signal_continuity": "ok",
}


def test_status_carries_the_contract_field_for_field(reader, lanes):
    with time_machine.travel(NOW, tick=False):
        body = reader.get("/trading/status").json()
    assert body["control_plane_contract"] == CONTRACT
    assert body["as_of"] == "2026-11-02T15:00:00Z"


def test_the_contract_follows_the_latches_and_the_signals(reader, lanes):
    user = get_user_model().objects.get(username="contract-reader")
    kill_switch_set(engaged=True, actor=user, reason="drill")
    LaneState.objects.filter(account_label="paper").update(
        no_signal_reason="no_signals_in_window", no_signal_streak=2, last_cycle_status="error"
    )
    with time_machine.travel(NOW, tick=False):
        contract = reader.get("/trading/status").json()["control_plane_contract"]
    assert contract["kill_switch_engaged"] is True
    assert contract["signal_continuity"] == "actionable"
    assert contract["lanes"][0]["healthy"] is False  # its last cycle ended in error


def test_signal_continuity_is_unknown_before_any_signal(reader, settings):
    settings.TRADING_ENABLED = True
    LaneState.objects.all().delete()
    contract = reader.get("/trading/status").json()["control_plane_contract"]
    assert (contract["signal_continuity"], contract["running"]) == ("unknown", False)


def test_metrics_endpoint_carries_the_contract_and_the_counters(reader, lanes):
    with time_machine.travel(NOW, tick=False):
        body = reader.get("/trading/metrics").json()
    assert body["control_plane_contract"] == CONTRACT
    assert body["metrics"] == counter_totals(prefix="torghut_trading_")
    assert set(body) == {"lanes", "decisions_24h", "tca", "metrics", "control_plane_contract"}


def test_the_metrics_block_sums_each_counter_over_its_labels(reader):
    before = reader.get("/trading/status").json()["metrics"]
    DECISIONS.labels(strategy="s1", outcome="submitted").inc(2)
    DECISIONS.labels(strategy="s2", outcome="rejected").inc(3)
    DUPLICATE_DECISIONS.inc()
    after = reader.get("/trading/status").json()["metrics"]
    assert after["decisions_total"] - before["decisions_total"] == 5
    assert after["duplicate_decisions_total"] - before["duplicate_decisions_total"] == 1
    assert after["orders_submitted_total"] == before["orders_submitted_total"]
    # every torghut_trading_ counter, none of the other families
    assert "orders_failed_total" in after
    assert "cycle_duration_seconds_total" not in after  # a histogram
    assert not any(name.startswith(("torghut_", "feature_flag")) for name in after)


TOTALS = """
import django, json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "torghut_site.settings")
django.setup()
from torghut_site.metrics import counter_totals
from trading.metrics import ORDERS_SUBMITTED
ORDERS_SUBMITTED.labels(account="{account}").inc({n})
print(json.dumps(counter_totals(prefix="torghut_trading_")))
"""


def test_the_metrics_block_sums_the_processes_of_the_host(tmp_path):
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "TORGHUT_VAR_DIR": str(tmp_path / "var"),
    }
    outputs = []
    for account, n in (("paper", 3), ("live", 4)):
        result = subprocess.run(
            [sys.executable, "-c", TOTALS.format(account=account, n=n)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.strip().splitlines()[-1])
    first, second = (json.loads(o) for o in outputs)
    assert first["orders_submitted_total"] == 3.0
    assert second["orders_submitted_total"] == 7.0  # the first process's 3 and its own 4
    assert second["decisions_total"] == 0.0
