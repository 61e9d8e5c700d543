"""``manage.py replay_check --date YYYY-MM-DD [--lane LABEL]``: run the live-versus-replay check of
one session now (what the nightly beat task does for the latest closed session) and print one
line per strategy. Idempotent: re-running a date rewrites its rows. The rules are in
``autonomy/replay.py``; the work in ``autonomy.services.replay_check.replay_check_run``."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from autonomy.services.replay_check import replay_check_run


class Command(BaseCommand):
    help = "Replay a session's recorded signals and compare with the live decisions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", required=True, help="New York session date, YYYY-MM-DD")
        parser.add_argument("--lane", default="", help="account lane (default: every lane)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["date"])
        except ValueError as exc:
            raise CommandError(f"--date: {exc}") from exc
        checks = replay_check_run(session_date=day, account_label=options["lane"] or None)
        for c in checks:
            self.stdout.write(
                f"{c.session_date} {c.account_label} {c.strategy.name}: {c.status} "
                f"live={c.live_decisions} replay={c.replay_decisions} matched={c.matched} "
                f"data_gap={c.data_gap} timing={c.timing} fill_model={c.fill_model} "
                f"live_gate={c.live_gate} rule_divergence={c.rule_divergence}"
            )
        if not checks:
            self.stdout.write(f"{day}: nothing to check (no recorded signals, no decisions)")
