from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.services.signal_feed import SignalFeedNotConfigured, signal_consumer


class Command(BaseCommand):
    help = (
        "Store TA signal rows from Kafka (TRADING_SIGNAL_KAFKA_*) for the `kafka` signal "
        "source until SIGTERM. Offsets are stored only after the database commit."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--idle-exit-seconds", type=float, help="drain, then exit")
        parser.add_argument("--from-beginning", action="store_true", help="reset to earliest")

    def handle(self, *args: Any, **options: Any) -> None:
        overrides: dict[str, object] = {}
        if options["from_beginning"]:
            overrides["auto_offset_reset"] = "earliest"
        try:
            consumer = signal_consumer(idle_exit_seconds=options["idle_exit_seconds"], **overrides)
        except SignalFeedNotConfigured as exc:
            raise CommandError(str(exc)) from exc
        consumer.install_signal_handlers()
        stats = consumer.run()
        self.stdout.write(json.dumps(stats.as_json()))
