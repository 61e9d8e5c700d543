"""Admin polish: plural and acronym model names, the columns an operator scans, search by client
order id, and the dashboard's strategy books and LLM spend tables, through the real admin."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from ops.dashboard_ledger import ledger_data, llm_spend_recent
from tests.conftest import paper_lane
from trading.models import ExecutionTcaMetric, LLMDecisionReview, LLMSpendDay, TradeDecision
from trading.tests.books.helpers import fill, strategy

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/ops/processheartbeat/dashboard/"


@pytest.fixture(autouse=True)
def one_lane(settings):
    settings.TRADING_FEATURE_FLAGS_ENABLED = False
    settings.TRADING_ORDER_FEED_ENABLED = False
    settings.TRADING_LANES = [paper_lane()]


@pytest.fixture
def root_client() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("polish-root", password="pw-1"))
    return client


def model_names(html: str) -> dict[str, str]:
    """Admin index: changelist URL -> the model's name as shown."""
    links = re.findall(r'<th scope="row" id="[^"]*">\s*<a href="(/admin/[^"]+/)">([^<]+)</a>', html)
    return dict(links)


def test_index_shows_plural_and_acronym_names(root_client):
    html = root_client.get("/admin/").content.decode()
    names = model_names(html)
    assert names["/admin/trading/strategy/"] == "Strategies"
    assert names["/admin/trading/tasignal/"] == "TA signals"
    assert names["/admin/trading/llmdecisionreview/"] == "LLM decision reviews"
    assert names["/admin/trading/llmstabilityprobe/"] == "LLM stability probes"
    assert names["/admin/trading/llmcircuitbreaker/"] == "LLM circuit breakers"
    assert names["/admin/trading/llmspendday/"] == "LLM spend days"
    assert names["/admin/trading/llmspendreservation/"] == "LLM spend reservations"
    assert names["/admin/ops/apitoken/"] == "API tokens"
    assert names["/admin/trading/executiontcametric/"] == "TCA metrics"
    assert names["/admin/trading/llmdspyworkflowartifact/"] == "DSPy artifacts"
    assert names["/admin/whitepapers/githubissueevent/"] == "GitHub issue events"
    for wrong in ("Strategys", "Ta signals", "Llm ", "Api tokens", "Execution tca metrics"):
        assert wrong not in html


def cells(html: str) -> list[str]:
    """Header texts of a changelist's result table."""
    return re.findall(
        r'<th scope="col"[^>]*>\s*(?:<div class="text">)?(?:<a [^>]*>)?([^<]+)<', html
    )


def rejected_decision() -> TradeDecision:
    return TradeDecision.objects.create(
        strategy=strategy("macd"),
        account_label="paper",
        symbol="NVDA",
        timeframe="1Min",
        event_ts=timezone.now(),
        action="buy",
        qty=Decimal("7"),
        order_type="limit",
        limit_price=Decimal("123.450000"),
        decision_hash="d" * 64,
        client_order_id="cid-rejected-1",
        status="rejected",
        reject_reason="kill_switch_active",
    )


def test_decision_list_shows_status_reject_reason_qty_and_price(root_client):
    rejected_decision()
    html = root_client.get("/admin/trading/tradedecision/").content.decode()
    headers = cells(html)
    for header in ("Qty", "Limit price", "Status", "Reject reason", "Client order id"):
        assert header in headers
    assert '<td class="field-reject_reason">kill_switch_active</td>' in html
    assert '<td class="field-limit_price">123.450000</td>' in html
    assert '<td class="field-qty">7.00000000</td>' in html
    assert 'id="changelist-filter"' in html and "date_hierarchy" not in headers


def test_execution_search_by_client_order_id_finds_only_that_row(root_client):
    one = fill("macd", "AAPL", "buy", "10", "101.5", minute=1)
    other = fill("macd", "MSFT", "buy", "2", "300", minute=2)
    url = "/admin/trading/execution/"
    html = root_client.get(url, {"q": one.client_order_id}).content.decode()
    assert f"/admin/trading/execution/{one.pk}/change/" in html
    assert f"/admin/trading/execution/{other.pk}/change/" not in html
    assert "1 result" in html
    assert "Limit price" in cells(html) and "Avg fill price" in cells(html)
    assert '<td class="field-avg_fill_price">101.500000</td>' in html
    assert '<nav class="toplinks">' in html  # the date hierarchy


