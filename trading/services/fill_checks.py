"""Check paper and simulated fills against the market's minute bars (`trading.fill_realism`).

`fill_check_run` takes the unchecked fills of the paper lanes (executions in a final status with
a filled quantity and an average price: their fill will not change any more), oldest first and at
most `limit` per run, and stores one `FillCheck` per fill. It is idempotent: `FillCheck` is unique
per execution, rows are inserted with ON CONFLICT DO NOTHING, and a fill with a row is never
selected again, so a second run (or a concurrent one) checks nothing twice.

- The fill time is the broker's: the order's `filled_at` (Alpaca and the simulated broker both
  send it), else its `updated_at`, else when we last updated the execution. The bar is the minute
  bar opening at that time floored to the minute. An order filled across several minutes is
  checked, at its average price, against the minute of its last fill.
- A fill waits until its minute bar has closed and SETTLE has passed (bars are published shortly
  after the minute ends), so a `no_bar` verdict is not a bar that was still to come.
- Bars come through the market-data port (`get_bars`; by default the Alpaca data API,
  `trading.brokers.alpaca.AlpacaMarketData`) in one request per symbol and UTC day, spanning only
  the minutes of that day's fills. A request that fails writes nothing for its fills: they stay
  unchecked and the next run asks again.
Each inserted row counts once in `torghut_trading_fill_checks_total{verdict}`, after commit.
"""

from __future__ import annotations

import importlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from trading.brokers.base import FINAL_ORDER_STATUSES, BrokerError
from trading.fill_realism import FillTerms, fill_judge
from trading.lanes import paper_lane_labels
from trading.marketdata import Bar
from trading.metrics import FILL_CHECKS
from trading.models import Execution, FillCheck
from trading.signals.alpaca import BarsProvider
from trading.signals.types import parse_timestamp

BATCH_LIMIT = 500
SETTLE = timedelta(minutes=2)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class PendingFill:
    execution: Execution
    fill_ts: datetime
    bar_minute: datetime


@dataclass
class FillCheckRunResult:
    checked: dict[str, int] = field(default_factory=dict)  # verdict -> rows written
    not_settled: int = 0  # fills whose minute bar is not final yet
    failed: list[str] = field(default_factory=list)  # "SYMBOL day: error" per failed request

    def as_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "not_settled": self.not_settled, "failed": self.failed}


def fill_check_terms() -> FillTerms:
    participation = settings.TRADING_FILL_CHECK_MAX_PARTICIPATION
    tolerance = settings.TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS
    assert participation is not None and tolerance is not None  # both have defaults
    return FillTerms(max_participation=participation, price_tolerance_bps=tolerance)


def market_data_from_settings() -> BarsProvider:
    """The Alpaca data API adapter (looked up at call time, as the signal source does)."""
    adapter = importlib.import_module("trading.brokers.alpaca")
    return cast(BarsProvider, adapter.AlpacaMarketData.from_settings())


def fill_time(execution: Execution) -> datetime | None:
    raw = execution.raw_order if isinstance(execution.raw_order, dict) else {}
    for key in ("filled_at", "updated_at"):
        parsed = parse_timestamp(raw.get(key))
        if parsed is not None:
            return parsed
    return execution.last_update_at


def _unchecked(*, labels: Sequence[str], limit: int) -> list[Execution]:
    return list(
        Execution.objects.filter(
            account_label__in=labels,
            status__in=FINAL_ORDER_STATUSES,
            filled_qty__gt=0,
            avg_fill_price__isnull=False,
            fill_check__isnull=True,
        ).order_by("pk")[:limit]
    )


def _pending(executions: Sequence[Execution], now: datetime) -> tuple[list[PendingFill], int]:
    """The fills whose bar has closed and settled; how many must wait."""
    ready: list[PendingFill] = []
    waiting = 0
    for execution in executions:
        ts = fill_time(execution)
        if ts is None:  # never: last_update_at is set on every execution we fill
            waiting += 1
            continue
        minute = ts.replace(second=0, microsecond=0)
        if minute + MINUTE + SETTLE > now:
            waiting += 1
            continue
        ready.append(PendingFill(execution, ts, minute))
    return ready, waiting


