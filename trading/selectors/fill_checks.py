"""Fill realism of a strategy over a window: its paper fills' checks (`FillCheck`) and its PnL
recomputed with the flagged fills repriced conservatively (`trading.fill_realism`).

The fills are the strategy's executions on the paper lanes with a filled quantity, each counted
once at its cumulative fill, placed in time by the books' rule (`trading.selectors.books`: the
first recorded fill) and kept when that time is in [since, until]. Per lane, strategy and symbol
(a book of several strategies keeps one book each) the PnL is
the books' average-cost realised PnL over those fills, starting flat at the window's start; the
repriced PnL is the same pass with each flagged fill at its repriced price. A still-open position
adds nothing to either (realised only), so the haircut in bps, over every fill of the window, is
the measure that sees every flagged fill:
    haircut_bps = sum(haircut_notional) / sum(price x qty) x 10000.
Fills without a check (not yet checked, or not checkable) and `no_bar` fills are counted and
reported, never repriced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from trading.fill_realism import BPS, FLAGGED, NO_BAR, PRICE_PLACES, ZERO
from trading.models import Execution
from trading.selectors.books import average_cost_pass, first_fill_at

BPS_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class FillRealism:
    strategy: str
    account_labels: tuple[str, ...]
    since: datetime | None
    until: datetime
    fills_total: int
    fills_checked: int
    fills_flagged: int
    flagged_by_verdict: dict[str, int]
    fills_no_bar: int
    fills_unchecked: int
    traded_notional: Decimal
    haircut_notional: Decimal
    haircut_bps: Decimal  # zero without traded notional
    net_pnl: Decimal  # realised, average cost
    repriced_net_pnl: Decimal

    def as_json(self) -> dict[str, Any]:
        """The evidence block (Decimal money as exact strings, times as ISO 8601)."""
        return {
            "strategy": self.strategy,
            "account_labels": list(self.account_labels),
            "window": {
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat(),
            },
            "fills_total": self.fills_total,
            "fills_checked": self.fills_checked,
            "fills_flagged": self.fills_flagged,
            "flagged_by_verdict": self.flagged_by_verdict,
            "fills_no_bar": self.fills_no_bar,
            "fills_unchecked": self.fills_unchecked,
            "traded_notional": str(self.traded_notional),
            "haircut_notional": str(self.haircut_notional),
            "haircut_bps": str(self.haircut_bps),
            "pnl_basis": "realised_average_cost",
            "net_pnl": str(self.net_pnl),
            "repriced_net_pnl": str(self.repriced_net_pnl),
        }


# the check's columns are None for a fill without a check (a left join the stubs cannot see)
_Row = tuple[
    str, str, str, str, Decimal, Decimal | None, str | None, Decimal | None, Decimal | None
]


def _rows(
    *, strategies: Sequence[str], labels: Sequence[str], since: datetime | None, until: datetime
) -> list[_Row]:
    """(lane, strategy, symbol, side, qty, price, verdict, repriced, haircut) of the window's
    fills, in fill order; verdict None: no check yet."""
    rows = (
        Execution.objects.filter(
            account_label__in=labels,
            decision__strategy__name__in=list(strategies),
            filled_qty__gt=0,
            avg_fill_price__isnull=False,
        )
        .annotate(first_fill_at=first_fill_at())
        .filter(first_fill_at__lte=until)
    )
    if since is not None:
        rows = rows.filter(first_fill_at__gte=since)
    return cast(
        list[_Row],
        list(
            rows.order_by("first_fill_at", "pk").values_list(
                "account_label",
                "decision__strategy__name",
                "symbol",
                "side",
                "filled_qty",
                "avg_fill_price",
                "fill_check__verdict",
                "fill_check__repriced_price",
                "fill_check__haircut_notional",
            )
        ),
    )


Books = dict[tuple[str, str, str], list[tuple[str, Decimal, Decimal]]]


def _realised(fills: Books) -> Decimal:
    return sum((average_cost_pass(book).realised_pnl for book in fills.values()), ZERO).quantize(
        PRICE_PLACES
    )


def strategy_fill_realism(
    *,
    strategy: str,
    labels: Sequence[str],
    since: datetime | None,
    until: datetime,
    members: Sequence[str] = (),
) -> FillRealism:
    """The strategy's fills on `labels` (paper lanes) whose first fill is in [since, until];
    `members`: the strategies of a book named `strategy` (each keeps its own book)."""
    names = list(members) or [strategy]
    rows = _rows(strategies=names, labels=labels, since=since, until=until)
    actual: Books = defaultdict(list)
    repriced: Books = defaultdict(list)
    by_verdict: dict[str, int] = defaultdict(int)
    notional, haircut, unchecked = ZERO, ZERO, 0
    for lane, name, symbol, side, qty, price, verdict, new_price, cut in rows:
        if price is None:  # never: the filter excludes executions without a fill price
            continue
        notional += qty * price
        actual[(lane, name, symbol)].append((side, qty, price))
        at = new_price if verdict in FLAGGED and new_price is not None else price
        repriced[(lane, name, symbol)].append((side, qty, at))
        if verdict is None:
            unchecked += 1
            continue
        by_verdict[verdict] += 1
        haircut += cut or ZERO
    flagged_by = {v: by_verdict[v] for v in FLAGGED if by_verdict.get(v)}
    bps = (haircut / notional * BPS if notional else ZERO).quantize(BPS_PLACES)
    return FillRealism(
        strategy=strategy,
        account_labels=tuple(labels),
        since=since,
        until=until,
        fills_total=len(rows),
        fills_checked=len(rows) - unchecked,
        fills_flagged=sum(flagged_by.values()),
        flagged_by_verdict=flagged_by,
        fills_no_bar=by_verdict.get(NO_BAR, 0),
        fills_unchecked=unchecked,
        traded_notional=notional.quantize(PRICE_PLACES),
        haircut_notional=haircut.quantize(PRICE_PLACES),
        haircut_bps=bps,
        net_pnl=_realised(actual),
        repriced_net_pnl=_realised(repriced),
    )
