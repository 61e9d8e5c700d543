"""The shape every Kafka consumer command shares: flags, the enabled check, run until SIGTERM."""

from __future__ import annotations

import json
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from torghut_site.kafka.consumer import BatchConsumer
from torghut_site.kafka.topics import TopicMissing
from torghut_site.metrics import mark_process_dead, metrics_exporter_start
from torghut_site.services import InstanceNameInUse, heartbeat_claim


class ConsumerCommand(BaseCommand):
    """Subclasses say whether the consumer is switched on and how to build it."""

    not_configured: tuple[type[Exception], ...] = ()

    def disabled_reason(self) -> str | None:
        """Why the consumer must not run without --force (None: it may run)."""
        return None

    def build(
        self, *, idle_exit_seconds: float | None, max_messages: int | None, **overrides: Any
    ) -> BatchConsumer:
        raise NotImplementedError

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
            help="a partition without a committed offset starts at the earliest retained record "
            "(not where the handler's own state says, and not at a configured latest)",
        )
        parser.add_argument(
            "--force", action="store_true", help="run although the consumer is switched off"
        )
        parser.add_argument(
            "--name",
            help=(
                "this consumer's stable instance name: its heartbeat row and its static "
                "group.instance.id (<group id>-<name>); default TORGHUT_INSTANCE_NAME, else the "
                "hostname. Give each consumer of a group on one host its own name."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        reason = self.disabled_reason()
        if reason and not options["force"]:
            raise CommandError(f"{reason} (or pass --force) to consume")
        overrides: dict[str, object] = {}
        if options["from_beginning"]:
            overrides["auto_offset_reset"] = "earliest"
            overrides["start_from_own_state"] = False
        if options["name"]:
            overrides["instance_name"] = options["name"]
        try:
            consumer = self.build(
                idle_exit_seconds=options["idle_exit_seconds"],
                max_messages=options["max_messages"],
                **overrides,
            )
        except self.not_configured as exc:
            raise CommandError(str(exc)) from exc
        s = consumer.settings
        try:
            heartbeat_claim(
                kind=s.heartbeat_kind, name=s.instance_name, interval_seconds=s.heartbeat_seconds
            )
        except InstanceNameInUse as exc:
            raise CommandError(str(exc)) from exc
        consumer.install_signal_handlers()
        metrics_exporter_start()  # TORGHUT_METRICS_PORT: scraped on its own host
        try:
            stats = consumer.run()
        except TopicMissing as exc:
            raise CommandError(str(exc)) from exc
        finally:
            mark_process_dead(os.getpid())  # this consumer's lag gauges leave with it
        self.stdout.write(json.dumps(stats.as_json()))
