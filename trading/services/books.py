"""The books check at every reconcile: per symbol, the lane's strategy books plus its
unattributed orders (executions without a decision) must add up to the broker's position.

A difference opens one `book_mismatch` incident per lane and symbol (a partial unique constraint
keeps it to one while open; the next check finds it open and adds nothing) and sets the gauge
`torghut_trading_book_mismatch{account,symbol}` to broker minus books. When the numbers agree
again the incident is resolved. A symbol with an order in flight (a non-final execution, or a
decision still `submitting`) is not judged in that round: its fills may have reached the broker
and not yet our executions.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from trading.brokers.base import FINAL_ORDER_STATUSES, Broker, BrokerError
from trading.metrics import BOOK_MISMATCH
from trading.models import Execution, Incident, TradeDecision
from trading.models.decisions import DecisionStatus
from trading.notifications import notify_incidents, notify_incidents_resolved
from trading.selectors.allocation import ZERO, BookTotals, book_totals

logger = logging.getLogger(__name__)

BOOK_MISMATCH_KIND = "book_mismatch"


@dataclass(frozen=True)
class SymbolBooks:
    symbol: str
    broker_qty: Decimal
    strategies: dict[str, Decimal]  # strategy name -> signed position
    unattributed: Decimal  # orders without a decision

    @property
    def books_qty(self) -> Decimal:
        return sum(self.strategies.values(), ZERO) + self.unattributed

    @property
    def difference(self) -> Decimal:
        return self.broker_qty - self.books_qty

    def as_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "broker_qty": str(self.broker_qty),
            "books_qty": str(self.books_qty),
            "difference": str(self.difference),
            "strategies": {name: str(qty) for name, qty in self.strategies.items()},
            "unattributed": str(self.unattributed),
        }


@dataclass
class BooksCheckResult:
    account_label: str
    checked: list[SymbolBooks] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    opened: int = 0
    resolved: int = 0

    @property
    def mismatched(self) -> list[SymbolBooks]:
        return [row for row in self.checked if row.difference != 0]


def books_compare(
    *, totals: Iterable[BookTotals], broker: Mapping[str, Decimal], symbols: Iterable[str]
) -> list[SymbolBooks]:
    """Pure: the books and the broker's position of every symbol in `symbols`, by symbol."""
    strategies: dict[str, dict[str, Decimal]] = {}
    unattributed: dict[str, Decimal] = {}
    for t in totals:
        if t.strategy is None:
            unattributed[t.symbol] = unattributed.get(t.symbol, ZERO) + t.position
        elif t.position:
            strategies.setdefault(t.symbol, {})[t.strategy] = t.position
    return [
        SymbolBooks(
            symbol=symbol,
            broker_qty=broker.get(symbol, ZERO),
            strategies=strategies.get(symbol, {}),
            unattributed=unattributed.get(symbol, ZERO),
        )
        for symbol in sorted(set(symbols))
    ]


def _symbols_in_flight(*, account_label: str) -> set[str]:
    open_orders = (
        Execution.objects.filter(account_label=account_label)
        .exclude(status__in=FINAL_ORDER_STATUSES)
        .values_list("symbol", flat=True)
    )
    submitting = TradeDecision.objects.filter(
        account_label=account_label, status=DecisionStatus.SUBMITTING
    ).values_list("symbol", flat=True)
    return set(open_orders) | set(submitting)


def _incidents_write(*, account_label: str, result: BooksCheckResult) -> None:
    now = timezone.now()
    open_incidents = Incident.objects.filter(
        kind=BOOK_MISMATCH_KIND, account_label=account_label, resolved_at__isnull=True
    )
    agreeing = [row.symbol for row in result.checked if row.difference == 0]
    with transaction.atomic():
        resolving = list(
            open_incidents.filter(symbol__in=agreeing).values_list("incident_key", flat=True)
        )
        result.resolved = Incident.objects.filter(
            incident_key__in=resolving, resolved_at__isnull=True
        ).update(resolved_at=now)
        notify_incidents_resolved(incident_keys=resolving)
        already = set(open_incidents.values_list("symbol", flat=True))
        new = [
            Incident(
                incident_key=f"book-mismatch:{uuid.uuid4().hex}",
                kind=BOOK_MISMATCH_KIND,
                reasons=[BOOK_MISMATCH_KIND],
                snapshot={"account_label": account_label, **row.as_json()},
                account_label=account_label,
                symbol=row.symbol,
            )
            for row in result.mismatched
            if row.symbol not in already
        ]
        # a concurrent check that opened the same incident first wins (partial unique index)
        result.opened = len(Incident.objects.bulk_create(new, ignore_conflicts=True))
        notify_incidents(incident_keys=[incident.incident_key for incident in new])
    for incident in new:
        logger.error("strategy books disagree with the broker", extra=incident.snapshot)


def books_reconcile(*, account_label: str, broker: Broker) -> BooksCheckResult | None:
    """Compare the lane's books with the broker's positions; open or resolve incidents. None
    when the broker's positions cannot be read (nothing is judged then)."""
    in_flight = _symbols_in_flight(account_label=account_label)
    totals = book_totals(account_label=account_label)
    try:
        positions = {p.symbol: p.qty for p in broker.list_positions()}
    except BrokerError as exc:
        logger.warning("books check: positions unavailable", extra={"error": str(exc)})
        return None
    open_symbols = Incident.objects.filter(
        kind=BOOK_MISMATCH_KIND, account_label=account_label, resolved_at__isnull=True
    ).values_list("symbol", flat=True)
    symbols = {t.symbol for t in totals} | set(positions) | set(open_symbols)
    result = BooksCheckResult(account_label=account_label, in_flight=sorted(symbols & in_flight))
    result.checked = books_compare(totals=totals, broker=positions, symbols=symbols - in_flight)
    for row in result.checked:
        BOOK_MISMATCH.labels(account=account_label, symbol=row.symbol).set(float(row.difference))
    _incidents_write(account_label=account_label, result=result)
    return result
