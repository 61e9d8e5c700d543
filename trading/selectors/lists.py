"""Lean pages of decisions, executions and TCA rows for the list APIs: newest first by id, one
query per page (`.values()` with the strategy name joined in, no model instances, no per-row
queries), a page read one row long so the caller knows whether a next page exists without a
COUNT."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any, cast

from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.models import F, Field, Model, Q, QuerySet

from torghut_site.compiled import CompiledValues, compiled_values, fetch_values
from trading.models import Execution, ExecutionTcaMetric, TradeDecision

DECISION_ROW_FIELDS = (
    "id",
    "account_label",
    "symbol",
    "timeframe",
    "event_ts",
    "action",
    "qty",
    "order_type",
    "limit_price",
    "price",
    "status",
    "reject_reason",
    "client_order_id",
    "executed_at",
    "created_at",
)
EXECUTION_ROW_FIELDS = (
    "id",
    "decision_id",
    "account_label",
    "broker",
    "client_order_id",
    "symbol",
    "side",
    "order_type",
    "submitted_qty",
    "filled_qty",
    "avg_fill_price",
    "status",
    "submitted_at",
    "last_update_at",
    "created_at",
)

TCA_ROW_FIELDS = (
    "id",
    "execution_id",
    "strategy_id",
    "account_label",
    "symbol",
    "side",
    "arrival_price",
    "avg_fill_price",
    "filled_qty",
    "slippage_bps",
    "shortfall_notional",
    "computed_at",
)


@dataclass(frozen=True)
class ListFilters:
    """What a list page asks for. `after_id`: the cursor, rows with a smaller id (older) only.
    `since`/`until`: the row's `created_at`, inclusive and exclusive."""

    status: str | None = None
    symbol: str | None = None
    strategy: str | None = None  # strategy name
    account: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_id: int | None = None


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_after_id: int | None  # None: this is the last page


# The WHERE of a list page: (filters attribute, lookup), in the order the conditions are
# joined (the compiled pages take their parameters in this order).
Lookups = tuple[tuple[str, str], ...]


def _list_lookups(strategy_path: str) -> Lookups:
    """A decision or execution page's filters (`ListFilters`); the strategy name's path per list."""
    return (
        ("status", "status"),
        ("symbol", "symbol"),
        ("strategy", strategy_path),
        ("account", "account_label"),
        ("since", "created_at__gte"),
        ("until", "created_at__lt"),
        ("after_id", "id__lt"),
    )


# a TCA page's filters (`TcaFilters`): `since` is on the row's `computed_at`
_TCA_LOOKUPS: Lookups = (
    ("symbol", "symbol"),
    ("strategy_id", "strategy_id"),
    ("since", "computed_at__gte"),
    ("after_id", "id__lt"),
)


def _asked(filters: Any, lookups: Lookups) -> list[tuple[str, str, Any]]:
    """The filters set (a falsy value is no filter): (attribute, lookup, value)."""
    asked = []
    for attr, lookup in lookups:
        value = getattr(filters, attr)
        if value:
            value = value.upper() if attr == "symbol" else value
            asked.append((attr, lookup, value))
    return asked


def _filtered(rows: QuerySet[Any], filters: Any, lookups: Lookups) -> QuerySet[Any]:
    conditions = Q()
    for _, lookup, value in _asked(filters, lookups):
        conditions &= Q(**{lookup: value})
    return rows.filter(conditions).order_by("-id")


def _page(rows: QuerySet[Any], limit: int) -> Page:
    return _cut(list(rows[: limit + 1]), limit)


def _cut(found: list[dict[str, Any]], limit: int) -> Page:
    if len(found) > limit:
        return Page(rows=found[:limit], next_after_id=found[limit - 1]["id"])
    return Page(rows=found, next_after_id=None)


# The unfiltered row querysets, built once per process: resolving the selected columns is about
# a fifth of a page's Python time, and a page only clones these (filter, order, slice), never
# evaluates them.
@cache
def _decision_rows() -> QuerySet[Any]:
    rows: QuerySet[Any] = TradeDecision.objects.values(
        *DECISION_ROW_FIELDS, strategy_name=F("strategy__name")
    )
    return rows


@cache
def _execution_rows() -> QuerySet[Any]:
    rows: QuerySet[Any] = Execution.objects.values(*EXECUTION_ROW_FIELDS)
    return rows


@cache
def _tca_rows() -> QuerySet[Any]:
    rows: QuerySet[Any] = ExecutionTcaMetric.objects.values(*TCA_ROW_FIELDS)
    return rows


