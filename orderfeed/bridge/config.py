"""What a bridge is built from: the topic, the lanes it serves, a lane's stream credentials, the
record it produces and how a reconciliation is triggered."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from trading.lanes import LaneConfig, lane_configs

# the package's one logger name, as before the split (log pipelines and tests filter on it)
logger = logging.getLogger("orderfeed.bridge")


def trade_update_envelope(*, data: dict[str, Any], account_label: str) -> dict[str, Any]:
    """The order-feed record of one stream update (no `seq`: the consumer orders by event time)."""
    return {
        "channel": "trade_updates",
        "payload": data,
        "accountLabel": account_label,
        "version": 2,
        "source": "alpaca_stream",
    }


def bridge_topic() -> str:
    return settings.TRADING_ORDER_FEED_TOPIC_V2 or settings.TRADING_ORDER_FEED_TOPIC


def bridge_lane_labels() -> list[str]:
    """The lanes the bridge serves by default: enabled lanes on the Alpaca broker."""
    return [lane.label for lane in lane_configs() if lane.enabled and lane.broker == "alpaca"]


def reconcile_trigger(account_label: str) -> None:
    """Queue the lane's reconciliation; without a reachable Celery broker, run it here."""
    from kombu.exceptions import OperationalError as BrokerUnavailable

    from trading.tasks import reconcile

    try:
        reconcile.delay(account_label=account_label)
    except (BrokerUnavailable, OSError) as exc:
        logger.warning(
            "could not queue the reconciliation; running it in the bridge",
            extra={"account": account_label, "error": str(exc)},
        )
        from trading.services.reconcile import reconcile_lane

        reconcile_lane(account_label=account_label)


def stream_credentials(lane: LaneConfig) -> tuple[str, str]:
    """The lane's key and secret, with the fallback `AlpacaBroker.from_settings` applies."""
    return (
        lane.api_key or settings.APCA_API_KEY_ID,
        lane.secret_key or settings.APCA_API_SECRET_KEY,
    )
