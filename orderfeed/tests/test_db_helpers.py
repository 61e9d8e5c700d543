"""The set-based write helpers the order feed's hot path uses (`torghut_site.db`), on Postgres."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from orderfeed.tests.conftest import make_order
from torghut_site.db import (
    JsonText,
    bulk_update_fields,
    bulk_update_rows,
    bulk_upsert_rows,
    json_records,
    pg_array_literal,
)
from trading.models import Execution, ExecutionTcaMetric

pytestmark = pytest.mark.django_db

AWKWARD = ["plain", "a,b", "{x}", "NULL", 'q"uote', "back\\slash", " space ", "", "ünï"]


def test_pg_array_literal_quotes_every_string_and_escapes():
    assert pg_array_literal([1, 22, -3]) == "{1,22,-3}"
    assert pg_array_literal([]) == "{}"
    assert pg_array_literal(['a"b', "c\\d", "NULL"]) == '{"a\\"b","c\\\\d","NULL"}'


def test_pg_array_literal_round_trips_through_postgres():
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[], %s::bigint[]", [pg_array_literal(AWKWARD), "{1,2}"])
        texts, numbers = cursor.fetchone()
    assert texts == AWKWARD
    assert numbers == [1, 2]


def test_json_records_keys_values_and_embedded_json():
    fields = [Execution._meta.get_field("filled_qty"), Execution._meta.get_field("raw_order")]
    at = datetime(2026, 3, 3, 14, 30, 1, 123456, tzinfo=UTC)
    out = json_records(
        fields,
        [(7, Decimal("4.50"), JsonText('{"a": 1}')), (8, at, {"b": [1, 2]})],
        with_pk=True,
    )
    assert out == (
        '[{"pk":7,"c0":"4.50","c1":{"a": 1}},'
        '{"pk":8,"c0":"2026-03-03T14:30:01.123456+00:00","c1":{"b":[1,2]}}]'
    )


def test_json_records_falls_back_to_the_standard_library_for_huge_ints():
    fields = [Execution._meta.get_field("raw_order")]
    out = json_records(fields, [({"n": 10**30, "p": Decimal("1.5")},)], with_pk=False)
    assert out == '[{"c0": {"n": 1000000000000000000000000000000, "p": "1.5"}}]'


def test_bulk_update_fields_and_rows_write_exact_values():
    _, first = make_order(n=1)
    _, second = make_order(n=2)
    at = datetime(2026, 3, 3, 14, 30, 1, 123456, tzinfo=UTC)
    first.status, first.filled_qty, first.avg_fill_price = "partially_filled", Decimal("4"), None
    first.raw_order = {"id": "x", "weird": AWKWARD}
    first.last_update_at = at
    assert (
        bulk_update_fields(
            Execution, [first], ["status", "filled_qty", "avg_fill_price", "raw_order"]
        )
        == 1
    )
    assert (
        bulk_update_rows(
            Execution,
            ["status", "filled_qty", "avg_fill_price", "raw_order", "last_update_at"],
            [(second.pk, "filled", Decimal("10"), Decimal("100.123456"), JsonText("[1]"), at)],
        )
        == 1
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.filled_qty, first.avg_fill_price) == (
        "partially_filled",
        Decimal("4.00000000"),
        None,
    )
    assert first.raw_order == {"id": "x", "weird": AWKWARD}
    assert first.last_update_at is None  # not in the updated fields
    assert (second.status, second.filled_qty, second.avg_fill_price) == (
        "filled",
        Decimal("10.00000000"),
        Decimal("100.123456"),
    )
    assert second.raw_order == [1]
    assert second.last_update_at == at


def test_bulk_upsert_rows_inserts_then_updates_on_the_unique_columns():
    _, first = make_order(n=1)
    _, second = make_order(n=2)
    at = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
    columns = [
        "execution_id",
        "account_label",
        "symbol",
        "side",
        "filled_qty",
        "signed_qty",
        "computed_at",
    ]
    rows = [
        (first.pk, "paper", "AAPL", "buy", Decimal("4"), Decimal("4"), at),
        (second.pk, "paper", "MSFT", "sell", Decimal("1.5"), Decimal("-1.5"), at),
    ]
    kwargs = {"unique_columns": ["execution_id"], "update_columns": ["symbol", "filled_qty"]}
    assert bulk_upsert_rows(ExecutionTcaMetric, columns, rows, **kwargs) == 2
    assert bulk_upsert_rows(ExecutionTcaMetric, columns, [], **kwargs) == 0
    assert (
        bulk_upsert_rows(
            ExecutionTcaMetric,
            columns,
            [(first.pk, "other", "AAPL.X", "sell", Decimal("10"), Decimal("-10"), at)],
            **kwargs,
        )
        == 1
    )
    stored = {
        m.execution_id: (m.account_label, m.symbol, m.side, m.filled_qty)
        for m in ExecutionTcaMetric.objects.all()
    }
    assert stored == {
        first.pk: ("paper", "AAPL.X", "buy", Decimal("10.00000000")),
        second.pk: ("paper", "MSFT", "sell", Decimal("1.50000000")),
    }
