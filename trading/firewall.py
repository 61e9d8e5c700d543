"""The order firewall: the only code path allowed to submit, cancel or cancel-all at a broker.

`trading.lanes.broker_for_lane` hands everyone else a read-only broker; the firewall alone
builds the mutable adapter. It refuses submissions while the kill switch is on, while an
emergency stop is latched, while trading is disabled, and for a live lane without live
enablement and a recorded human approval. Cancels are always allowed: they reduce risk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from trading.brokers.base import Broker, BrokerOrder, OrderRequest
from trading.lanes import LaneConfig, raw_broker_for_lane
from trading.metrics import FIREWALL_BLOCKS
from trading.selectors.safety import FirewallVerdict, submission_verdict

logger = logging.getLogger(__name__)


class OrderFirewallBlocked(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OrderFirewall:
    def __init__(
        self,
        *,
        lane: LaneConfig,
        broker: Broker | None = None,
        verdict: Callable[[LaneConfig], FirewallVerdict] | None = None,
    ) -> None:
        self.lane = lane
        self._broker = broker if broker is not None else raw_broker_for_lane(lane)
        self._verdict = verdict or submission_verdict

    def check(self) -> FirewallVerdict:
        return self._verdict(self.lane)

    def submit(self, request: OrderRequest) -> BrokerOrder:
        verdict = self.check()
        if not verdict.allowed:
            FIREWALL_BLOCKS.labels(reason=verdict.reason).inc()
            logger.warning(
                "order blocked by firewall",
                extra={"reason": verdict.reason, "client_order_id": request.client_order_id},
            )
            raise OrderFirewallBlocked(verdict.reason)
        return self._broker.submit_order(request)

    def lookup(self, client_order_id: str) -> BrokerOrder:
        return self._broker.get_order_by_client_id(client_order_id)

    def cancel(self, order_id: str) -> None:
        self._broker.cancel_order(order_id)

    def cancel_all(self) -> list[str]:
        return self._broker.cancel_all_orders()
