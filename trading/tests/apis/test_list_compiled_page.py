"""The decision, execution and TCA pages from their compiled SQL (`decision_page`,
`execution_page`, `tca_page`) are the ORM's pages (`decision_page_orm`, `execution_page_orm`,
`tca_page_orm`), row for row and cursor for cursor, for random rows and any filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trading.models import Execution, ExecutionTcaMetric, Strategy, TradeDecision
from trading.selectors import lists
from trading.selectors.lists import (
    ListFilters,
    TcaFilters,
    decision_page,
    decision_page_orm,
    execution_page,
    execution_page_orm,
    tca_page,
    tca_page_orm,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
SYMBOLS = ["AAPL", "MSFT", "SPY"]
STATUSES = ["planned", "submitted", "rejected"]

rows_st = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.sampled_from(STATUSES),
        st.sampled_from(["s", "t"]),  # strategy name
        st.sampled_from(["paper", "live"]),
        st.integers(0, 20),  # created_at minutes after T0
        st.decimals(min_value=0, max_value=10**6, places=8, allow_nan=False),
        st.one_of(st.none(), st.decimals(min_value=0, max_value=10**6, places=6)),
    ),
    max_size=12,
)
times = st.one_of(st.none(), st.integers(-1, 22).map(lambda m: T0 + timedelta(minutes=m)))
filters_st = st.builds(
    ListFilters,
    status=st.one_of(st.none(), st.sampled_from([*STATUSES, ""])),
    symbol=st.one_of(st.none(), st.sampled_from(["aapl", "SPY", "ZZZ"])),
    strategy=st.one_of(st.none(), st.sampled_from(["s", "t", "u"])),
    account=st.one_of(st.none(), st.sampled_from(["paper", "live"])),
    since=times,
    until=times,
    after_id=st.one_of(st.none(), st.integers(1, 2**63 - 1)),
)


def _store(rows: list[tuple]) -> list[int]:
    Execution.objects.all().delete()
    TradeDecision.objects.all().delete()
    ids = []
    for n, (symbol, status, strategy, account, minutes, qty, limit) in enumerate(rows):
        strategy_row, _ = Strategy.objects.get_or_create(
            name=strategy, defaults={"strategy_type": "legacy_macd_rsi"}
        )
        row = TradeDecision.objects.create(
            strategy=strategy_row, account_label=account, symbol=symbol, timeframe="1Min",
            event_ts=T0 + timedelta(seconds=n), action="buy", qty=qty, limit_price=limit,
            decision_hash=f"{n:064x}", client_order_id=f"tg-{n:045x}", status=status,
            reject_reason="shorts_not_allowed" if status == "rejected" else "",
        )  # fmt: skip
        TradeDecision.objects.filter(id=row.id).update(created_at=T0 + timedelta(minutes=minutes))
        ids.append(row.id)
    return ids


def _store_executions(rows: list[tuple]) -> list[int]:
    """One execution per decision row (every third without its decision: an adopted order),
    created_at a minute later than its decision's, statuses mapped onto the execution's."""
    ids = []
    statuses = {"planned": "new", "submitted": "accepted", "rejected": "rejected"}
    for n, decision in enumerate(TradeDecision.objects.order_by("id")):
        qty = decision.qty + 1
        row = Execution.objects.create(
            decision=None if n % 3 == 2 else decision, account_label=decision.account_label,
            broker="simulated", broker_order_id=f"sim-{n}", client_order_id=f"tg-x{n:044x}",
            symbol=decision.symbol, side="buy", order_type="market", time_in_force="day",
            submitted_qty=qty, filled_qty=qty if n % 2 else 0, avg_fill_price=decision.limit_price,
            status=statuses[decision.status],
        )  # fmt: skip
        created = decision.created_at + timedelta(minutes=1)
        Execution.objects.filter(id=row.id).update(created_at=created)
        ids.append(row.id)
    return ids


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_st, filters=filters_st, limit=st.integers(1, 6), data=st.data())
def test_compiled_page_is_the_orm_page(rows, filters, limit, data):
    ids = _store(rows)
    if ids and filters.after_id is None:  # a cursor inside the rows as often as not
        filters = ListFilters(**{**filters.__dict__, "after_id": data.draw(st.sampled_from(ids))})
    page = decision_page(filters, limit=limit)
    assert page == decision_page_orm(filters, limit=limit)
    while page.next_after_id is not None:  # and every following page
        filters = ListFilters(**{**filters.__dict__, "after_id": page.next_after_id})
        page = decision_page(filters, limit=limit)
        assert page == decision_page_orm(filters, limit=limit)


EXECUTION_STATUSES = st.one_of(st.none(), st.sampled_from(["new", "accepted", "rejected", ""]))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_st, filters=filters_st, status=EXECUTION_STATUSES, limit=st.integers(1, 6))
def test_compiled_execution_page_is_the_orm_page(rows, filters, status, limit):
    _store(rows)
    _store_executions(rows)
    filters = ListFilters(**{**filters.__dict__, "status": status})
    page = execution_page(filters, limit=limit)
    assert page == execution_page_orm(filters, limit=limit)
    while page.next_after_id is not None:
        filters = ListFilters(**{**filters.__dict__, "after_id": page.next_after_id})
        page = execution_page(filters, limit=limit)
        assert page == execution_page_orm(filters, limit=limit)


tca_st = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.booleans(),  # with its strategy
        st.integers(0, 20),  # computed_at minutes after T0
        st.one_of(st.none(), st.decimals(min_value=-(10**6), max_value=10**6, places=4)),
        st.one_of(st.none(), st.decimals(min_value=0, max_value=10**6, places=6)),
    ),
    max_size=10,
)


def _store_tca(rows: list[tuple]) -> list[int]:
    """A TCA row per entry, each on its own execution (and decision)."""
    _store([(symbol, "submitted", "s", "paper", 0, Decimal(1), None) for symbol, *_ in rows])
    _store_executions(rows)
    ids = []
    executions = Execution.objects.order_by("id")
    for (symbol, with_strategy, minutes, slippage, price), execution in zip(
        rows, executions, strict=True
    ):
        decision = execution.decision
        row = ExecutionTcaMetric.objects.create(
            execution=execution, decision=decision,
            strategy=decision.strategy if decision and with_strategy else None,
            account_label="paper", symbol=symbol, side="buy", arrival_price=price,
            avg_fill_price=price, filled_qty=Decimal("1.5"), slippage_bps=slippage,
            shortfall_notional=slippage, computed_at=T0 + timedelta(minutes=minutes),
        )  # fmt: skip
        ids.append(row.id)
    return ids


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=tca_st,
    symbol=st.one_of(st.none(), st.sampled_from(["aapl", "SPY", "ZZZ", ""])),
    with_strategy=st.booleans(),
    since=times,
    limit=st.integers(1, 6),
)
def test_compiled_tca_page_is_the_orm_page(rows, symbol, with_strategy, since, limit):
    _store_tca(rows)
    strategy_id = Strategy.objects.values_list("id", flat=True).first() if with_strategy else None
    filters = TcaFilters(symbol=symbol, strategy_id=strategy_id, since=since)
    page = tca_page(filters, limit=limit)
    assert page == tca_page_orm(filters, limit=limit)
    while page.next_after_id is not None:
        filters = TcaFilters(**{**filters.__dict__, "after_id": page.next_after_id})
        page = tca_page(filters, limit=limit)
        assert page == tca_page_orm(filters, limit=limit)


def test_every_tca_filter_is_compiled_and_one_query(django_assert_num_queries):
    ids = _store_tca([("SPY", True, 5, Decimal("1.2500"), Decimal("10.5"))])
    strategy_id = Strategy.objects.get(name="s").id
    lists._compiled_page.cache_clear()
    every = TcaFilters(symbol="spy", strategy_id=strategy_id, since=T0, after_id=ids[0] + 1)
    with django_assert_num_queries(1):
        page = tca_page(every, limit=5)
    assert [(row["id"], row["symbol"], row["slippage_bps"]) for row in page.rows] == [
        (ids[0], "SPY", Decimal("1.2500"))
    ]
    compiled = lists._compiled_page("tca", "default", tuple(every.__dict__), 5)
    assert compiled is not None
    assert len(compiled.fields) == 4
    lists._compiled_page.cache_clear()


def test_every_filters_set_is_compiled_and_one_query(django_assert_num_queries):
    _store([("SPY", "planned", "s", "paper", 1, Decimal(1), None)])
    lists._compiled_page.cache_clear()
    every = ListFilters(
        status="planned", symbol="spy", strategy="s", account="paper", since=T0,
        until=T0 + timedelta(hours=1), after_id=10**12,
    )  # fmt: skip
    with django_assert_num_queries(1):
        page = decision_page(every, limit=5)
    assert [row["symbol"] for row in page.rows] == ["SPY"]
    assert lists._compiled_page.cache_info().currsize == 1
    compiled = lists._compiled_page("decisions", "default", tuple(every.__dict__), 5)
    assert compiled is not None
    assert len(compiled.fields) == 7


def test_a_shape_whose_parameters_differ_is_left_to_the_orm(monkeypatch):
    _store([("SPY", "planned", "s", "paper", 1, Decimal(1), None)])
    lists._compiled_page.cache_clear()
    json_field = TradeDecision._meta.get_field("gate_verdicts")  # its prep wraps the value
    monkeypatch.setattr(lists, "_lookup_field", lambda model, lookup: json_field)
    assert lists._compiled_page("decisions", "default", ("symbol",), 5) is None
    with CaptureQueriesContext(connection) as queries:
        page = decision_page(ListFilters(symbol="spy"), limit=5)
    assert [row["symbol"] for row in page.rows] == ["SPY"]
    assert len(queries.captured_queries) == 1
    lists._compiled_page.cache_clear()
