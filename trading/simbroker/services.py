"""The simulated broker's behaviour: Alpaca order semantics over database state.

- submit: validation, client order id uniqueness (a database constraint, even after cancel),
  buying power; the order rests `accepted` and a `new` trade update is written;
- fills happen on *later* prices (`observe_prices`): market orders at the price moved against the
  taker by SIMULATED_BROKER_SLIPPAGE_BPS, limit orders when the price crosses the limit (at the
  limit or better), stop orders trigger on the stop and then fill like market (stop-limit rest as
  limit); ioc/fok orders that cannot fill on the next price are cancelled;
- fees: SIMULATED_BROKER_FEE_PER_SHARE × qty + SIMULATED_BROKER_FEE_BPS of the notional;
- every state change appends an Alpaca-shaped trade update in the same transaction.
All writes lock the account row first, so concurrent workers serialise per account.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from trading.brokers.base import (
    DuplicateClientOrderIdError,
    OrderNotFoundError,
    OrderRequest,
    TerminalBrokerError,
)
from trading.simbroker.models import (
    SIM_FINAL,
    SIM_TRANSITIONS,
    SimAccount,
    SimMarketPrice,
    SimOrder,
    SimPosition,
    SimTradeUpdate,
)

ZERO = Decimal(0)
BPS = Decimal(10000)


def _setting(name: str) -> Decimal:
    value = getattr(settings, name)
    return Decimal(value) if value is not None else ZERO


def _tick(price: Decimal) -> Decimal:
    return Decimal("0.0001") if price < 1 else Decimal("0.01")


def _round(price: Decimal, *, up: bool) -> Decimal:
    tick = _tick(price)
    return (price / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR) * tick


def _fmt(value: Decimal | None) -> str | None:
    return None if value is None else format(Decimal(value).normalize(), "f")


def order_json(order: SimOrder) -> dict[str, Any]:
    """The order as Alpaca's API and trade_updates stream spell it (numbers as strings)."""
    return {
        "id": str(order.order_id),
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "asset_class": "crypto" if "/" in order.symbol else "us_equity",
        "side": order.side,
        "type": order.order_type,
        "order_type": order.order_type,
        "time_in_force": order.time_in_force,
        "qty": _fmt(order.qty),
        "filled_qty": _fmt(order.filled_qty),
        "filled_avg_price": _fmt(order.filled_avg_price),
        "limit_price": _fmt(order.limit_price),
        "stop_price": _fmt(order.stop_price),
        "status": order.status,
        "submitted_at": order.submitted_at.isoformat(),
        "created_at": order.submitted_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "filled_at": order.filled_at.isoformat() if order.filled_at else None,
        "canceled_at": order.canceled_at.isoformat() if order.canceled_at else None,
    }


def account_get(account_label: str) -> SimAccount:
    account, _ = SimAccount.objects.get_or_create(
        account_label=account_label,
        defaults={
            "cash": settings.SIMULATED_BROKER_STARTING_CASH,
            "starting_cash": settings.SIMULATED_BROKER_STARTING_CASH,
        },
    )
    return account


def _locked_account(account_label: str) -> SimAccount:
    account_get(account_label)
    return SimAccount.objects.select_for_update().get(account_label=account_label)


def _append_update(
    account: SimAccount, order: SimOrder, event: str, **extra: Any
) -> SimTradeUpdate:
    account.update_seq += 1
    SimAccount.objects.filter(pk=account.pk).update(update_seq=account.update_seq)
    payload = {
        "event": event,
        "timestamp": timezone.now().isoformat(),
        **extra,
        "order": order_json(order),
    }
    return SimTradeUpdate.objects.create(
        account=account, seq=account.update_seq, event=event, payload=payload
    )


def _position_qty(account: SimAccount, symbol: str) -> Decimal:
    position = SimPosition.objects.filter(account=account, symbol=symbol).first()
    return position.qty if position else ZERO


def _last_price(symbol: str) -> SimMarketPrice | None:
    return SimMarketPrice.objects.filter(symbol=symbol).first()


def buying_power(account: SimAccount) -> Decimal:
    """Cash less what open buy orders would spend (no margin)."""
    committed = ZERO
    for order in SimOrder.objects.filter(
        account=account, side="buy", status__in=["accepted", "partially_filled"]
    ):
        last = _last_price(order.symbol)
        reference = order.limit_price or (last.price if last else ZERO)
        committed += (order.qty - order.filled_qty) * reference
    return account.cash - committed


