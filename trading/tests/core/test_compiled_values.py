"""A `.values()` queryset compiled once (torghut_site/compiled.py, tried on decision rows) gives
the rows the ORM gives: on Postgres through binary result rows and through text ones, on SQLite through Django's
converters; queries are logged as the ORM's are."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.db.backends.sqlite3.base import DatabaseWrapper as SqliteWrapper
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from torghut_site import compiled as compiled_module
from torghut_site.compiled import compiled_values, fetch_values
from trading.models import Strategy, TradeDecision

pytestmark = pytest.mark.django_db

FIELDS = ("id", "symbol", "qty", "limit_price", "event_ts", "executed_at", "created_at")


def _decisions(using: str = "default") -> None:
    strategy = Strategy.objects.using(using).create(name="s", strategy_type="legacy_macd_rsi")
    for n, (qty, limit, executed) in enumerate(
        [
            (Decimal("0.00000001"), None, None),
            (Decimal("1234.56780001"), Decimal("0.000100"), datetime(2026, 1, 2, tzinfo=UTC)),
            (Decimal(0), Decimal("12345.678901"), None),
        ]
    ):
        TradeDecision.objects.using(using).create(
            strategy=strategy,
            account_label="paper",
            symbol=f"S{n}",
            timeframe="1Min",
            event_ts=datetime(2026, 3, 3, 15, 0, 0, 123456 * n, tzinfo=UTC),
            action="buy",
            qty=qty,
            limit_price=limit,
            executed_at=executed,
            decision_hash=f"{n:064x}",
            client_order_id=f"tg-{n:045x}",
        )


def _rows(using: str = "default") -> Any:
    return (
        TradeDecision.objects.using(using)
        .values(*FIELDS, strategy_name=F("strategy__name"))
        .filter(symbol__in=["S0", "S1", "S2"])
        .order_by("-id")
    )


def test_compiled_rows_are_the_orm_rows_binary_and_text(monkeypatch):
    _decisions()
    queryset = _rows()
    expected = list(queryset)
    compiled = compiled_values(queryset)
    assert compiled.names == (*FIELDS, "strategy_name")
    binary_reads = []
    real = compiled_module._fetch_binary

    def spy(*args: Any) -> Any:
        binary_reads.append(1)
        return real(*args)

    monkeypatch.setattr(compiled_module, "_fetch_binary", spy)
    binary = fetch_values(compiled, compiled.params)
    assert binary == expected
    assert binary_reads == [1]
    assert [type(row["qty"]) for row in binary] == [Decimal] * 3
    assert [row["event_ts"].tzinfo for row in binary] == [UTC] * 3
    assert [str(row["qty"]) for row in binary] == ["0E-8", "1234.56780001", "1E-8"]
    monkeypatch.setattr(compiled_module, "_binary_rows", lambda connection: False)
    assert fetch_values(compiled, compiled.params) == expected
    assert binary_reads == [1]  # the text rows did not come from the binary path


def test_compiled_rows_are_logged_like_orm_queries():
    _decisions()
    compiled = compiled_values(_rows())
    with CaptureQueriesContext(connection) as queries:
        fetch_values(compiled, compiled.params)
    assert len(queries.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].startswith('SELECT "trading_tradedecision"."id"')


def test_binary_rows_only_when_the_session_zone_is_utc(monkeypatch):
    assert compiled_module._binary_rows(connection) is True
    wrapper = connections["default"]
    monkeypatch.setitem(wrapper.__dict__, "timezone_name", "Europe/Paris")  # a cached_property
    assert compiled_module._binary_rows(wrapper) is False


def test_a_queryset_with_extra_columns_is_refused():
    queryset = get_user_model().objects.extra(select={"one": "1"}).values("id", "one")  # noqa: S610
    with pytest.raises(ValueError, match="plain .values"):
        compiled_values(queryset)


@pytest.fixture
def sqlite_alias(tmp_path):
    """A SQLite database beside the test Postgres one, holding the two tables the rows need."""
    alias = "compiled_sqlite"
    wrapper = SqliteWrapper(
        {**connections["default"].settings_dict, "ENGINE": "django.db.backends.sqlite3",
         "NAME": str(tmp_path / "db.sqlite3"), "OPTIONS": {}, "TIME_ZONE": None},
        alias=alias,
    )  # fmt: skip
    connections[alias] = wrapper
    with wrapper.schema_editor() as editor:
        editor.create_model(Strategy)
        editor.create_model(TradeDecision)
    yield alias
    wrapper.close()
    del connections[alias]


def test_compiled_rows_on_sqlite_go_through_djangos_converters(sqlite_alias):
    _decisions(sqlite_alias)
    queryset = _rows(sqlite_alias)
    expected = list(queryset)
    compiled = compiled_values(queryset)
    assert compiled.converters  # decimals and times are text in SQLite
    rows = fetch_values(compiled, compiled.params)
    assert rows == expected
    assert rows[1]["qty"] == Decimal("1234.56780001")
    assert rows[1]["executed_at"] == datetime(2026, 1, 2, tzinfo=UTC)
    assert rows[0]["limit_price"] == Decimal("12345.678901")
