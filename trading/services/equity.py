"""A lane's equity watermarks and the loss limits read from them.

Once per cycle the lane's equity (from the account snapshot: cash plus positions marked to the
broker's prices, so realised and unrealised P&L alike) moves two marks on `LaneState`:

- the high-water mark, which only rises (`GREATEST` inside the UPDATE, never read-then-write);
  drawdown = (mark - equity) / mark;
- the session start: the first cycle of a new US/Eastern calendar day stores the equity it sees
  (a compare-and-set on `session_day`, so two workers agree on one start); daily loss =
  (start - equity) / start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from trading.metrics import LANE_DRAWDOWN
from trading.models import LaneState

SESSION_TZ = ZoneInfo("America/New_York")
MAX_DRAWDOWN = "max_drawdown_exceeded"
DAILY_LOSS = "daily_loss_limit_exceeded"
MONEY = Decimal("0.000001")


def session_day_of(now: datetime) -> date:
    """The trading session a moment belongs to: its US/Eastern calendar date."""
    return now.astimezone(SESSION_TZ).date()


@dataclass(frozen=True)
class LaneEquity:
    account_label: str
    equity: Decimal
    high_water_mark: Decimal
    session_day: date
    session_start_equity: Decimal

    @property
    def drawdown(self) -> Decimal:
        if self.high_water_mark <= 0:
            return Decimal(0)
        return (self.high_water_mark - self.equity) / self.high_water_mark

    @property
    def daily_loss(self) -> Decimal:
        if self.session_start_equity <= 0:
            return Decimal(0)
        return (self.session_start_equity - self.equity) / self.session_start_equity

    def as_json(self) -> dict[str, Any]:
        return {
            "lane": self.account_label,
            "equity": str(self.equity),
            "high_water_mark": str(self.high_water_mark),
            "drawdown": f"{self.drawdown:.6f}",
            "session_day": self.session_day.isoformat(),
            "session_start_equity": str(self.session_start_equity),
            "daily_loss": f"{self.daily_loss:.6f}",
        }


def lane_equity_track(*, account_label: str, equity: Decimal, now: datetime) -> LaneEquity:
    """Move the lane's marks to `equity` seen at `now` and return them as stored."""
    equity = equity.quantize(MONEY)  # as the money fields store it
    day = session_day_of(now)
    LaneState.objects.filter(account_label=account_label).update(
        last_equity=equity,
        equity_high_water_mark=Greatest(
            Coalesce(F("equity_high_water_mark"), Value(equity)), Value(equity)
        ),
        updated_at=timezone.now(),
    )
    # a new session day: the first worker to get here stores the start, the others find it set
    LaneState.objects.filter(account_label=account_label).filter(
        Q(session_day__isnull=True) | Q(session_day__lt=day)
    ).update(session_day=day, session_start_equity=equity)
    hwm, day_stored, start = LaneState.objects.values_list(
        "equity_high_water_mark", "session_day", "session_start_equity"
    ).get(account_label=account_label)
    # both UPDATEs above set these columns: NULL here means the lane row is missing its marks
    assert hwm is not None and day_stored is not None and start is not None
    marks = LaneEquity(account_label, equity, hwm, day_stored, start)
    LANE_DRAWDOWN.labels(account=account_label).set(float(marks.drawdown))
    return marks


def loss_limit_reasons(*, marks: LaneEquity) -> list[str]:
    """The loss limits a lane's marks break (empty: none)."""
    reasons = []
    if marks.drawdown >= Decimal(str(settings.TRADING_ROLLBACK_MAX_DRAWDOWN_LIMIT)):
        reasons.append(MAX_DRAWDOWN)
    if marks.daily_loss >= Decimal(str(settings.TRADING_ROLLBACK_DAILY_LOSS_LIMIT)):
        # the session day travels with the reason: a manual clear is refused the same day
        reasons.append(f"{DAILY_LOSS}:{marks.session_day.isoformat()}")
    return reasons


def high_water_marks_rebase() -> dict[str, dict[str, str]]:
    """Set every lane's high-water mark to its last equity (an operator's explicit choice when
    clearing a drawdown stop); what moved, lane -> {from, to}."""
    moved: dict[str, dict[str, str]] = {}
    rows = (
        LaneState.objects.filter(last_equity__isnull=False, equity_high_water_mark__isnull=False)
        .exclude(equity_high_water_mark=F("last_equity"))
        .order_by("pk")
        .values_list("account_label", "equity_high_water_mark", "last_equity")
    )
    for label, mark, equity in rows:
        # compare-and-set: a cycle that moved the marks meanwhile keeps its newer values
        if LaneState.objects.filter(
            account_label=label, equity_high_water_mark=mark, last_equity=equity
        ).update(equity_high_water_mark=equity, updated_at=timezone.now()):
            moved[label] = {"from": str(mark), "to": str(equity)}
    return moved
