"""Per-strategy books of one lane, derived from its executions (never a second store).

Attribution: every execution links to the decision that sent it, and the decision names its
strategy; an execution without a decision (an order found at the broker that torghut never sent)
belongs to no strategy and is listed as `unattributed`. Each execution counts once, at its
current cumulative fill (`filled_qty` at `avg_fill_price`), so a fill is attributed exactly once
and the books survive any crash with the executions they are read from.

Position and the filled buy/sell quantities and notionals are SQL sums (one query,
`trading.selectors.allocation.book_totals`). The average cost and the realised PnL depend on the
order of the fills, so for the (strategy, symbol) pairs that ever sold a second query reads
those pairs' filled executions as plain tuples and `average_cost_pass` walks them. Ordering
rule: an execution's fills are treated as one fill at its average price, placed at the time of
its first recorded fill (the first `ExecutionTransition` with a filled quantity; the execution's
`created_at` when none was recorded), ties broken by execution id. Pairs that only bought need
no pass: their average cost is buy notional / buy quantity and their realised PnL is zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from trading.brokers.base import FINAL_ORDER_STATUSES
from trading.lanes import lane_config, lane_configs
from trading.models import Execution, ExecutionTransition, PositionSnapshot
from trading.selectors.allocation import ZERO, BookTotals, book_totals

PRICE_PLACES = Decimal("0.000001")


@dataclass(frozen=True)
class CostState:
    position: Decimal
    avg_cost: Decimal  # zero while flat
    realised_pnl: Decimal


@dataclass(frozen=True)
class BookLine:
    account_label: str
    strategy: str | None  # None: unattributed (orders without a decision)
    symbol: str
    position: Decimal
    avg_cost: Decimal | None  # None while flat
    realised_pnl: Decimal
    mark: Decimal | None
    unrealised_pnl: Decimal | None  # None: no mark for an open position
    buy_qty: Decimal
    sell_qty: Decimal
    buy_notional: Decimal
    sell_notional: Decimal


def average_cost_pass(fills: Iterable[tuple[str, Decimal, Decimal]]) -> CostState:
    """Average-cost method over (side, qty, price) fills in order. A fill on the side of the
    position (or from flat) moves the average cost; a fill against it realises
    (price - average cost) per unit closed, and the part beyond zero opens the other side at
    the fill's price."""
    position, avg, realised = ZERO, ZERO, ZERO
    for side, qty, price in fills:
        signed = qty if side == "buy" else -qty
        if position == 0 or (position > 0) == (signed > 0):
            held = abs(position)
            avg = (held * avg + qty * price) / (held + qty)
            position += signed
            continue
        closed = min(qty, abs(position))
        direction = 1 if position > 0 else -1
        realised += closed * (price - avg) * direction
        position += signed
        if position == 0:
            avg = ZERO
        elif qty > closed:  # flipped through zero: the rest opens at this fill's price
            avg = price
    return CostState(position, avg, realised)


def first_fill_at() -> Coalesce:
    """When an execution first filled (the books' fill-order rule, in the module docstring)."""
    first = (
        ExecutionTransition.objects.filter(execution=OuterRef("pk"), filled_qty__gt=0)
        .order_by("at", "pk")
        .values("at")[:1]
    )
    return Coalesce(Subquery(first), "created_at")


def _fills_of(
    *, account_label: str, pairs: list[tuple[str | None, str]]
) -> dict[tuple[str | None, str], list[tuple[str, Decimal, Decimal]]]:
    """The filled executions of the given (strategy, symbol) pairs, in fill order."""
    fills: dict[tuple[str | None, str], list[tuple[str, Decimal, Decimal]]] = {}
    if not pairs:
        return fills
    match = Q()
    for strategy, symbol in pairs:
        who = Q(decision__isnull=True) if strategy is None else Q(decision__strategy__name=strategy)
        match |= who & Q(symbol=symbol)
    rows = (
        Execution.objects.filter(
            match, account_label=account_label, filled_qty__gt=0, avg_fill_price__isnull=False
        )
        .annotate(first_fill_at=first_fill_at())
        .order_by("first_fill_at", "pk")
        .values_list("decision__strategy__name", "symbol", "side", "filled_qty", "avg_fill_price")
    )
    for strategy, symbol, side, qty, price in rows:
        if price is not None:  # always: the filter excludes executions without a fill price
            fills.setdefault((strategy, symbol), []).append((side, qty, price))
    return fills


