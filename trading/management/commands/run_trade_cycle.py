from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from trading.lanes import enabled_lane_labels
from trading.services.cycle import trading_cycle_run


class Command(BaseCommand):
    help = "Run one trade cycle per lane (default: every enabled lane) here and print the result."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lane", help="account label (default: every enabled lane)")

    def handle(self, *args: Any, **options: Any) -> None:
        for label in [options["lane"]] if options["lane"] else enabled_lane_labels():
            self.stdout.write(
                json.dumps(trading_cycle_run(account_label=label).as_json(), default=str)
            )
