from __future__ import annotations

from typing import Any

from torghut_site.kafka.consumer import BatchConsumer
from torghut_site.management.consumer_command import ConsumerCommand
from trading.services.signal_feed import SignalFeedNotConfigured, signal_consumer


class Command(ConsumerCommand):
    help = (
        "Store TA signal rows from Kafka (TRADING_SIGNAL_KAFKA_*) for the `kafka` signal "
        "source until SIGTERM. Offsets are stored only after the database commit."
    )
    not_configured = (SignalFeedNotConfigured,)

    def build(self, **kwargs: Any) -> BatchConsumer:
        return signal_consumer(**kwargs)