def test_tca_list_is_searchable_by_client_order_id_and_shows_it(root_client):
    execution = fill("macd", "AAPL", "buy", "10", "101.5", minute=1)
    ExecutionTcaMetric.objects.create(
        execution=execution,
        account_label="paper",
        symbol="AAPL",
        side="buy",
        arrival_price=Decimal("101"),
        avg_fill_price=Decimal("101.5"),
        filled_qty=Decimal("10"),
        slippage_bps=Decimal("49.5050"),
        computed_at=timezone.now(),
    )
    html = root_client.get("/admin/trading/executiontcametric/", {"q": execution.client_order_id})
    page = html.content.decode()
    assert html.status_code == 200
    assert "Client order id" in cells(page)
    assert f'<td class="field-client_order_id">{execution.client_order_id}</td>' in page
    assert '<td class="field-slippage_bps">49.5050</td>' in page
    missing = root_client.get("/admin/trading/executiontcametric/", {"q": "no-such-id"})
    assert "0 results" in missing.content.decode()


def test_review_list_shows_the_decisions_symbol_and_finds_it_by_client_order_id(root_client):
    decision = rejected_decision()
    LLMDecisionReview.objects.create(
        decision=decision,
        account_label="paper",
        deadline=timezone.now() + timedelta(seconds=30),
        input_json={},
        deterministic_qty=Decimal(7),
    )
    page = root_client.get("/admin/trading/llmdecisionreview/", {"q": "cid-rejected-1"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Symbol" in cells(html)
    assert html.count('<td class="field-symbol">NVDA</td>') == 1
    miss = root_client.get("/admin/trading/llmdecisionreview/", {"q": "cid-other"})
    assert 'class="field-symbol"' not in miss.content.decode()


def test_dashboard_shows_books_and_llm_spend_with_seeded_values(root_client):
    fill("macd", "AAPL", "buy", "10", "100", minute=1)
    fill("macd", "AAPL", "sell", "4", "110", minute=2)
    today = timezone.now().date()
    LLMSpendDay.objects.create(day=today, scope="all", spent_usd=Decimal("1.25"), reviews=5)
    macd = strategy("macd")
    LLMSpendDay.objects.create(
        day=today, scope=f"strategy:{macd.pk}", strategy=macd, spent_usd=Decimal("0.75"), reviews=3
    )
    LLMSpendDay.objects.create(  # older than the window: not shown
        day=today - timedelta(days=7), scope="all", spent_usd=Decimal("9"), reviews=9
    )

    html = root_client.get(DASHBOARD).content.decode()

    books = html[html.index('id="dashboard-books"') :]
    books = books[: books.index("</table>")]
    assert (
        "<tr><td>paper</td><td>macd</td><td>AAPL</td><td>6.00000000</td><td>100.000000</td>"
        "<td>40.000000</td><td>—</td><td>—</td></tr>"
    ) in books
    spend = html[html.index('id="dashboard-llm-spend"') :]
    spend = spend[: spend.index("</table>")]
    day = today.isoformat()
    rows = re.findall(
        r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>(\d+)</td></tr>", spend
    )
    assert rows == [
        (day, "all", "1.25000000", "5"),
        (day, "strategy macd", "0.75000000", "3"),
    ]


def test_dashboard_without_books_or_spend_says_so(root_client):
    html = root_client.get(DASHBOARD).content.decode()
    assert "No filled executions on the configured lanes." in html
    since = (timezone.now().date() - timedelta(days=6)).isoformat()
    assert f"No LLM spend since {since}." in html


def test_ledger_queries_are_bounded_by_lanes_not_rows(django_assert_num_queries):
    for minute in range(6):
        fill("macd", "AAPL", "buy" if minute % 2 == 0 else "sell", "1", "100", minute=minute)
    fill(None, "MSFT", "buy", "1", "50", minute=7)
    # spend 1; the one lane: totals 1, the sold pairs' fills 1, its latest snapshot 1
    with django_assert_num_queries(4):
        data = ledger_data(now=timezone.now())
    assert [(b.strategy, b.symbol) for b in data.books] == [("macd", "AAPL"), (None, "MSFT")]
    assert data.spend == []


def test_spend_window_includes_today_and_the_six_days_before():
    LLMSpendDay.objects.create(day=date(2026, 3, 1), scope="all", spent_usd=Decimal("2"))
    LLMSpendDay.objects.create(day=date(2026, 2, 23), scope="all", spent_usd=Decimal("3"))
    rows = llm_spend_recent(today=date(2026, 3, 7))
    assert [(r.day, r.spent_usd) for r in rows] == [(date(2026, 3, 1), Decimal("2.00000000"))]
