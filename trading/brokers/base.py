"""The broker port: what the trading core needs from a broker, vendor-neutral.

Adapters (`alpaca.py`, `simulated.py`) implement `Broker`. Only the order firewall
(`trading.firewall`) may call the mutating methods (`submit_order`, `cancel_order`,
`cancel_all_orders`); everything else reads.

Errors are classified so callers never guess:
- `RetryableBrokerError`: the request certainly did not take effect (429 before acceptance,
  connection refused); safe to try again later.
- `TerminalBrokerError`: the broker refused (422 invalid, 403 insufficient buying power); retrying
  the same request will fail again.
- `AmbiguousBrokerError`: we cannot know whether a submit took effect (timeout after sending, 5xx,
  connection reset). The caller must look the order up by `client_order_id` before anything else.
- `DuplicateClientOrderIdError`: the broker already has an order with this client order id; adopt
  it (look it up), never submit again.
- `OrderNotFoundError`: a lookup found nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

# Alpaca order statuses (the simulated broker uses the same vocabulary)
ORDER_STATUSES = (
    "new",
    "accepted",
    "pending_new",
    "partially_filled",
    "filled",
    "done_for_day",
    "canceled",
    "expired",
    "replaced",
    "pending_cancel",
    "pending_replace",
    "rejected",
    "suspended",
    "stopped",
    "calculated",
    "accepted_for_bidding",
)
FINAL_ORDER_STATUSES = frozenset({"filled", "canceled", "expired", "rejected", "replaced"})
OPEN_ORDER_STATUSES = frozenset(set(ORDER_STATUSES) - FINAL_ORDER_STATUSES)

# Alpaca documents client_order_id as at most 48 characters: the strictest limit we know of.
CLIENT_ORDER_ID_MAX_LENGTH = 48


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str  # buy | sell
    qty: Decimal
    client_order_id: str
    order_type: str = "market"  # market | limit | stop | stop_limit
    time_in_force: str = "day"  # day | gtc | ioc | fok
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"side must be buy or sell, not {self.side!r}")
        if self.qty <= 0:
            raise ValueError("qty must be positive")
        if not self.client_order_id or len(self.client_order_id) > CLIENT_ORDER_ID_MAX_LENGTH:
            raise ValueError(f"client_order_id must be 1..{CLIENT_ORDER_ID_MAX_LENGTH} characters")
        if self.order_type in ("limit", "stop_limit") and self.limit_price is None:
            raise ValueError(f"{self.order_type} orders need a limit_price")
        if self.order_type in ("stop", "stop_limit") and self.stop_price is None:
            raise ValueError(f"{self.order_type} orders need a stop_price")


@dataclass(frozen=True)
class BrokerOrder:
    id: str
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    time_in_force: str
    qty: Decimal
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    status: str
    submitted_at: datetime | None
    updated_at: datetime | None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_ORDER_STATUSES


@dataclass(frozen=True)
class BrokerAccount:
    account_id: str
    equity: Decimal
    cash: Decimal
    buying_power: Decimal
    status: str = "ACTIVE"
    trading_blocked: bool = False


@dataclass(frozen=True)
class BrokerPosition:
    symbol: str
    qty: Decimal  # signed: negative is short
    avg_entry_price: Decimal
    market_value: Decimal
    side: str  # long | short


@dataclass(frozen=True)
class BrokerClock:
    timestamp: datetime
    is_open: bool
    next_open: datetime | None
    next_close: datetime | None


class BrokerError(Exception):
    """Base class; `status_code` and `code` carry the vendor's answer when there was one."""

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.code = code


class RetryableBrokerError(BrokerError):
    pass


class TerminalBrokerError(BrokerError):
    pass


class AmbiguousBrokerError(BrokerError):
    pass


class DuplicateClientOrderIdError(TerminalBrokerError):
    pass


class OrderNotFoundError(BrokerError):
    pass


@runtime_checkable
class Broker(Protocol):
    """A broker account. Implementations are synchronous and hold no trading state of their own
    beyond what the broker itself keeps."""

    name: str

    def get_account(self) -> BrokerAccount: ...

    def list_positions(self) -> list[BrokerPosition]: ...

    def get_clock(self) -> BrokerClock: ...

    def submit_order(self, request: OrderRequest) -> BrokerOrder: ...

    def get_order(self, order_id: str) -> BrokerOrder: ...

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder: ...

    def list_orders(self, *, status: str = "open", limit: int = 500) -> list[BrokerOrder]: ...

    def list_orders_after(self, *, after: datetime, limit: int = 500) -> list[BrokerOrder]:
        """Orders of every status submitted strictly after `after`, oldest first, at most
        `limit` (one page: Alpaca's `GET /v2/orders?status=all&after=...&direction=asc`)."""
        ...

    def cancel_order(self, order_id: str) -> None: ...

    def cancel_all_orders(self) -> list[str]: ...

    def observe_prices(self, prices: dict[str, tuple[Decimal, datetime]]) -> None:
        """Market data seen by the trading cycle. The simulated broker fills on it; a real broker
        ignores it."""
        ...