# A compiled page per (filters set, limit): Django's SQL, columns and converters for that shape,
# run with the request's values (torghut_site.compiled). Each filter's value goes through its
# field's `get_db_prep_value`, as the lookup would send it; a shape whose compiled parameters are
# not exactly those (checked once, on distinct stand-in values) is left to the ORM.
_STAND_INS: dict[str, Any] = {
    "status": "stand-in status",
    "symbol": "STAND-IN SYMBOL",
    "strategy": "stand-in strategy",
    "account": "stand-in account",
    "since": datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=UTC),
    "until": datetime(2002, 3, 4, 5, 6, 7, 8, tzinfo=UTC),
    "after_id": 987654321,
    "strategy_id": 876543219,
}


@dataclass(frozen=True)
class _CompiledPage:
    values: CompiledValues
    fields: tuple[Field[Any, Any], ...]  # per parameter, the field that preps the value


def _lookup_field(model: type[Model], lookup: str) -> Field[Any, Any]:
    field: Any = None
    for part in lookup.split("__"):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            break  # the lookup's name (gte, lt)
        if field.is_relation:
            model = field.related_model
    return cast("Field[Any, Any]", field)


@dataclass(frozen=True)
class _List:
    rows_of: Callable[[], QuerySet[Any]]
    model: type[Model]
    filters: type[Any]  # ListFilters or TcaFilters
    lookups: Lookups


@cache
def _lists() -> dict[str, _List]:
    return {
        "decisions": _List(
            _decision_rows, TradeDecision, ListFilters, _list_lookups("strategy__name")
        ),
        "executions": _List(
            _execution_rows, Execution, ListFilters, _list_lookups("decision__strategy__name")
        ),
        "tca": _List(_tca_rows, ExecutionTcaMetric, TcaFilters, _TCA_LOOKUPS),
    }


@lru_cache(maxsize=256)
def _compiled_page(
    name: str, alias: str, shape: tuple[str, ...], limit: int
) -> _CompiledPage | None:
    listed = _lists()[name]
    stand_ins = listed.filters(**{attr: _STAND_INS[attr] for attr in shape})
    asked = _asked(stand_ins, listed.lookups)
    rows = _filtered(listed.rows_of().using(alias), stand_ins, listed.lookups)[: limit + 1]
    values = compiled_values(rows)
    fields = tuple(_lookup_field(listed.model, lookup) for _, lookup, _ in asked)
    if values.params != _params(fields, asked, connections[alias]):
        return None
    return _CompiledPage(values=values, fields=fields)


def _params(
    fields: tuple[Field[Any, Any], ...], asked: list[tuple[str, str, Any]], connection: Any
) -> tuple[Any, ...]:
    return tuple(
        field.get_db_prep_value(value, connection)
        for field, (_, _, value) in zip(fields, asked, strict=True)
    )


def _list_page(name: str, filters: Any, limit: int) -> Page:
    listed = _lists()[name]
    asked = _asked(filters, listed.lookups)
    alias = listed.rows_of().db
    compiled = _compiled_page(name, alias, tuple(attr for attr, _, _ in asked), limit)
    if compiled is None:
        return _page(_filtered(listed.rows_of(), filters, listed.lookups), limit)
    params = _params(compiled.fields, asked, connections[alias])
    return _cut(fetch_values(compiled.values, params), limit)


def decision_page_orm(filters: ListFilters, *, limit: int) -> Page:
    """The decision page as the ORM reads it (the compiled page's reference)."""
    return _page(_filtered(_decision_rows(), filters, _lists()["decisions"].lookups), limit)


def decision_page(filters: ListFilters, *, limit: int) -> Page:
    """The same page as `decision_page_orm`, from the page's compiled SQL (one query)."""
    return _list_page("decisions", filters, limit)


def execution_page_orm(filters: ListFilters, *, limit: int) -> Page:
    """The execution page as the ORM reads it (the compiled page's reference)."""
    return _page(_filtered(_execution_rows(), filters, _lists()["executions"].lookups), limit)


def execution_page(filters: ListFilters, *, limit: int) -> Page:
    """The same page as `execution_page_orm`, from the page's compiled SQL (one query)."""
    return _list_page("executions", filters, limit)


def decision_detail(decision_id: int) -> TradeDecision | None:
    return TradeDecision.objects.select_related("strategy").filter(id=decision_id).first()


def execution_detail(execution_id: int) -> Execution | None:
    return Execution.objects.select_related("tca").filter(id=execution_id).first()


@dataclass(frozen=True)
class TcaFilters:
    """What a TCA page asks for: `since` on `computed_at` (inclusive), `after_id` the cursor."""

    symbol: str | None = None
    strategy_id: int | None = None
    since: datetime | None = None
    after_id: int | None = None


def tca_page_orm(filters: TcaFilters, *, limit: int) -> Page:
    """The TCA page as the ORM reads it (the compiled page's reference)."""
    return _page(_filtered(_tca_rows(), filters, _lists()["tca"].lookups), limit)


def tca_page(filters: TcaFilters, *, limit: int) -> Page:
    """The same page as `tca_page_orm`, from the page's compiled SQL (one query)."""
    return _list_page("tca", filters, limit)