def order_submit(*, account_label: str, request: OrderRequest) -> SimOrder:
    if request.time_in_force not in ("day", "gtc", "ioc", "fok"):
        raise TerminalBrokerError(
            f"invalid time_in_force {request.time_in_force!r}", status_code=422
        )
    if request.order_type not in ("market", "limit", "stop", "stop_limit"):
        raise TerminalBrokerError(f"invalid order type {request.order_type!r}", status_code=422)
    with transaction.atomic():
        account = _locked_account(account_label)
        if SimOrder.objects.filter(
            account=account, client_order_id=request.client_order_id
        ).exists():
            raise DuplicateClientOrderIdError(
                "client_order_id must be unique", status_code=422, code="40010001"
            )
        last = _last_price(request.symbol)
        reference = request.limit_price or (last.price if last else None)
        held = _position_qty(account, request.symbol)
        opening = request.qty if request.side == "buy" else max(request.qty - max(held, ZERO), ZERO)
        if reference is not None and opening > 0 and opening * reference > buying_power(account):
            raise TerminalBrokerError("insufficient buying power", status_code=403, code="40310000")
        now = timezone.now()
        try:
            with transaction.atomic():
                order = SimOrder.objects.create(
                    account=account,
                    client_order_id=request.client_order_id,
                    symbol=request.symbol,
                    side=request.side,
                    order_type=request.order_type,
                    time_in_force=request.time_in_force,
                    qty=request.qty,
                    limit_price=request.limit_price,
                    stop_price=request.stop_price,
                    market_ts_at_submit=last.as_of if last else None,
                    submitted_at=now,
                    updated_at=now,
                )
        except IntegrityError as exc:
            raise DuplicateClientOrderIdError(
                "client_order_id must be unique", status_code=422, code="40010001"
            ) from exc
        _append_update(account, order, "new")
    return order


def _transition(order: SimOrder, to_status: str, **fields: Any) -> None:
    if to_status not in SIM_TRANSITIONS[order.status]:
        raise TerminalBrokerError(
            f"order {order.order_id} is {order.status}; cannot become {to_status}", status_code=422
        )
    now = timezone.now()
    changed = SimOrder.objects.filter(pk=order.pk, status=order.status).update(
        status=to_status, updated_at=now, **fields
    )
    if not changed:
        raise TerminalBrokerError(f"order {order.order_id} changed concurrently", status_code=409)
    order.status = to_status
    order.updated_at = now
    for key, value in fields.items():
        setattr(order, key, value)


def order_cancel(*, account_label: str, order_id: str) -> SimOrder:
    with transaction.atomic():
        account = _locked_account(account_label)
        order = _get(account, order_id=order_id)
        if order.status in SIM_FINAL:
            raise TerminalBrokerError(
                f"order is already {order.status}", status_code=422, code="42210000"
            )
        _transition(order, "canceled", canceled_at=timezone.now())
        _append_update(account, order, "canceled")
    return order


def orders_cancel_all(*, account_label: str) -> list[str]:
    with transaction.atomic():
        account = _locked_account(account_label)
        cancelled = []
        for order in SimOrder.objects.filter(
            account=account, status__in=["accepted", "partially_filled"]
        ).order_by("pk"):
            _transition(order, "canceled", canceled_at=timezone.now())
            _append_update(account, order, "canceled")
            cancelled.append(str(order.order_id))
    return cancelled


def orders_expire_day(*, account_label: str) -> list[str]:
    """End of session: day orders still open expire."""
    with transaction.atomic():
        account = _locked_account(account_label)
        expired = []
        open_day = SimOrder.objects.filter(
            account=account, time_in_force="day", status__in=["accepted", "partially_filled"]
        )
        for order in open_day.order_by("pk"):
            _transition(order, "expired")
            _append_update(account, order, "expired")
            expired.append(str(order.order_id))
    return expired


def _get(
    account: SimAccount, *, order_id: str | None = None, client_order_id: str | None = None
) -> SimOrder:
    rows = SimOrder.objects.filter(account=account)
    try:
        if order_id is not None:
            return rows.get(order_id=order_id)
        return rows.get(client_order_id=client_order_id)
    except (SimOrder.DoesNotExist, ValueError, ValidationError) as exc:
        raise OrderNotFoundError("order not found", status_code=404) from exc


def order_get(
    *, account_label: str, order_id: str | None = None, client_order_id: str | None = None
) -> SimOrder:
    return _get(account_get(account_label), order_id=order_id, client_order_id=client_order_id)


