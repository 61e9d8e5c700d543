"""Hypothesis strategies for one order's life at the broker and how its updates may arrive.

A life is what the broker reports, in its true order: optionally `new`, up to three partial fills
with a growing cumulative quantity (each with the cumulative average price), then optionally one
end: fill, canceled, expired, replaced or rejected (a report carries the whole order, as Alpaca's
do: an end carries the fill so far). A delivery is any permutation of the reports with
duplicates, interleaved with another order's, stamped with the feed's sequence and/or event time
or neither (a snapshot from the broker's API has neither).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from trading.orderstate import OrderUpdate

QTY = Decimal("10")
START = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
STAMPS = ("seq_and_time", "seq", "time", "none")
_AVG_PLACES = Decimal("0.0001")
_ENDS = {
    "fill": "filled",
    "canceled": "canceled",
    "expired": "expired",
    "replaced": "replaced",
    "rejected": "rejected",
}


@dataclass(frozen=True)
class Report:
    """One broker report of an order: its place in the true order, event, status and fill."""

    step: int
    event: str
    status: str
    filled: Decimal
    avg: Decimal | None

    @property
    def ts(self) -> datetime:
        return START + timedelta(seconds=self.step)

    def update(self, stamps: str = "none") -> OrderUpdate:
        """As `trading.orderstate` sees it, with the feed's stamps (`STAMPS`)."""
        return OrderUpdate(
            self.status,
            self.filled,
            self.avg,
            self.ts if stamps in ("seq_and_time", "time") else None,
            self.step + 1 if stamps in ("seq_and_time", "seq") else None,
        )


@st.composite
def order_lives(draw: st.DrawFn) -> tuple[Report, ...]:
    """The reports of one order of QTY, in their true order."""
    shapes: list[tuple[str, str, Decimal, Decimal | None]] = []
    if draw(st.booleans()):
        shapes.append(("new", "new", Decimal(0), None))
    filled = Decimal(0)
    notional = Decimal(0)
    avg: Decimal | None = None
    quarters = draw(st.lists(st.integers(1, 39), max_size=3, unique=True))
    end = draw(st.sampled_from([None, *_ENDS]))
    for cumulative in [Decimal(q) / 4 for q in sorted(quarters)] + ([QTY] if end == "fill" else []):
        price = Decimal(draw(st.integers(9000, 11000))) / 100
        notional += (cumulative - filled) * price
        filled = cumulative
        avg = (notional / filled).quantize(_AVG_PLACES)
        if cumulative < QTY:
            shapes.append(("partial_fill", "partially_filled", filled, avg))
    if end is not None:
        shapes.append((end, _ENDS[end], filled, avg))
    if not shapes:
        shapes.append(("new", "new", Decimal(0), None))
    return tuple(Report(step, *shape) for step, shape in enumerate(shapes))


@dataclass(frozen=True)
class Case:
    """Orders' true lives, their stamps, and one delivery: (order index, report) in arrival
    order, cut into feed batches at `cuts`."""

    lives: tuple[tuple[Report, ...], ...]
    stamps: tuple[str, ...]
    delivery: tuple[tuple[int, Report], ...]
    cuts: tuple[int, ...]
    decision_status: str

    def batches(self) -> list[list[tuple[int, int, Report]]]:
        """The delivery as batches of (log offset, order index, report)."""
        batches: list[list[tuple[int, int, Report]]] = [[]]
        for offset, (order, report) in enumerate(self.delivery):
            if offset in self.cuts:
                batches.append([])
            batches[-1].append((offset, order, report))
        return [b for b in batches if b]


@st.composite
def cases(draw: st.DrawFn, orders: int = 2) -> Case:
    lives = tuple(draw(order_lives()) for _ in range(orders))
    copies = [
        (order, report)
        for order, life in enumerate(lives)
        for report in life
        for _ in range(draw(st.integers(1, 2)))
    ]
    delivery = tuple(draw(st.permutations(copies)))
    cuts = tuple(draw(st.sets(st.integers(1, max(1, len(delivery) - 1)), max_size=3)))
    return Case(
        lives=lives,
        stamps=tuple(draw(st.sampled_from(STAMPS)) for _ in range(orders)),
        delivery=delivery,
        cuts=cuts,
        decision_status=draw(st.sampled_from(["submitted", "submitting"])),
    )
