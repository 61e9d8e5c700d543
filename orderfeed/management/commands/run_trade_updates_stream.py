from __future__ import annotations

import json
import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orderfeed.bridge import BridgeNotConfigured, TradeUpdatesBridges
from torghut_site.kafka.topics import TopicMissing
from torghut_site.metrics import metrics_exporter_start


class Command(BaseCommand):
    help = (
        "Bridge Alpaca's trade_updates stream of each Alpaca lane to the order-feed Kafka topic "
        "(keyed by symbol, idempotent producer) until SIGTERM/SIGINT. Reconnects with backoff "
        "and triggers a reconciliation after every reconnect (the stream has no replay)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--account",
            action="append",
            dest="accounts",
            metavar="LABEL",
            help="lane to bridge (repeatable; default: every enabled lane on the alpaca broker)",
        )
        parser.add_argument(
            "--stream-url",
            help="websocket URL of the trading stream (default: alpaca-py's paper/live URL)",
        )
        parser.add_argument(
            "--max-updates", type=int, help="stop a lane after it bridged this many updates"
        )
        parser.add_argument(
            "--exit-after-seconds", type=float, help="stop every lane after this many seconds"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            bridges = TradeUpdatesBridges.build(
                account_labels=options["accounts"],
                stream_url=options["stream_url"],
                max_updates=options["max_updates"],
            )
            for bridge in bridges.bridges:
                bridge.require_topic()  # before any stream is opened
        except (BridgeNotConfigured, TopicMissing) as exc:
            raise CommandError(str(exc)) from exc

        def _stop(signum: int, frame: FrameType | None) -> None:
            bridges.stop()

        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, _stop)
        metrics_exporter_start()  # TORGHUT_METRICS_PORT: scraped on its own host
        try:
            stats = bridges.run(exit_after_seconds=options["exit_after_seconds"])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write(json.dumps({"lanes": [s.as_json() for s in stats]}))
