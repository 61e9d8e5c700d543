from __future__ import annotations

from typing import Any

from django.conf import settings

from torghut_site.kafka.consumer import BatchConsumer
from torghut_site.management.consumer_command import ConsumerCommand
from whitepapers.consumer import WhitepaperKafkaNotConfigured, whitepaper_consumer


class Command(ConsumerCommand):
    help = (
        "Store GitHub issue events from Kafka (WHITEPAPER_KAFKA_*) and queue their processing "
        "until SIGTERM. Offsets are stored only after the database commit."
    )
    not_configured = (WhitepaperKafkaNotConfigured,)

    def disabled_reason(self) -> str | None:
        if settings.WHITEPAPER_WORKFLOW_ENABLED and settings.WHITEPAPER_KAFKA_ENABLED:
            return None
        return "WHITEPAPER_WORKFLOW_ENABLED and WHITEPAPER_KAFKA_ENABLED must both be true"

    def build(self, **kwargs: Any) -> BatchConsumer:
        return whitepaper_consumer(**kwargs)
