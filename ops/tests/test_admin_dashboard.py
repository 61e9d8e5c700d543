"""The admin index's at-a-glance panel and the dashboard page, through the real admin."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from ops.admin_dashboard import dashboard_panels
from ops.dashboard import (
    DashboardData,
    MinuteCount,
    ReasonCount,
    StrategyDecisions,
    SymbolFills,
)
from tests.conftest import paper_lane
from torghut_site.models import ProcessHeartbeat
from torghut_site.services import heartbeat_record
from trading.models import LaneState, PositionSnapshot, SafetyState

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/ops/processheartbeat/dashboard/"


@pytest.fixture(autouse=True)
def quiet_settings(settings):
    settings.TRADING_FEATURE_FLAGS_ENABLED = False
    settings.TRADING_ENABLED = True
    settings.TRADING_KILL_SWITCH_ENABLED = False
    settings.TRADING_EMERGENCY_STOP_ENABLED = True
    settings.TRADING_ORDER_FEED_ENABLED = False
    settings.TRADING_SIGNAL_SOURCE = "replay"
    settings.TRADING_MODE = "paper"
    settings.TRADING_LANES = [paper_lane()]


@pytest.fixture
def root_client() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("dash-root", password="pw-1"))
    return client


def tile(html: str, key: str) -> tuple[str, str]:
    """(level, value) of the tile with this id."""
    match = re.search(
        rf'<div class="tile (\w+)" id="{key}" data-level="\1"[^>]*>\s*'
        r'<span class="tile-label">[^<]*</span>\s*<span class="tile-value">([^<]*)</span>',
        html,
    )
    assert match, key
    return match.group(1), match.group(2)


@time_machine.travel(datetime(2026, 3, 3, 15, 0, 30, tzinfo=UTC), tick=False)
def test_index_shows_each_fact_with_its_level_and_links_the_dashboard(root_client):
    now = timezone.now()
    LaneState.objects.create(
        account_label="paper",
        last_cycle_finished_at=now - timedelta(seconds=2),
        last_cycle_status="ok",
        last_reconcile_at=None,
        signal_lag_seconds=3.0,
        market_open=True,
    )
    SafetyState.objects.create(scope="global", kill_switch_engaged=True, kill_switch_reason="drill")
    heartbeat_record(kind="celery_worker", name="worker-1", interval_seconds=15)
    heartbeat_record(kind="celery_beat", name="beat-1", interval_seconds=15)
    ProcessHeartbeat.objects.filter(kind="celery_beat").update(
        last_seen_at=now - timedelta(minutes=5), expires_at=now - timedelta(seconds=255)
    )

    html = root_client.get("/admin/").content.decode()

    assert 'id="torghut-safety" class="module torghut-glance" data-level="bad"' in html
    assert tile(html, "trading-enabled") == ("ok", "enabled")
    assert tile(html, "trading-mode") == ("ok", "paper")
    assert tile(html, "kill-switch") == ("bad", "ENGAGED")
    assert 'title="manual: drill"' in html
    assert tile(html, "emergency-stop") == ("ok", "clear")
    assert tile(html, "order-feed") == ("ok", "off")
    assert tile(html, "lane-paper-cycle") == ("ok", "ok · 2 s ago")
    assert tile(html, "lane-paper-reconcile") == ("bad", "never")
    assert tile(html, "lane-paper-signal-lag") == ("ok", "3 s")
    assert tile(html, "heartbeat-celery-worker") == ("ok", "1 live · 0 s ago")
    assert tile(html, "heartbeat-celery-beat") == ("bad", "dead · 5 min ago")
    assert f'<a id="dashboard-link" href="{DASHBOARD}">' in html
    assert "No partition sampled from Kafka (the order feed is off, or not probed yet)." in html
    assert "as of 2026-03-03 15:00:30 UTC" in html


def test_dashboard_page_draws_the_charts_of_the_seeded_data(root_client):
    now = timezone.now()
    for minutes, equity in ((30, "100000"), (10, "100250.5")):
        PositionSnapshot.objects.create(
            account_label="paper",
            as_of=now - timedelta(minutes=minutes),
            equity=Decimal(equity),
            cash=Decimal(0),
            buying_power=Decimal(0),
        )

    response = root_client.get(DASHBOARD)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Dashboard | torghut</title>" in html
    keys = re.findall(r'<div class="module chart-panel" id="chart-(\w+)">', html)
    assert keys == ["equity", "pnl", "decisions", "rejects", "fills", "slippage", "feed"]
    assert 'aria-label="account equity: 2 point(s), from 100,000.00 to 100,250.50"' in html
    assert 'aria-label="PnL: 2 point(s), from 0.00 to 250.50"' in html
    assert "No decision in the last 24 h." in html
    assert "No rejected decision in the last 24 h." in html
    assert html.count("No fill in the last 24 h.") == 2
    assert 'aria-label="order-feed events per minute: 60 point(s), from 0 to 0"' in html
    assert "0 event(s) stored in the last hour." in html
    assert 'id="torghut-safety"' in html  # the glance on top


def test_dashboard_needs_staff_and_the_decision_view_permission(client):
    assert client.get(DASHBOARD).status_code == 302  # to the login page
    staff = get_user_model().objects.create_user("dash-staff", password="pw-2", is_staff=True)
    client.force_login(staff)
    assert client.get(DASHBOARD).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_tradedecision"))
    client.force_login(get_user_model().objects.get(pk=staff.pk))
    assert client.get(DASHBOARD).status_code == 200


def test_dashboard_panels_from_typed_rows():
    t0 = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
    data = DashboardData(
        now=t0,
        since=t0 - timedelta(hours=24),
        feed_since=t0,
        equity={"paper": [(t0, Decimal("100.00")), (t0 + timedelta(minutes=1), Decimal("90.00"))]},
        decisions=[StrategyDecisions("macd", 5, 2), StrategyDecisions("tsmom", 1, 0)],
        rejects=[ReasonCount("kill_switch_active", 2)],
        fills=[
            SymbolFills("AAPL", 3, Decimal("1.25"), Decimal("0.5")),
            SymbolFills("MSFT", 1, None, Decimal(0)),
        ],
        feed=[MinuteCount(t0, 4), MinuteCount(t0 + timedelta(minutes=1), 0)],
    )

    panels = {p.key: p for p in dashboard_panels(data)}

    assert list(panels) == ["equity", "pnl", "decisions", "rejects", "fills", "slippage", "feed"]
    assert 'aria-label="PnL: 2 point(s), from -10.00 to 0.00"' in panels["pnl"].chart
    assert 'data-categories="2" data-bars="4"' in panels["decisions"].chart
    assert "<title>macd · rejected: 2</title>" in panels["decisions"].chart
    assert panels["decisions"].note == "6 decision(s), 2 rejected."
    assert 'data-categories="1" data-bars="1"' in panels["rejects"].chart
    assert panels["fills"].note == "4 fill(s) with transaction cost analysis."
    # MSFT has no slippage measured: no bar, but its category stays
    assert 'data-categories="2" data-bars="1"' in panels["slippage"].chart
    assert "<title>AAPL · slippage (bps): 1.25</title>" in panels["slippage"].chart
    assert panels["feed"].note == "4 event(s) stored in the last hour."
    assert (
        'aria-label="order-feed events per minute: 2 point(s), from 0 to 4"' in panels["feed"].chart
    )
