"""`/trading/status` carries the research loop's `autonomy` and `evidence_continuity` blocks,
lent through `trading.ports.status_sections` (trading does not import autonomy)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from autonomy.models import EvidenceContinuityReport, ResearchRun

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def reader():
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("reader", password="x"))
    return client


def test_blocks_before_any_run_or_audit(reader, settings):
    settings.TRADING_AUTONOMY_ENABLED = False
    settings.TRADING_AUTONOMY_INTERVAL_SECONDS = 300
    body = reader.get("/trading/status").json()
    assert body["autonomy"] == {"enabled": False, "interval_seconds": 300, "last_run": None}
    assert body["evidence_continuity"] is None


def test_blocks_show_the_last_run_and_the_last_audit(reader, settings):
    settings.TRADING_AUTONOMY_ENABLED = True
    settings.TRADING_AUTONOMY_INTERVAL_SECONDS = 600
    with time_machine.travel(NOW, tick=False):
        ResearchRun.objects.create(run_id="a" * 24, status="skipped", trigger="schedule")
    with time_machine.travel(NOW.replace(minute=5), tick=False):
        ResearchRun.objects.create(
            run_id="b" * 24,
            status="failed",
            trigger="cli",
            recommended_mode="paper",
            gate_report={"allowed": False},
            error="gate policy missing",
        )
    EvidenceContinuityReport.objects.create(
        checked_at=NOW, run_limit=8, runs_checked=2, passed=False, failed_runs=["a" * 24]
    )
    body = reader.get("/trading/status").json()
    assert body["autonomy"] == {
        "enabled": True,
        "interval_seconds": 600,
        "last_run": {
            "run_id": "b" * 24,
            "status": "failed",
            "trigger": "cli",
            "started_at": "2026-11-02T15:05:00Z",
            "finished_at": None,
            "recommended_mode": "paper",
            "gates_allowed": False,
            "error": "gate policy missing",
        },
    }
    assert body["evidence_continuity"] == {
        "checked_at": "2026-11-02T15:00:00Z",
        "passed": False,
        "runs_checked": 2,
        "failed_runs": ["a" * 24],
    }
