"""An Alpaca Trading/Data API v2 stand-in: real HTTP, in-memory orders, injectable faults."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.servers.base import Request, Response, TestHTTPServer

FINAL = {"filled", "canceled", "expired", "rejected", "replaced"}


def _now() -> str:
    return datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")


def _parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _submitted(order: dict[str, Any]) -> datetime:
    return _parse_ts(order.get("submitted_at")) or datetime.min.replace(tzinfo=UTC)


class AlpacaServer(TestHTTPServer):
    def __init__(self, *, key: str = "key", secret: str = "secret") -> None:
        super().__init__()
        self.key, self.secret = key, secret
        self.orders: dict[str, dict[str, Any]] = {}
        self.account: dict[str, Any] = {
            "id": "acc-1",
            "account_number": "PA123",
            "status": "ACTIVE",
            "currency": "USD",
            "cash": "100000.00",
            "equity": "100250.50",
            "buying_power": "200000.00",
            "trading_blocked": False,
        }
        self.positions: list[dict[str, Any]] = []
        self.clock: dict[str, Any] = {
            "timestamp": _now(),
            "is_open": True,
            "next_open": _now(),
            "next_close": _now(),
        }
        self.bars: dict[str, list[dict[str, Any]]] = {}
        self.bars_page_size = 2
        for method, pattern, handler in (
            ("GET", r"/v2/account", self._account),
            ("GET", r"/v2/positions", self._positions),
            ("GET", r"/v2/clock", self._clock),
            ("POST", r"/v2/orders", self._submit),
            ("GET", r"/v2/orders", self._list),
            ("DELETE", r"/v2/orders", self._cancel_all),
            ("GET", r"/v2/orders:by_client_order_id", self._by_client_id),
            ("GET", r"/v2/orders/(?P<id>[^/]+)", self._get),
            ("DELETE", r"/v2/orders/(?P<id>[^/]+)", self._cancel),
            ("GET", r"/v2/stocks/bars", self._stock_bars),
        ):
            self.route(method, pattern, self._authorized(handler))

    # -- helpers for tests -------------------------------------------------------------------
    def fill(self, order_id: str, qty: str, price: str) -> None:
        with self.lock:
            order = self.orders[order_id]
            order.update(
                filled_qty=qty,
                filled_avg_price=price,
                updated_at=_now(),
                status="filled" if Decimal(qty) == Decimal(order["qty"]) else "partially_filled",
            )

    def posts(self, path: str = "/v2/orders") -> int:
        return sum(1 for r in self.requests if r.method == "POST" and r.path == path)

    # -- handlers ----------------------------------------------------------------------------
    def _authorized(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            if request.headers.get("apca-api-key-id") != self.key or (
                request.headers.get("apca-api-secret-key") != self.secret
            ):
                return Response(403, {"code": 40310000, "message": "forbidden"})
            return handler(request)

        return wrapped

    def _account(self, request: Request) -> Response:
        return Response(200, self.account)

    def _positions(self, request: Request) -> Response:
        return Response(200, self.positions)

    def _clock(self, request: Request) -> Response:
        return Response(200, self.clock)

    def _submit(self, request: Request) -> Response:
        body = request.json()
        with self.lock:
            cid = body.get("client_order_id") or str(uuid.uuid4())
            if any(o["client_order_id"] == cid for o in self.orders.values()):
                return Response(
                    422, {"code": 40010001, "message": "client_order_id must be unique"}
                )
            if Decimal(str(body.get("qty") or 0)) <= 0:
                return Response(422, {"code": 40010001 + 1, "message": "qty must be > 0"})
            order_id = str(uuid.uuid4())
            now = _now()
            order = {
                "id": order_id,
                "client_order_id": cid,
                "created_at": now,
                "updated_at": now,
                "submitted_at": now,
                "filled_at": None,
                "expired_at": None,
                "canceled_at": None,
                "failed_at": None,
                "asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, body["symbol"])),
                "symbol": body["symbol"],
                "asset_class": "us_equity",
                "qty": str(body["qty"]),
                "filled_qty": "0",
                "filled_avg_price": None,
                "order_class": "simple",
                "order_type": body["type"],
                "type": body["type"],
                "side": body["side"],
                "time_in_force": body["time_in_force"],
                "limit_price": body.get("limit_price"),
                "stop_price": body.get("stop_price"),
                "status": "accepted",
                "extended_hours": False,
            }
            self.orders[order_id] = order
        return Response(200, order)

    def _list(self, request: Request) -> Response:
        """Alpaca's list: `after` (exclusive, on the submission time), `direction` (of the
        submission time; desc by default), `limit` (50 by default)."""
        status = request.query.get("status", "open")
        limit = int(request.query.get("limit", 50))
        after = _parse_ts(request.query.get("after"))
        rows = [
            o
            for o in self.orders.values()
            if status == "all" or (status == "open") == (o["status"] not in FINAL)
        ]
        if after is not None:
            rows = [o for o in rows if _submitted(o) > after]
        rows.sort(key=_submitted, reverse=request.query.get("direction", "desc") != "asc")
        return Response(200, rows[:limit])

    def _get(self, request: Request) -> Response:
        assert request.match is not None
        order = self.orders.get(request.match["id"])
        return (
            Response(200, order)
            if order
            else Response(404, {"code": 40410000, "message": "order not found"})
        )

    def _by_client_id(self, request: Request) -> Response:
        cid = request.query.get("client_order_id")
        for order in self.orders.values():
            if order["client_order_id"] == cid:
                return Response(200, order)
        return Response(404, {"code": 40410000, "message": "order not found"})

    def _cancel(self, request: Request) -> Response:
        assert request.match is not None
        with self.lock:
            order = self.orders.get(request.match["id"])
            if order is None:
                return Response(404, {"code": 40410000, "message": "order not found"})
            if order["status"] in FINAL:
                return Response(
                    422,
                    {"code": 42210000, "message": f'order is already in "{order["status"]}" state'},
                )
            order.update(status="canceled", canceled_at=_now(), updated_at=_now())
        return Response(204, None)

    def _cancel_all(self, request: Request) -> Response:
        results = []
        with self.lock:
            for order in self.orders.values():
                if order["status"] not in FINAL:
                    order.update(status="canceled", canceled_at=_now(), updated_at=_now())
                    results.append({"id": order["id"], "status": 200, "body": order})
        return Response(207, results)

    def _stock_bars(self, request: Request) -> Response:
        symbols = request.query.get("symbols", "").split(",")
        rows = [(s, bar) for s in symbols for bar in self.bars.get(s, [])]
        start = int(request.query.get("page_token") or 0)
        page = rows[start : start + self.bars_page_size]
        grouped: dict[str, list[dict[str, Any]]] = {}
        for symbol, bar in page:
            grouped.setdefault(symbol, []).append(bar)
        token = (
            str(start + self.bars_page_size) if start + self.bars_page_size < len(rows) else None
        )
        return Response(200, {"bars": grouped, "next_page_token": token})