def _fill_price(order: SimOrder, price: Decimal) -> Decimal | None:
    """The price this order fills at given a new market price, or None if it does not fill."""
    slip = _setting("SIMULATED_BROKER_SLIPPAGE_BPS") / BPS
    buy = order.side == "buy"
    market = _round(price * (1 + slip), up=True) if buy else _round(price * (1 - slip), up=False)
    kind = order.order_type
    if kind in ("stop", "stop_limit") and not order.stop_triggered:
        assert order.stop_price is not None
        triggered = price >= order.stop_price if buy else price <= order.stop_price
        if not triggered:
            return None
        SimOrder.objects.filter(pk=order.pk).update(stop_triggered=True)
        order.stop_triggered = True
    if kind in ("market", "stop"):
        return market
    assert order.limit_price is not None
    if buy:
        return min(order.limit_price, market) if price <= order.limit_price else None
    return max(order.limit_price, market) if price >= order.limit_price else None


def _apply_fill(account: SimAccount, order: SimOrder, qty: Decimal, price: Decimal) -> None:
    fee = (
        qty * _setting("SIMULATED_BROKER_FEE_PER_SHARE")
        + qty * price * _setting("SIMULATED_BROKER_FEE_BPS") / BPS
    )
    signed = qty if order.side == "buy" else -qty
    account.cash += -(qty * price) - fee if order.side == "buy" else qty * price - fee
    SimAccount.objects.filter(pk=account.pk).update(cash=account.cash)
    position = SimPosition.objects.filter(account=account, symbol=order.symbol).first()
    held = position.qty if position else ZERO
    new_qty = held + signed
    if position is None:
        position = SimPosition(
            account=account, symbol=order.symbol, qty=ZERO, avg_entry_price=price
        )
    if held == 0 or ((held > 0) != (new_qty > 0) and new_qty != 0):
        position.avg_entry_price = price  # opened or flipped
    elif abs(new_qty) > abs(held):
        position.avg_entry_price = (abs(held) * position.avg_entry_price + qty * price) / abs(
            new_qty
        )
    position.qty = new_qty
    position.save()
    filled = order.filled_qty + qty
    previous_value = (order.filled_avg_price or ZERO) * order.filled_qty
    avg = ((previous_value + qty * price) / filled).quantize(Decimal("0.000001"))
    status = "filled" if filled == order.qty else "partially_filled"
    now = timezone.now()
    _transition(
        order,
        status,
        filled_qty=filled,
        filled_avg_price=avg,
        **({"filled_at": now} if status == "filled" else {}),
    )
    _append_update(
        account,
        order,
        "fill" if status == "filled" else "partial_fill",
        price=_fmt(price),
        qty=_fmt(qty),
        position_qty=_fmt(new_qty),
    )


def observe_prices(*, account_label: str, prices: dict[str, tuple[Decimal, datetime]]) -> list[str]:
    """New market prices: fill whatever they fill. Returns the ids of orders that changed."""
    if not prices:
        return []
    changed: list[str] = []
    with transaction.atomic():
        account = _locked_account(account_label)
        for symbol, (price, as_of) in sorted(prices.items()):
            SimMarketPrice.objects.update_or_create(
                symbol=symbol, defaults={"price": price, "as_of": as_of}
            )
            open_orders: Iterable[SimOrder] = SimOrder.objects.filter(
                account=account, symbol=symbol, status__in=["accepted", "partially_filled"]
            ).order_by("pk")
            for order in open_orders:
                if order.market_ts_at_submit is not None and as_of <= order.market_ts_at_submit:
                    continue  # a price the order already knew: no look-ahead fills
                fill = _fill_price(order, price)
                if fill is not None:
                    _apply_fill(account, order, order.qty - order.filled_qty, fill)
                    changed.append(str(order.order_id))
                elif order.time_in_force in ("ioc", "fok"):
                    _transition(order, "canceled", canceled_at=timezone.now())
                    _append_update(account, order, "canceled")
                    changed.append(str(order.order_id))
    return changed


def equity(account: SimAccount) -> Decimal:
    value = account.cash
    for position in SimPosition.objects.filter(account=account).exclude(qty=0):
        last = _last_price(position.symbol)
        value += position.qty * (last.price if last else position.avg_entry_price)
    return value


def trade_updates_unpublished(*, account_label: str, limit: int = 500) -> list[SimTradeUpdate]:
    return list(
        SimTradeUpdate.objects.filter(
            account__account_label=account_label, published_at__isnull=True
        ).order_by("seq")[:limit]
    )


def trade_updates_mark_published(*, ids: list[int]) -> int:
    return SimTradeUpdate.objects.filter(pk__in=ids, published_at__isnull=True).update(
        published_at=timezone.now()
    )
