"""`GET /trading/decisions`, `/trading/executions` (cursor pages of lean rows) and their detail
endpoints: paging, filters, the exact query contract (400s), one query per page."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from trading.models import Execution, ExecutionTcaMetric, Strategy, TradeDecision
from trading.tests.factories import filled_buy

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader():
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("lister", password="x"))
    return client


def decision(n: int, *, symbol: str = "AAPL", status: str = "planned", strategy: str = "s",
             account: str = "paper", qty: str | None = None) -> TradeDecision:  # fmt: skip
    row_strategy, _ = Strategy.objects.get_or_create(
        name=strategy, defaults={"strategy_type": "legacy_macd_rsi"}
    )
    return TradeDecision.objects.create(
        strategy=row_strategy,
        account_label=account,
        symbol=symbol,
        timeframe="1Min",
        event_ts=datetime(2026, 3, 3, 15, 0, tzinfo=UTC),
        action="buy",
        qty=Decimal(qty if qty is not None else n + 1),
        decision_hash=f"{n:064x}",
        client_order_id=f"tg-{n:045x}",
        status=status,
        reject_reason="shorts_not_allowed" if status == "rejected" else "",
        gate_verdicts=[{"gate": "risk", "passed": True}],
    )


def bulk_decisions(count: int) -> None:
    strategy, _ = Strategy.objects.get_or_create(
        name="s", defaults={"strategy_type": "legacy_macd_rsi"}
    )
    TradeDecision.objects.bulk_create(
        TradeDecision(
            strategy=strategy,
            account_label="paper",
            symbol="SPY",
            timeframe="1Min",
            event_ts=datetime(2026, 3, 3, 15, 0, tzinfo=UTC),
            action="buy",
            qty=Decimal(1),
            decision_hash=f"{n:064x}",
            client_order_id=f"tg-{n:045x}",
        )
        for n in range(1000, 1000 + count)
    )


def test_pages_follow_the_cursor_to_the_end(reader):
    ids = [decision(n).id for n in range(5)]
    first = reader.get("/trading/decisions", {"limit": 2}).json()
    assert [row["id"] for row in first["results"]] == [ids[4], ids[3]]
    assert first["next"] == f"http://testserver/trading/decisions?limit=2&after_id={ids[3]}"
    second = reader.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == [ids[2], ids[1]]
    third = reader.get(second["next"]).json()
    assert [row["id"] for row in third["results"]] == [ids[0]]
    assert third["next"] is None


def test_a_page_holds_exactly_limit_rows_and_knows_it_is_the_last(reader):
    ids = [decision(n).id for n in range(2)]
    body = reader.get("/trading/decisions", {"limit": 2}).json()
    assert [row["id"] for row in body["results"]] == [ids[1], ids[0]]
    assert body["next"] is None


def test_default_page_is_50_rows_and_500_is_the_most(reader):
    bulk_decisions(501)
    assert len(reader.get("/trading/decisions").json()["results"]) == 50
    most = reader.get("/trading/decisions", {"limit": 500}).json()
    assert len(most["results"]) == 500
    assert most["next"] is not None
    over = reader.get("/trading/decisions", {"limit": 501})
    assert over.status_code == 400
    assert over.json()["error"]["details"] == {
        "limit": ["Ensure this value is less than or equal to 500."]
    }


def test_a_list_row_is_lean_and_rendered_like_the_serializers(reader):
    row = decision(0, qty="0", status="rejected")
    body = reader.get("/trading/decisions").json()
    assert body["results"] == [
        {
            "id": row.id,
            "strategy": "s",
            "account_label": "paper",
            "symbol": "AAPL",
            "timeframe": "1Min",
            "event_ts": "2026-03-03T15:00:00Z",
            "action": "buy",
            "qty": "0.00000000",
            "order_type": "market",
            "limit_price": None,
            "price": None,
            "status": "rejected",
            "reject_reason": "shorts_not_allowed",
            "client_order_id": f"tg-{0:045x}",
            "executed_at": None,
            "created_at": row.created_at.isoformat().replace("+00:00", "Z"),
        }
    ]


def test_a_page_is_one_query_however_many_rows(reader, django_assert_num_queries):
    for n in range(3):
        decision(n, strategy=f"s{n}")
    with django_assert_num_queries(1):
        assert len(reader.get("/trading/decisions").json()["results"]) == 3
    with django_assert_num_queries(1):
        reader.get("/trading/executions")


def test_filters_status_symbol_strategy_account(reader):
    wanted = decision(0, symbol="MSFT", status="rejected", strategy="alpha", account="paper")
    decision(1, symbol="AAPL", status="rejected", strategy="alpha", account="paper")
    decision(2, symbol="MSFT", status="planned", strategy="alpha", account="paper")
    decision(3, symbol="MSFT", status="rejected", strategy="beta", account="paper")
    decision(4, symbol="MSFT", status="rejected", strategy="alpha", account="paper-2")
    query = {"symbol": "msft", "status": "rejected", "strategy": "alpha", "account": "paper"}
    body = reader.get("/trading/decisions", query).json()
    assert [row["id"] for row in body["results"]] == [wanted.id]


def test_since_is_inclusive_and_until_exclusive(reader):
    rows = [decision(n) for n in range(3)]
    stamps = [datetime(2026, 3, 3, 15, n, tzinfo=UTC) for n in range(3)]
    for row, stamp in zip(rows, stamps, strict=True):
        TradeDecision.objects.filter(pk=row.pk).update(created_at=stamp)
    body = reader.get(
        "/trading/decisions",
        {"since": "2026-03-03T15:01:00Z", "until": "2026-03-03T16:02:00+01:00"},
    ).json()
    assert [row["id"] for row in body["results"]] == [rows[1].id]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": ""}, "since"),
        ({"until": ""}, "until"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-03-03T15:00:00"}, "since"),  # naive: no offset
        ({"since": "2026-13-03T15:00:00Z"}, "since"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "5.0"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"status": "bogus"}, "status"),
        ({"symbol": "A\x00B"}, "symbol"),
        ({"after_id": "-1"}, "after_id"),
        ({"limit": ["1", "2"]}, "limit"),  # given twice: DRF would read the last
    ],
)
def test_invalid_query_parameters_answer_400(reader, params, field):
    decision(0)
    for path in ("/trading/decisions", "/trading/executions", "/trading/tca"):
        if path == "/trading/tca" and field in ("status", "until"):
            continue  # TCA pages take neither
        response = reader.get(path, params)
        assert response.status_code == 400, (path, params)
        body = response.json()
        assert body["error"]["code"] == "invalid_request"
        assert list(body["error"]["details"]) == [field]


def test_execution_list_and_detail(reader):
    made = decision(0, status="filled", strategy="alpha")
    execution = filled_buy(made, order_type="market", computed_at=datetime.now(tz=UTC))
    rows = reader.get("/trading/executions", {"strategy": "alpha", "status": "filled"}).json()
    assert [(r["id"], r["decision_id"], r["filled_qty"]) for r in rows["results"]] == [
        (execution.id, made.id, "2.00000000")
    ]
    assert reader.get("/trading/executions", {"strategy": "beta"}).json()["results"] == []
    detail = reader.get(f"/trading/executions/{execution.id}").json()
    assert detail["slippage_bps"] == "5.2500"
    assert detail["avg_fill_price"] == "190.500000"


def test_decision_detail_is_the_full_row(reader):
    made = decision(0)
    body = reader.get(f"/trading/decisions/{made.id}").json()
    assert body["gate_verdicts"] == [{"gate": "risk", "passed": True}]
    assert body["decision_hash"] == f"{0:064x}"
    assert body["strategy"] == "s"


@pytest.mark.parametrize("raw", ["999999", "abc", "0", "-1", "99999999999999999999"])
def test_detail_of_no_row_is_404_in_the_error_format(reader, raw):
    decision(0)
    for path in (f"/trading/decisions/{raw}", f"/trading/executions/{raw}"):
        response = reader.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


def test_lists_and_details_need_authentication():
    made = decision(0)
    client = APIClient()
    for path in ("/trading/decisions", f"/trading/decisions/{made.id}", "/trading/executions/1"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "since",
    ["1755-08-21T10:30:38.17+20:25", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"],
)
def test_any_rfc3339_offset_is_a_time_postgres_takes(reader, since):
    made = decision(0)
    body = reader.get("/trading/decisions", {"since": since}).json()
    assert [row["id"] for row in body["results"]] == ([] if since.startswith("9999") else [made.id])


def tca_row(n: int) -> ExecutionTcaMetric:
    made = decision(n, status="filled")
    execution = Execution.objects.create(
        decision=made, account_label="paper", broker="simulated", broker_order_id=f"sim-{n}",
        client_order_id=made.client_order_id, symbol="AAPL", side="buy", order_type="market",
        time_in_force="day", submitted_qty=Decimal("2"), filled_qty=Decimal("2"),
        avg_fill_price=Decimal("190.5"), status="filled",
    )  # fmt: skip
    return ExecutionTcaMetric.objects.create(
        execution=execution, decision=made, strategy=made.strategy, account_label="paper",
        symbol="AAPL", side="buy", arrival_price=Decimal("190.4"), avg_fill_price=Decimal("190.5"),
        filled_qty=Decimal("2"), slippage_bps=Decimal("5.25"),
        computed_at=datetime(2026, 3, 3, 15, n, tzinfo=UTC),
    )  # fmt: skip


def test_tca_pages_follow_the_cursor_beside_the_summary(reader):
    rows = [tca_row(n) for n in range(3)]
    first = reader.get("/trading/tca", {"limit": 2, "symbol": "aapl"}).json()
    assert [row["id"] for row in first["results"]] == [rows[2].id, rows[1].id]
    assert first["next"] == (
        f"http://testserver/trading/tca?limit=2&symbol=aapl&after_id={rows[1].id}"
    )
    assert first["results"][0] == {
        "id": rows[2].id,
        "execution_id": rows[2].execution_id,
        "strategy_id": rows[2].strategy_id,
        "account_label": "paper",
        "symbol": "AAPL",
        "side": "buy",
        "arrival_price": "190.400000",
        "avg_fill_price": "190.500000",
        "filled_qty": "2.00000000",
        "slippage_bps": "5.2500",
        "shortfall_notional": None,
        "computed_at": "2026-03-03T15:02:00Z",
    }
    assert set(first) == {
        "summary", "by_strategy", "by_symbol", "summary_as_of", "summary_since",
        "summary_max_age_seconds", "next", "results",
    }  # fmt: skip
    last = reader.get(first["next"]).json()
    assert ([row["id"] for row in last["results"]], last["next"]) == ([rows[0].id], None)
    assert last["summary"] == first["summary"]  # the summary is of every matching row


def test_tca_default_page_is_50_and_a_limit_above_500_is_refused(reader):
    rows = [tca_row(n) for n in range(51)]
    body = reader.get("/trading/tca").json()
    assert [row["id"] for row in body["results"]] == [row.id for row in reversed(rows)][:50]
    over = reader.get("/trading/tca", {"limit": 501})
    assert over.status_code == 400
    assert over.json()["error"]["details"] == {
        "limit": ["Ensure this value is less than or equal to 500."]
    }


def test_tca_filters_strategy_and_since(reader):
    rows = [tca_row(n) for n in range(3)]
    query = {"strategy_id": rows[0].strategy_id, "since": "2026-03-03T15:01:00Z"}
    body = reader.get("/trading/tca", query).json()
    assert [row["id"] for row in body["results"]] == [rows[2].id, rows[1].id]
    assert reader.get("/trading/tca", {"strategy_id": 999999}).json()["results"] == []
