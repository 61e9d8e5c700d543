"""The operators' path through the admin in a real headless Chromium.

Seeded through the real services: trade cycles on the simulated broker over the bundled sample
signals (decisions, orders, fills, TCA, account snapshots, order-feed events), a whitepaper run
taken in by the intake service (PDF from a local host into a Ceph RGW bucket, AgentRun
dispatched to the Jangar stand-in), and a research run of `run_autonomous_lane` on the shipped
sample inputs. Then: log in, read the index at a glance, the dashboard's charts, a decision with
its execution, the whitepaper run, the research run, and engage the kill switch with a reason.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from autonomy.models import ResearchRun
from autonomy.tests.conftest import SAMPLE_POLICY, SAMPLE_SIGNALS, SAMPLE_STRATEGY
from orderfeed.models import OrderEvent
from tests.browser.conftest import screenshot
from tests.conftest import ROOT, use_replay_trading
from torghut_site.models import HeartbeatKind
from torghut_site.services import heartbeat_record
from trading.models import (
    Execution,
    SafetyEvent,
    SafetyState,
    Strategy,
    TradeCursor,
    TradeDecision,
)
from trading.services.cycle import trading_cycle_run
from trading.services.reconcile import reconcile_lane
from whitepapers.models import WhitepaperAnalysisRun
from whitepapers.services.intake import github_event_process, github_event_record
from whitepapers.tests.test_workflow import PAPER
from whitepapers.tests.workflow import issue_payload

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]

SAMPLE_SIGNALS_CSV = ROOT / "trading" / "sample_data" / "signals-sample.csv"
REPLAY_START = datetime(2026, 3, 3, 14, 31, tzinfo=UTC)
CYCLES = 41  # one per minute of the sample session from 14:31 to 15:11, in its own wall minute
PASSWORD = "pw-browser-root-1"


@pytest.fixture
def trading_settings(settings):
    use_replay_trading(settings, SAMPLE_SIGNALS_CSV)
    settings.TRADING_EMERGENCY_STOP_ENABLED = True
    settings.TRADING_LIVE_ENABLED = False
    settings.TRADING_MODE = "paper"
    settings.TRADING_ORDER_FEED_ENABLED = False
    return settings


def seed_trading(settings: Any) -> None:
    """A trade cycle per minute of the sample session from 14:31 to 15:11, each followed by a
    reconcile and played in its own wall-clock minute of the last hour (so the charts have a
    time axis), then one reconcile now."""
    for name, kind in (("macd-sample", "legacy_macd_rsi"), ("tsmom-sample", "intraday_tsmom")):
        Strategy.objects.create(name=name, strategy_type=kind, enabled=True, base_timeframe="1Min")
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    wall = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=CYCLES)
    for i in range(CYCLES):
        with time_machine.travel(wall + timedelta(minutes=i, seconds=10), tick=True):
            trading_cycle_run(
                account_label="paper", now=REPLAY_START + timedelta(minutes=i, seconds=30)
            )
            reconcile_lane(account_label="paper")
    reconcile_lane(account_label="paper")
    # the beat ran a cycle a minute in this world: the index judges the last one's age by that
    settings.TRADING_POLL_MS = 60_000


def seed_whitepaper(workflow: Any) -> WhitepaperAnalysisRun:
    url = workflow.host.put("momentum.pdf", PAPER)
    event = github_event_record(
        source="api", payload=issue_payload(url=url), event_name="issues", process=False
    )
    outcome = github_event_process(event.pk)
    assert (outcome.accepted, outcome.reason) == (True, "accepted"), outcome
    return WhitepaperAnalysisRun.objects.get(run_id=outcome.run_id)


def seed_research(tmp_path: Path) -> ResearchRun:
    out = StringIO()
    call_command(
        "run_autonomous_lane",
        "--signals",
        str(SAMPLE_SIGNALS),
        "--strategy-config",
        str(SAMPLE_STRATEGY),
        "--gate-policy",
        str(SAMPLE_POLICY),
        "--output-dir",
        str(tmp_path / "lane"),
        "--no-progress",
        stdout=out,
    )
    summary = json.loads(out.getvalue())
    assert (summary["recommendation"], summary["recommended_mode"]) == ("promote", "paper")
    return ResearchRun.objects.get(run_id=summary["run_id"])


def tile(page: Any, key: str) -> tuple[str, str]:
    element = page.locator(f"#{key}")
    return element.get_attribute("data-level"), element.locator(".tile-value").inner_text()


def test_operator_path_through_the_admin(
    page, live_server, trading_settings, workflow, tmp_path, screenshot_dir
):
    research_run = seed_research(tmp_path)
    paper_run = seed_whitepaper(workflow)
    seed_trading(trading_settings)
    get_user_model().objects.create_superuser("browser-root", password=PASSWORD)
    # the processes the index expects alive
    heartbeat_record(kind=HeartbeatKind.CELERY_WORKER, name="browser-worker", interval_seconds=15)
    heartbeat_record(kind=HeartbeatKind.CELERY_BEAT, name="browser-beat", interval_seconds=15)

    # what the seeding produced on the sample (deterministic: same signals, same strategies)
    by_status = dict(TradeDecision.objects.values_list("status").annotate(n=Count("pk")).order_by())
    assert by_status == {"filled": 16, "rejected": 1}
    assert Execution.objects.filter(status="filled").count() == 16
    assert OrderEvent.objects.count() == 32

    # log in
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "browser-root")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")

    # the index at a glance
    assert tile(page, "trading-enabled") == ("ok", "enabled")
    assert tile(page, "trading-mode") == ("ok", "paper")
    assert tile(page, "kill-switch") == ("ok", "off")
    assert tile(page, "emergency-stop") == ("ok", "clear")
    assert tile(page, "order-feed") == ("ok", "off")
    level, value = tile(page, "lane-paper-cycle")
    assert (level, value[:5]) == ("ok", "ok · ")
    assert tile(page, "lane-paper-reconcile")[0] == "ok"
    assert tile(page, "lane-paper-signal-lag") == ("ok", "30 s")  # 15:11:00 seen at 15:11:30
    assert tile(page, "heartbeat-celery-worker")[0] == "ok"
    assert tile(page, "heartbeat-celery-beat")[0] == "ok"
    assert page.locator("#torghut-safety").get_attribute("data-level") == "ok"
    screenshot(page, "01-admin-index")

    # the dashboard, linked from the index
    page.click("#dashboard-link")
    page.wait_for_selector("#chart-equity")
    assert page.locator(".chart-panel svg.chart").count() == 7
    # a point per minute with snapshots: the 41 cycles' minutes and the last reconcile's
    assert page.locator("#chart-equity svg").get_attribute("data-points") == "42"
    # each cycle's snapshot is taken first thing (the loss limits read it before anything can
    # submit), so a minute's point is the equity before that minute's orders
    assert page.locator("#chart-pnl svg").get_attribute("aria-label") == (
        "PnL: 42 point(s), from -15.13 to 4.83"
    )

    def bar_titles(chart: str) -> list[str]:
        return list(page.locator(f"#chart-{chart} svg rect.bar title").all_text_contents())

    assert bar_titles("decisions") == [
        "macd-sample · decisions: 12",
        "macd-sample · rejected: 1",
        "tsmom-sample · decisions: 5",
        "tsmom-sample · rejected: 0",
    ]
    assert bar_titles("rejects") == ["shorts_not_allowed · rejected: 1"]
    assert bar_titles("fills") == [
        "NVDA · fills: 5",
        "AAPL · fills: 4",
        "MSFT · fills: 4",
        "SPY · fills: 2",
        "TSLA · fills: 1",
    ]
    assert bar_titles("slippage") == [
        "NVDA · slippage (bps): 27.59",
        "AAPL · slippage (bps): 3.03",
        "MSFT · slippage (bps): 9.21",
        "SPY · slippage (bps): 6.84",
        "TSLA · slippage (bps): 9.67",
    ]
    assert page.locator("#chart-feed svg").get_attribute("data-points") == "60"
    assert page.locator("#chart-feed .chart-note").inner_text() == (
        "32 event(s) stored in the last hour."
    )
    screenshot(page, "02-dashboard")

    # a decision with its execution
    decision = TradeDecision.objects.filter(status="filled").order_by("pk")[0]
    execution = decision.executions.get()
    tca = execution.tca
    page.goto(f"{live_server.url}/admin/trading/tradedecision/{decision.pk}/change/")
    assert decision.client_order_id in page.locator("#content").inner_text()
    link = page.locator(f"a[href='/admin/trading/execution/{execution.pk}/change/']")
    assert link.inner_text() == f"execution {execution.pk}"
    row = page.locator("tr", has=link)
    assert row.locator("td.field-status").inner_text() == "filled"
    assert row.locator("td.field-filled_qty").inner_text() == str(execution.filled_qty)
    screenshot(page, "03-decision")
    link.click()
    page.wait_for_url(re.compile(rf".*/admin/trading/execution/{execution.pk}/change/$"))
    assert page.locator(".field-decision_link a").inner_text() == f"decision {decision.pk}"
    assert page.locator(".field-tca_row .readonly").inner_text() == (
        f"arrival {tca.arrival_price} fill {tca.avg_fill_price} slippage {tca.slippage_bps} bps"
    )
    assert execution.order_events.count() == 2  # accepted, then filled
    assert page.locator(".field-order_events_link a").inner_text() == "2 order-feed events"
    screenshot(page, "04-execution")

    # the whitepaper run
    page.goto(f"{live_server.url}/admin/whitepapers/whitepaperanalysisrun/{paper_run.pk}/change/")
    content = page.content()
    assert paper_run.run_id in content and "agentrun_dispatch" in content
    screenshot(page, "05-whitepaper-run")

    # the research run: recommendation, equity curve, fold results
    page.goto(f"{live_server.url}/admin/autonomy/researchrun/{research_run.pk}/change/")
    assert page.locator("#recommendation-action").inner_text() == "promote"
    assert page.locator(".candidate-evidence svg.equity-curve polyline").count() == 1
    folds = page.locator(".candidate-evidence .fold-chart svg.bar-chart")
    assert folds.locator("rect.bar title").all_text_contents() == [
        "autonomous_lane · gross pnl: 1.00",
        "autonomous_lane · net pnl: 0.88",
    ]
    screenshot(page, "06-research-run")

    # engage the kill switch through the safety controls, with a reason
    page.goto(f"{live_server.url}/admin/trading/safetystate/controls/")
    page.select_option("#id_action", "kill_switch_on")
    page.fill("#id_reason", "browser drill")
    page.click("input[type=submit][value=Apply]")
    page.wait_for_selector(".messagelist .success")
    state = SafetyState.objects.get(scope="global")
    assert (state.kill_switch_engaged, state.kill_switch_reason) == (True, "browser drill")
    event = SafetyEvent.objects.get(kind="kill_switch_on")
    assert (event.actor_label, event.reason) == ("browser-root", "browser drill")
    screenshot(page, "07-kill-switch-engaged")
    page.goto(f"{live_server.url}/admin/")
    assert tile(page, "kill-switch") == ("bad", "ENGAGED")
    assert page.locator("#kill-switch .tile-detail").inner_text() == "manual: browser drill"
    assert page.locator("#torghut-safety").get_attribute("data-level") == "bad"
    screenshot(page, "08-admin-index-kill-switch")
    assert sorted(p.name for p in screenshot_dir.glob("*.png")) == [
        "01-admin-index.png",
        "02-dashboard.png",
        "03-decision.png",
        "04-execution.png",
        "05-whitepaper-run.png",
        "06-research-run.png",
        "07-kill-switch-engaged.png",
        "08-admin-index-kill-switch.png",
    ]