def _line(account_label: str, t: BookTotals, cost: CostState, mark: Decimal | None) -> BookLine:
    avg = cost.avg_cost.quantize(PRICE_PLACES) if cost.position else None
    unrealised: Decimal | None = ZERO
    if cost.position:
        unrealised = None if mark is None else cost.position * (mark - cost.avg_cost)
    return BookLine(
        account_label=account_label,
        strategy=t.strategy,
        symbol=t.symbol,
        position=t.position,
        avg_cost=avg,
        realised_pnl=cost.realised_pnl.quantize(PRICE_PLACES),
        mark=mark,
        unrealised_pnl=None if unrealised is None else unrealised.quantize(PRICE_PLACES),
        buy_qty=t.buy_qty,
        sell_qty=t.sell_qty,
        buy_notional=t.buy_notional.quantize(PRICE_PLACES),
        sell_notional=t.sell_notional.quantize(PRICE_PLACES),
    )


def lane_books(*, account_label: str, marks: Mapping[str, Decimal] | None = None) -> list[BookLine]:
    """Every (strategy, symbol) book of the lane, strategies by name then unattributed.
    `marks`: last price per symbol for the unrealised PnL (see `lane_marks`)."""
    totals = book_totals(account_label=account_label)
    sold = [(t.strategy, t.symbol) for t in totals if t.sell_qty > 0]
    fills = _fills_of(account_label=account_label, pairs=sold)
    marks = marks or {}
    lines = []
    for t in totals:
        if t.sell_qty > 0:
            cost = average_cost_pass(fills.get((t.strategy, t.symbol), []))
        else:
            cost = CostState(t.position, t.buy_notional / t.buy_qty, ZERO)
        lines.append(_line(account_label, t, cost, marks.get(t.symbol)))
    return lines


def strategy_open_sells(*, account_label: str) -> dict[str, dict[str, Decimal]]:
    """Strategy -> symbol -> unfilled quantity of its open (non-final) sell orders, in one
    query. Orders without a decision belong to no strategy and are left out."""
    rows = (
        Execution.objects.filter(account_label=account_label, side="sell", decision__isnull=False)
        .exclude(status__in=FINAL_ORDER_STATUSES)
        .values_list("decision__strategy__name", "symbol")
        .annotate(rest=Sum(F("submitted_qty") - F("filled_qty")))
        .order_by()
    )
    offered: dict[str, dict[str, Decimal]] = {}
    for strategy, symbol, rest in rows:
        if rest:
            offered.setdefault(strategy, {})[symbol] = rest
    return offered


def lane_marks(*, account_label: str) -> dict[str, Decimal]:
    """Last price per symbol from the lane's latest account snapshot (market value / qty)."""
    snapshot = (
        PositionSnapshot.objects.filter(account_label=account_label).order_by("-as_of").first()
    )
    marks: dict[str, Decimal] = {}
    for row in snapshot.positions if snapshot is not None else []:
        qty = Decimal(row["qty"])
        if qty:
            marks[row["symbol"]] = Decimal(row["market_value"]) / qty
    return marks


def books_overview(*, account_label: str | None = None) -> list[BookLine]:
    """The books of one configured lane, or of every configured lane, at the last marks.
    Raises `UnknownLaneError` for a label that is not a configured lane."""
    labels = [lane_config(account_label).label] if account_label else []
    if not account_label:
        labels = [lane.label for lane in lane_configs()]
    lines: list[BookLine] = []
    for label in labels:
        lines.extend(lane_books(account_label=label, marks=lane_marks(account_label=label)))
    return lines
