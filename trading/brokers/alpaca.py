"""Alpaca adapter: the only module that imports alpaca-py.

alpaca-py builds URLs and auth headers; this module adds what it lacks for money safety:
- an explicit HTTP timeout on every request (alpaca-py sets none);
- no hidden retries: alpaca-py retries 429/504 on POST by itself, which could resend an order;
  retries are switched off here and every failure is classified instead (see `base.py`);
- a client-side rate limit per account, under Alpaca's 200 requests/min;
- Decimal quantities and prices (Alpaca sends them as strings; they never pass through float).
Responses are read as raw JSON (`raw_data=True`) and mapped here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
)
from django.conf import settings
from prometheus_client import Counter, Histogram

from trading.brokers.base import (
    AmbiguousBrokerError,
    BrokerAccount,
    BrokerClock,
    BrokerError,
    BrokerOrder,
    BrokerPosition,
    DuplicateClientOrderIdError,
    OrderNotFoundError,
    OrderRequest,
    RetryableBrokerError,
    TerminalBrokerError,
)
from trading.brokers.ratelimit import RateLimiter
from trading.marketdata import Bar

T = TypeVar("T")

BROKER_REQUESTS = Counter(
    "torghut_broker_requests_total",
    "Broker API calls by outcome.",
    ["broker", "operation", "outcome"],
)
BROKER_SECONDS = Histogram(
    "torghut_broker_request_seconds", "Broker API call latency.", ["broker", "operation"]
)
DUPLICATE_CODE = 40010001


class _TimeoutSession(requests.Session):
    """A requests session that always sends a timeout."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(*args, **kwargs)


def _disarm(client: Any, timeout: float) -> None:
    client._session = _TimeoutSession(timeout)
    client._retry = 0  # never let alpaca-py resend a request on its own


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _dec_or_none(value: Any) -> Decimal | None:
    return Decimal(str(value)) if value not in (None, "") else None


