from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from whitepapers.consumer import WhitepaperKafkaNotConfigured, whitepaper_consumer


class Command(BaseCommand):
    help = (
        "Store GitHub issue events from Kafka (WHITEPAPER_KAFKA_*) and queue their processing "
        "until SIGTERM. Offsets are stored only after the database commit."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--idle-exit-seconds",
            type=float,
            help="exit once no record arrived for this long (drain mode; default: run forever)",
        )
        parser.add_argument("--max-messages", type=int, help="exit after this many records")
        parser.add_argument(
            "--from-beginning",
            action="store_true",
            help="auto.offset.reset=earliest for a group without committed offsets",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="run although WHITEPAPER_WORKFLOW_ENABLED or WHITEPAPER_KAFKA_ENABLED is false",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        enabled = settings.WHITEPAPER_WORKFLOW_ENABLED and settings.WHITEPAPER_KAFKA_ENABLED
        if not enabled and not options["force"]:
            raise CommandError(
                "WHITEPAPER_WORKFLOW_ENABLED and WHITEPAPER_KAFKA_ENABLED must both be true "
                "(or pass --force) to consume"
            )
        overrides: dict[str, object] = {}
        if options["from_beginning"]:
            overrides["auto_offset_reset"] = "earliest"
        try:
            consumer = whitepaper_consumer(
                idle_exit_seconds=options["idle_exit_seconds"],
                max_messages=options["max_messages"],
                **overrides,
            )
        except WhitepaperKafkaNotConfigured as exc:
            raise CommandError(str(exc)) from exc
        consumer.install_signal_handlers()
        stats = consumer.run()
        self.stdout.write(json.dumps(stats.as_json()))
