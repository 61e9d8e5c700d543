"""``manage.py sweep``: a parameter grid over folds, every setting registered as a trial.

    manage.py sweep --strategy-config F --strategy NAME --grid 'buy_rsi_threshold=25,30,35' \\
        [--grid ...] [--params k=v ...] --signals FILE | --replay FROM TO | --clickhouse FROM TO \\
        [--fold-plan rolling|anchored|cpcv --folds N --test-groups K --purge P --embargo E] \\
        [--workers local|celery] [--no-wait] [--timeout SECONDS] [--output-dir DIR]
    manage.py sweep status SWEEP_ID

`--workers local` (default) computes every chunk (setting x fold) in this process; `celery`
queues one task per chunk on the `research` queue and waits with a progress bar (chunks claimed
longer ago than the task time limit are queued again), or returns at once with `--no-wait`
(then `sweep status SWEEP_ID`). Prints the leaderboard: each setting with its deflated and
probabilistic Sharpe ratios, probability of backtest overfitting and the family's trial count.
The report is written to `<output-dir>/sweep/report.json` when an output dir is given. The same
sweep asked again is the same sweep (its id covers the spec and the dataset): a finished one is
shown again, an unfinished one is resumed. Bad input is a CommandError naming the flag, and
nothing is recorded.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from autonomy.engine.progress import Progress, no_progress, terminal_progress
from autonomy.management.commands.backtest import table, write_artifacts
from autonomy.management.research_args import (
    add_source_arguments,
    as_command_error,
    fmt,
    fold_plan,
    parse_grid,
    parse_params,
    read_source,
    read_strategy,
)
from autonomy.models import Sweep, SweepStatus
from autonomy.selectors import sweep_get
from autonomy.services.sweeps import (
    sweep_enqueue,
    sweep_prepare,
    sweep_register,
    sweep_requeue,
    sweep_run_local,
)
from autonomy.sweep import SweepInputError

REPORT = "sweep/report.json"
# a chunk task is killed at its 600 s time limit: a claim older than this is a lost worker's
CLAIM_LEASE = timedelta(seconds=660)
POLL_SECONDS = 0.5
REQUEUE_EVERY_SECONDS = 30.0


class Command(BaseCommand):
    help = "Sweep a parameter grid over folds; register every trial; print the leaderboard."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", nargs="*", help="`status SWEEP_ID` to show a sweep")
        parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2")
        parser.add_argument("--workers", choices=("local", "celery"), default="local")
        parser.add_argument("--no-wait", action="store_true")
        parser.add_argument("--timeout", type=float, default=3600.0)
        parser.add_argument("--output-dir", type=Path, default=None)
        add_source_arguments(parser, strategy_required=False)  # not for `status`

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action:
            if len(action) != 2 or action[0] != "status":
                raise CommandError("usage: manage.py sweep status SWEEP_ID")
            self.show(self.find(action[1]), options)
            return
        if options["strategy_config"] is None:
            raise CommandError("--strategy-config is required")
        entry = read_strategy(options)
        grid = parse_grid(options["grid"])
        if not grid:
            raise CommandError("--grid: give at least one NAME=V1,V2,...")
        params = parse_params(options["params"])
        plan = fold_plan(options, default_folds=5)
        rows, source, flag = read_source(options)
        try:
            prepared = sweep_prepare(
                rows=rows,
                entry=entry,
                params=params,
                grid=grid,
                plan=plan,
                signal_source=source,
                source_flag=flag,
            )
        except SweepInputError as exc:
            raise as_command_error(exc) from exc
        sweep = sweep_register(prepared=prepared)
        show = not options["no_progress"] and sys.stderr.isatty()
        progress = terminal_progress(sys.stderr) if show else no_progress
        if options["workers"] == "local":
            sweep = sweep_run_local(sweep=sweep, progress=progress)
        else:
            sweep_enqueue(sweep=sweep)
            if options["no_wait"]:
                self.stdout.write(
                    f"sweep {sweep.sweep_id}: {sweep.chunk_total} chunks queued; "
                    f"`manage.py sweep status {sweep.sweep_id}`\n"
                )
                return
            sweep = self.wait(sweep, progress, options["timeout"])
        self.show(sweep, options)

    def find(self, sweep_id: str) -> Sweep:
        sweep = sweep_get(sweep_id=sweep_id)
        if sweep is None:
            raise CommandError(f"no sweep {sweep_id!r}")
        return sweep

    def wait(self, sweep: Sweep, progress: Progress, timeout: float) -> Sweep:
        start = last_requeue = time.monotonic()
        while sweep.status not in (SweepStatus.DONE, SweepStatus.FAILED):
            progress(sweep.chunk_done, sweep.chunk_total, f"sweep {sweep.sweep_id[:8]}")
            now = time.monotonic()
            if now - start > timeout:
                raise CommandError(
                    f"--timeout: sweep {sweep.sweep_id} not finished after {timeout:.0f} s "
                    f"({sweep.chunk_done}/{sweep.chunk_total}); it goes on in the workers"
                )
            if now - last_requeue > REQUEUE_EVERY_SECONDS:
                sweep_requeue(sweep_id=sweep.sweep_id, older_than=CLAIM_LEASE)
                last_requeue = now
            time.sleep(POLL_SECONDS)
            sweep.refresh_from_db()
        progress(sweep.chunk_done, sweep.chunk_total, f"sweep {sweep.sweep_id[:8]}")
        return sweep

    def show(self, sweep: Sweep, options: dict[str, Any]) -> None:
        head = (
            f"sweep {sweep.sweep_id} {sweep.family} {sweep.status} "
            f"{sweep.chunk_done}/{sweep.chunk_total} chunks"
        )
        self.stdout.write(head + "\n")
        if sweep.status == SweepStatus.FAILED:
            raise CommandError(f"sweep {sweep.sweep_id} failed: {sweep.error}")
        if sweep.report is None:
            return
        self.stdout.write(leaderboard_table(sweep.report) + "\n")
        if options.get("output_dir") is not None:
            out: Path = options["output_dir"]
            try:
                written = write_artifacts(out, {REPORT: sweep.report})
            except OSError as exc:
                raise CommandError(f"--output-dir {out}: {exc.strerror}") from exc
            self.stdout.write(f"artifacts: {', '.join(str(out / w) for w in written)}\n")


def leaderboard_table(report: dict[str, Any], top: int | None = None) -> str:
    rows = [["rank", "setting", "params", "net_pnl", "trades", "sharpe", "dsr", "psr", "pbo",
             "trial_count"]]  # fmt: skip
    names = [name for name, _ in report["spec"]["grid"]]
    rows.extend(
        [
            [
                str(e["rank"]),
                str(e["setting"]),
                " ".join(f"{k}={e['params'].get(k)}" for k in names),
                fmt(e["net_pnl"], 2),
                str(e["trade_count"]),
                fmt(e["sharpe_ratio"]),
                fmt(e["deflated_sharpe_ratio"]),
                fmt(e["probabilistic_sharpe_ratio"]),
                fmt(e["probability_of_backtest_overfitting"]),
                str(e["trial_count"]),
            ]
            for e in report["leaderboard"][:top]
        ]
    )
    return table(rows)