def _ts(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _error_body(exc: APIError) -> tuple[int | None, str]:
    try:
        return int(exc.code), str(exc.message)
    except (ValueError, TypeError, KeyError):
        return None, str(exc)


def classify(exc: Exception, *, submit: bool) -> BrokerError:
    """Map an alpaca-py/requests failure to retryable, terminal, ambiguous, duplicate, not-found."""
    if isinstance(exc, APIError):
        status = exc.status_code
        code, message = _error_body(exc)
        code_text = str(code) if code is not None else None
        if status == 404:
            return OrderNotFoundError(message, status_code=status, code=code_text)
        if status == 422 and (
            code == DUPLICATE_CODE or "client_order_id must be unique" in message
        ):
            return DuplicateClientOrderIdError(message, status_code=status, code=code_text)
        if status == 429:
            return RetryableBrokerError(message, status_code=status, code="rate_limited")
        if status is not None and status >= 500:
            kind = AmbiguousBrokerError if submit else RetryableBrokerError
            return kind(message, status_code=status, code=code_text)
        return TerminalBrokerError(message, status_code=status, code=code_text)
    if isinstance(exc, requests.ConnectTimeout):
        return RetryableBrokerError(f"connect timeout: {exc}", code="connect_timeout")
    if isinstance(exc, requests.ConnectionError) and "NewConnectionError" in repr(exc):
        return RetryableBrokerError(f"connection refused: {exc}", code="connection_refused")
    if isinstance(exc, requests.RequestException):
        # the request may have reached Alpaca (read timeout, reset): a submit is ambiguous
        kind = AmbiguousBrokerError if submit else RetryableBrokerError
        return kind(f"{type(exc).__name__}: {exc}", code="transport")
    return BrokerError(f"{type(exc).__name__}: {exc}")


def order_from_raw(raw: dict[str, Any]) -> BrokerOrder:
    return BrokerOrder(
        id=str(raw["id"]),
        client_order_id=str(raw.get("client_order_id") or ""),
        symbol=str(raw.get("symbol") or ""),
        side=str(raw.get("side") or ""),
        order_type=str(raw.get("order_type") or raw.get("type") or "market"),
        time_in_force=str(raw.get("time_in_force") or "day"),
        qty=_dec(raw.get("qty")),
        filled_qty=_dec(raw.get("filled_qty")),
        filled_avg_price=_dec_or_none(raw.get("filled_avg_price")),
        status=str(raw.get("status") or "new"),
        submitted_at=_ts(raw.get("submitted_at") or raw.get("created_at")),
        updated_at=_ts(raw.get("updated_at")),
        limit_price=_dec_or_none(raw.get("limit_price")),
        stop_price=_dec_or_none(raw.get("stop_price")),
        raw=raw,
    )


class AlpacaBroker:
    name = "alpaca"

    def __init__(
        self,
        *,
        api_key: str,
        secret_key: str,
        paper: bool,
        base_url: str | None,
        account_label: str,
        timeout_seconds: float,
        rate_limit_per_minute: int,
    ) -> None:
        self.account_label = account_label
        self.paper = paper
        self._client = TradingClient(
            api_key, secret_key, paper=paper, raw_data=True, url_override=base_url or None
        )
        _disarm(self._client, timeout_seconds)
        self._limiter = RateLimiter(key=f"alpaca:{account_label}", per_minute=rate_limit_per_minute)

    @classmethod
    def from_settings(
        cls,
        *,
        account_label: str,
        api_key: str | None = None,
        secret_key: str | None = None,
        base_url: str | None = None,
        mode: str | None = None,
    ) -> AlpacaBroker:
        return cls(
            api_key=api_key or settings.APCA_API_KEY_ID,
            secret_key=secret_key or settings.APCA_API_SECRET_KEY,
            paper=(mode or settings.TRADING_MODE) != "live",
            base_url=base_url or settings.APCA_API_BASE_URL or None,
            account_label=account_label,
            timeout_seconds=settings.APCA_HTTP_TIMEOUT_SECONDS,
            rate_limit_per_minute=settings.APCA_RATE_LIMIT_PER_MINUTE,
        )

    def _call(self, operation: str, fn: Callable[[], T], *, submit: bool = False) -> T:
        if not self._limiter.acquire():
            BROKER_REQUESTS.labels(
                broker=self.name, operation=operation, outcome="rate_limited"
            ).inc()
            raise RetryableBrokerError("client-side rate limit reached", code="client_rate_limited")
        started = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes raw
            error = classify(exc, submit=submit)
            outcome = {
                DuplicateClientOrderIdError: "duplicate",
                OrderNotFoundError: "not_found",
                AmbiguousBrokerError: "ambiguous",
                RetryableBrokerError: "retryable",
            }.get(type(error), "terminal")
            BROKER_REQUESTS.labels(broker=self.name, operation=operation, outcome=outcome).inc()
            raise error from exc
        finally:
            BROKER_SECONDS.labels(broker=self.name, operation=operation).observe(
                time.perf_counter() - started
            )
        BROKER_REQUESTS.labels(broker=self.name, operation=operation, outcome="ok").inc()
        return result

    def get_account(self) -> BrokerAccount:
        raw: Any = self._call("get_account", self._client.get_account)
        return BrokerAccount(
            account_id=str(raw.get("id") or raw.get("account_number") or ""),
            equity=_dec(raw.get("equity")),
            cash=_dec(raw.get("cash")),
            buying_power=_dec(raw.get("buying_power")),
            status=str(raw.get("status") or ""),
            trading_blocked=bool(raw.get("trading_blocked")),
        )

    def list_positions(self) -> list[BrokerPosition]:
        rows: Any = self._call("list_positions", self._client.get_all_positions)
        positions = []
        for row in rows:
            qty = _dec(row.get("qty"))
            side = str(row.get("side") or ("short" if qty < 0 else "long"))
            positions.append(
                BrokerPosition(
                    symbol=str(row["symbol"]),
                    qty=-abs(qty) if side == "short" else qty,
                    avg_entry_price=_dec(row.get("avg_entry_price")),
                    market_value=_dec(row.get("market_value")),
                    side=side,
                )
            )
        return positions

    def get_clock(self) -> BrokerClock:
        raw: Any = self._call("get_clock", self._client.get_clock)
        return BrokerClock(
            timestamp=_ts(raw.get("timestamp")) or datetime.now(tz=UTC),
            is_open=bool(raw.get("is_open")),
            next_open=_ts(raw.get("next_open")),
            next_close=_ts(raw.get("next_close")),
        )

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        common: dict[str, Any] = {
            "symbol": request.symbol,
            "qty": float(request.qty),  # alpaca-py's request model types qty as float
            "side": OrderSide(request.side),
            "time_in_force": TimeInForce(request.time_in_force),
            "client_order_id": request.client_order_id,
        }
        order_data: Any
        if request.order_type == "market":
            order_data = MarketOrderRequest(**common)
        elif request.order_type == "limit":
            order_data = LimitOrderRequest(**common, limit_price=float(request.limit_price or 0))
        elif request.order_type == "stop":
            order_data = StopOrderRequest(**common, stop_price=float(request.stop_price or 0))
        else:
            order_data = StopLimitOrderRequest(
                **common,
                limit_price=float(request.limit_price or 0),
                stop_price=float(request.stop_price or 0),
            )
        raw: Any = self._call(
            "submit_order", lambda: self._client.submit_order(order_data), submit=True
        )
        return order_from_raw(raw)

    def get_order(self, order_id: str) -> BrokerOrder:
        raw: Any = self._call("get_order", lambda: self._client.get_order_by_id(order_id))
        return order_from_raw(raw)

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder:
        raw: Any = self._call(
            "get_order_by_client_id", lambda: self._client.get_order_by_client_id(client_order_id)
        )
        return order_from_raw(raw)

    def list_orders(self, *, status: str = "open", limit: int = 500) -> list[BrokerOrder]:
        query = GetOrdersRequest(status=QueryOrderStatus(status), limit=min(limit, 500))
        rows: Any = self._call("list_orders", lambda: self._client.get_orders(filter=query))
        return [order_from_raw(row) for row in rows]

    def list_orders_after(self, *, after: datetime, limit: int = 500) -> list[BrokerOrder]:
        """One page of orders of every status submitted after `after` (Alpaca's `after` is
        exclusive and on the submission time), oldest first: `GET /v2/orders?status=all&
        after=...&direction=asc`. The caller pages by passing the last order's time."""
        query = GetOrdersRequest(
            status=QueryOrderStatus.ALL,
            after=after,
            direction=Sort.ASC,
            limit=max(1, min(limit, 500)),
        )
        rows: Any = self._call("list_orders_after", lambda: self._client.get_orders(filter=query))
        return [order_from_raw(row) for row in rows]

    def cancel_order(self, order_id: str) -> None:
        self._call("cancel_order", lambda: self._client.cancel_order_by_id(order_id))

    def cancel_all_orders(self) -> list[str]:
        rows: Any = self._call("cancel_all_orders", self._client.cancel_orders)
        return [str(row.get("id")) for row in rows or [] if int(row.get("status") or 0) < 300]

    def observe_prices(self, prices: dict[str, tuple[Decimal, datetime]]) -> None:
        return None  # Alpaca has its own market


_TIMEFRAMES = {
    "1Min": TimeFrame(1, TimeFrameUnit.Minute),
    "5Min": TimeFrame(5, TimeFrameUnit.Minute),
    "15Min": TimeFrame(15, TimeFrameUnit.Minute),
    "1Hour": TimeFrame(1, TimeFrameUnit.Hour),
    "1Day": TimeFrame(1, TimeFrameUnit.Day),
}


class AlpacaMarketData:
    """Historical bars from Alpaca's data API, as vendor-neutral `Bar`s with Decimal prices."""

    def __init__(
        self,
        *,
        api_key: str,
        secret_key: str,
        base_url: str | None,
        feed: str,
        timeout_seconds: float,
    ):
        self._client = StockHistoricalDataClient(
            api_key, secret_key, raw_data=True, url_override=base_url or None
        )
        _disarm(self._client, timeout_seconds)
        self._feed = feed

    @classmethod
    def from_settings(cls) -> AlpacaMarketData:
        return cls(
            api_key=settings.APCA_API_KEY_ID,
            secret_key=settings.APCA_API_SECRET_KEY,
            base_url=settings.APCA_DATA_API_BASE_URL or None,
            feed=settings.APCA_DATA_FEED,
            timeout_seconds=settings.APCA_HTTP_TIMEOUT_SECONDS,
        )

    def get_bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, timeframe: str = "1Min"
    ) -> list[Bar]:
        if timeframe not in _TIMEFRAMES:
            raise ValueError(
                f"unsupported timeframe {timeframe!r}; use one of {', '.join(_TIMEFRAMES)}"
            )
        request = StockBarsRequest(
            symbol_or_symbols=list(symbols),
            start=start,
            end=end,
            timeframe=_TIMEFRAMES[timeframe],
            feed=DataFeed(self._feed),
        )
        try:
            raw: Any = self._client.get_stock_bars(request)
        except Exception as exc:  # noqa: BLE001 - classified for the signal source
            raise classify(exc, submit=False) from exc
        bars = [
            Bar(
                symbol=symbol,
                timestamp=_ts(row["t"]) or start,
                timeframe=timeframe,
                open=_dec(row["o"]),
                high=_dec(row["h"]),
                low=_dec(row["l"]),
                close=_dec(row["c"]),
                volume=_dec(row.get("v")),
                vwap=_dec_or_none(row.get("vw")),
                trade_count=int(row["n"]) if row.get("n") is not None else None,
            )
            for symbol, rows in (raw or {}).items()
            for row in rows or []
        ]
        bars.sort(key=lambda bar: (bar.timestamp, bar.symbol))
        return bars
