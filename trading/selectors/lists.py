"""Lean pages of decisions, executions and TCA rows for the list APIs: newest first by id, one
query per page (`.values()` with the strategy name joined in, no model instances, no per-row
queries), a page read one row long so the caller knows whether a next page exists without a
COUNT."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db.models import F, Q, QuerySet

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


def _filtered(rows: QuerySet[Any], filters: ListFilters, strategy_path: str) -> QuerySet[Any]:
    conditions = Q()
    if filters.status:
        conditions &= Q(status=filters.status)
    if filters.symbol:
        conditions &= Q(symbol=filters.symbol.upper())
    if filters.strategy:
        conditions &= Q(**{strategy_path: filters.strategy})
    if filters.account:
        conditions &= Q(account_label=filters.account)
    if filters.since:
        conditions &= Q(created_at__gte=filters.since)
    if filters.until:
        conditions &= Q(created_at__lt=filters.until)
    if filters.after_id:
        conditions &= Q(id__lt=filters.after_id)
    return rows.filter(conditions).order_by("-id")


def _page(rows: QuerySet[Any], limit: int) -> Page:
    found = list(rows[: limit + 1])
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


def decision_page(filters: ListFilters, *, limit: int) -> Page:
    return _page(_filtered(_decision_rows(), filters, "strategy__name"), limit)


def execution_page(filters: ListFilters, *, limit: int) -> Page:
    return _page(_filtered(_execution_rows(), filters, "decision__strategy__name"), limit)


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


def tca_page(filters: TcaFilters, *, limit: int) -> Page:
    """TCA rows, newest first by id, one query per page."""
    conditions = Q()
    if filters.symbol:
        conditions &= Q(symbol=filters.symbol.upper())
    if filters.strategy_id:
        conditions &= Q(strategy_id=filters.strategy_id)
    if filters.since:
        conditions &= Q(computed_at__gte=filters.since)
    if filters.after_id:
        conditions &= Q(id__lt=filters.after_id)
    rows = _tca_rows().filter(conditions).order_by("-id")
    return _page(rows, limit)
