"""`manage.py kafka_topics ensure|check`: the Kafka topics the configuration names.

`ensure` creates the missing ones with the configured partitions, replication and retention
(`<PREFIX>_TOPIC_PARTITIONS`, `_TOPIC_REPLICATION`, `_TOPIC_RETENTION_MS`,
`_DLQ_TOPIC_RETENTION_MS`) and reports drift it does not fix; it adds partitions only with
`--grow-partitions` and never deletes. It fails (exit 1) when a topic could not be created or
grown. `check` changes nothing and fails when a topic is missing or drifted. One line per topic,
or `--json`.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from torghut_site.kafka.topics import configured_topics, topics_check, topics_ensure


class Command(BaseCommand):
    help = "Create (ensure) or verify (check) the Kafka topics the configuration names."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("ensure", "check"))
        parser.add_argument(
            "--grow-partitions",
            action="store_true",
            help="ensure: add the partitions a topic lacks (the partition of a key changes, so "
            "records of one key may be read out of order across the change)",
        )
        parser.add_argument(
            "--all",
            action="store_true",
            help="also the topics of consumers that are switched off (TA signals when "
            "TRADING_SIGNAL_SOURCE is not kafka, whitepapers when WHITEPAPER_KAFKA_ENABLED is off)",
        )
        parser.add_argument("--json", action="store_true", help="one JSON document")

    def handle(self, *args: Any, **options: Any) -> None:
        specs = configured_topics(include_all=options["all"])
        if not specs:
            raise CommandError(
                "no Kafka topics configured: set TRADING_ORDER_FEED_BOOTSTRAP_SERVERS (or a "
                "consumer's own *_BOOTSTRAP_SERVERS)"
            )
        if options["action"] == "check":
            reports = topics_check(specs)
        else:
            if options["grow_partitions"]:
                self.stderr.write(
                    "WARNING: --grow-partitions: records of a key produced after the change go "
                    "to another partition than before it"
                )
            reports = topics_ensure(specs, grow_partitions=options["grow_partitions"])
        failed = [
            r for r in reports if r.failed and (options["action"] == "check" or r.status == "error")
        ]
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "action": options["action"],
                        "ok": not failed,
                        "topics": [r.as_json() for r in reports],
                    },
                    indent=2,
                )
            )
        else:
            for report in reports:
                self.stdout.write(report.line())
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(reports)} topics "
                f"{'missing or drifted' if options['action'] == 'check' else 'not created'}: "
                + ", ".join(r.spec.name for r in failed)
            )
