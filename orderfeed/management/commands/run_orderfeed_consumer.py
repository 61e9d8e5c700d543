from __future__ import annotations

from typing import Any

from orderfeed.consumer import OrderFeedNotConfigured, consumer_process_tune, order_feed_consumer
from torghut_site.flags import flag_enabled
from torghut_site.kafka.consumer import BatchConsumer
from torghut_site.management.consumer_command import ConsumerCommand


class Command(ConsumerCommand):
    help = (
        "Consume broker trade updates from Kafka (TRADING_ORDER_FEED_*) into executions and "
        "decisions until SIGTERM. Offsets are stored only after the database commit."
    )
    not_configured = (OrderFeedNotConfigured,)

    def disabled_reason(self) -> str | None:
        if flag_enabled("TRADING_ORDER_FEED_ENABLED"):
            return None
        return "TRADING_ORDER_FEED_ENABLED is false: set it to true"

    def build(self, **kwargs: Any) -> BatchConsumer:
        consumer = order_feed_consumer(**kwargs)
        consumer_process_tune()  # this process runs the consumer and nothing else
        return consumer