def _bars_for(
    market_data: BarsProvider, symbol: str, fills: Sequence[PendingFill]
) -> dict[datetime, Bar]:
    """The symbol's 1-minute bars over its fills' minutes (one request), by open time."""
    start = min(f.bar_minute for f in fills)
    end = max(f.bar_minute for f in fills)
    bars = market_data.get_bars([symbol], start, end, "1Min")
    return {
        bar.timestamp: bar
        for bar in bars
        if bar.symbol == symbol and start <= bar.timestamp <= end and bar.timeframe == "1Min"
    }


def _row(fill: PendingFill, bar: Bar | None, terms: FillTerms, now: datetime) -> FillCheck:
    e = fill.execution
    assert e.avg_fill_price is not None  # selected with a fill price
    judged = fill_judge(side=e.side, price=e.avg_fill_price, qty=e.filled_qty, bar=bar, terms=terms)
    return FillCheck(
        execution=e,
        account_label=e.account_label,
        symbol=e.symbol,
        side=e.side,
        fill_ts=fill.fill_ts,
        price=e.avg_fill_price,
        qty=e.filled_qty,
        bar_minute=fill.bar_minute,
        bar_low=bar.low if bar else None,
        bar_high=bar.high if bar else None,
        bar_volume=bar.volume if bar else None,
        participation=judged.participation,
        verdict=judged.verdict,
        repriced_price=judged.repriced_price,
        haircut_notional=judged.haircut_notional,
        max_participation=terms.max_participation,
        price_tolerance_bps=terms.price_tolerance_bps,
        checked_at=now,
    )


def _insert(rows: list[FillCheck], stamp: datetime) -> dict[str, int]:
    """Insert the rows (a fill already checked by another run is skipped); the verdicts of the
    rows this call inserted."""
    if not rows:
        return {}
    with transaction.atomic():
        FillCheck.objects.bulk_create(rows, ignore_conflicts=True)
        mine = (
            FillCheck.objects.filter(
                execution_id__in=[r.execution_id for r in rows], checked_at=stamp
            )
            .values_list("verdict")
            .annotate(n=Count("pk"))
            .order_by()
        )
        counts = {verdict: n for verdict, n in mine}

        def count() -> None:
            for verdict, n in counts.items():
                FILL_CHECKS.labels(verdict=verdict).inc(n)

        transaction.on_commit(count)
    return counts


def fill_check_run(
    *,
    market_data: BarsProvider | None = None,
    now: datetime | None = None,
    limit: int = BATCH_LIMIT,
) -> FillCheckRunResult:
    """Check up to `limit` unchecked fills of the paper lanes against their minute bars."""
    now = now or timezone.now()
    result = FillCheckRunResult()
    ready, result.not_settled = _pending(_unchecked(labels=paper_lane_labels(), limit=limit), now)
    if not ready:
        return result
    market_data = market_data or market_data_from_settings()
    terms = fill_check_terms()
    groups: dict[tuple[str, date], list[PendingFill]] = defaultdict(list)
    for fill in ready:
        groups[(fill.execution.symbol, fill.bar_minute.date())].append(fill)
    totals: Counter[str] = Counter()
    for (symbol, day), fills in sorted(groups.items()):
        try:
            bars = _bars_for(market_data, symbol, fills)
        except BrokerError as exc:
            result.failed.append(f"{symbol} {day.isoformat()}: {type(exc).__name__}: {exc}"[:300])
            continue
        rows = [_row(f, bars.get(f.bar_minute), terms, now) for f in fills]
        totals.update(_insert(rows, now))
    result.checked = dict(sorted(totals.items()))
    return result
