"""The dashboard page's tables: the strategy books of every configured lane
(`trading.selectors.books.books_overview`) and the recent LLM spend (`LLMSpendDay`).

Query count: one for the spend, and per configured lane at most three for its books (the totals,
the ordered fills of the pairs that sold, the latest account snapshot for the marks), so the page
stays bounded by the number of lanes, never by the number of executions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import F

from trading.models import LLMSpendDay
from trading.selectors.books import BookLine, books_overview

SPEND_DAYS = 7  # UTC days of LLM spend shown, today included
SPEND_LIMIT = 50  # rows at most (every scope of every day shown)


@dataclass(frozen=True)
class SpendRow:
    day: date
    scope: str  # `all`, or the strategy's name for a `strategy:<id>` scope
    spent_usd: Decimal
    reviews: int


@dataclass(frozen=True)
class LedgerData:
    books: list[BookLine]
    spend: list[SpendRow]
    spend_since: date


def llm_spend_recent(*, today: date, days: int = SPEND_DAYS) -> list[SpendRow]:
    """Spend per UTC day and scope from `today - days + 1` on, newest day first, `all` before
    the strategies of that day. One query."""
    rows = (
        LLMSpendDay.objects.filter(day__gt=today - timedelta(days=days))
        .values_list("day", "scope", "strategy__name", "spent_usd", "reviews")
        .order_by("-day", F("strategy__name").asc(nulls_first=True))[:SPEND_LIMIT]
    )
    return [
        SpendRow(day, scope if name is None else f"strategy {name}", spent, reviews)
        for day, scope, name, spent, reviews in rows
    ]


def ledger_data(*, now: datetime) -> LedgerData:
    today = now.date()
    return LedgerData(
        books=books_overview(),
        spend=llm_spend_recent(today=today),
        spend_since=today - timedelta(days=SPEND_DAYS - 1),
    )
