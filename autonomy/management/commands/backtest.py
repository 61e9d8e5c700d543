"""``manage.py backtest``: one strategy and configuration over a signal file, a replay of the
recorded signals or a ClickHouse range.

    manage.py backtest --strategy-config config/autonomous-strategy-sample.yaml \\
        [--strategy NAME] --signals FILE | --replay FROM TO | --clickhouse FROM TO \\
        [--params rsi_buy=30 ...] [--folds N --fold-plan rolling|anchored|cpcv] \\
        [--test-groups K --purge P --embargo E] --output-dir DIR [--no-progress]

Evaluates exactly like the research lane (its parser, costs from the simulated broker's settings,
sizing from the strategy's budget or TRADING_DEFAULT_QTY), prints a metrics table per fold with
the overfitting statistics against the family's recorded trials, writes
`backtest/report.json` and `manifest.json` (canonical JSON) under the output dir, and records the
trial (source `backtest`; the same setting on the same data is the same trial). Bad input is a
CommandError naming the flag, and nothing is recorded.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from autonomy.engine.artifacts import artifact_bytes
from autonomy.engine.progress import no_progress, terminal_progress
from autonomy.management.research_args import (
    add_source_arguments,
    as_command_error,
    fmt,
    fold_plan,
    parse_params,
    read_source,
    read_strategy,
)
from autonomy.services.sweeps import backtest_record, backtest_run, sweep_prepare
from autonomy.sweep import SweepInputError
from torghut_site.hashing import canonical_bytes_hash

REPORT = "backtest/report.json"
COLUMNS = ("fold", "rows", "net_pnl", "trades", "decisions", "max_drawdown", "cost_bps")


def write_artifacts(output_dir: Path, files: dict[str, Any]) -> list[str]:
    """Each artifact as canonical JSON, then `manifest.json` (path -> sha256)."""
    manifest = {}
    for rel, value in sorted(files.items()):
        data = artifact_bytes(value)
        path = output_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        manifest[rel] = canonical_bytes_hash(data)
    (output_dir / "manifest.json").write_bytes(artifact_bytes({"artifacts": manifest}))
    return sorted(manifest)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


class Command(BaseCommand):
    help = "Backtest one strategy configuration and record its trial."

    def add_arguments(self, parser: CommandParser) -> None:
        add_source_arguments(parser)
        parser.add_argument("--output-dir", required=True, type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        entry = read_strategy(options)
        params = parse_params(options["params"])
        plan = fold_plan(options, default_folds=1)
        rows, source, flag = read_source(options)
        show = not options["no_progress"] and sys.stderr.isatty()
        progress = terminal_progress(sys.stderr) if show else no_progress
        try:
            prepared = sweep_prepare(
                rows=rows,
                entry=entry,
                params=params,
                grid=[],
                plan=plan,
                signal_source=source,
                source_flag=flag,
            )
            outcome = backtest_run(prepared=prepared, progress=progress, record=False)
        except SweepInputError as exc:
            raise as_command_error(exc) from exc
        output_dir: Path = options["output_dir"]
        try:
            written = write_artifacts(output_dir, {REPORT: outcome.report})
        except OSError as exc:
            raise CommandError(f"--output-dir {output_dir}: {exc.strerror}") from exc
        recorded = backtest_record(outcome=outcome)
        self.stdout.write(self.render(outcome.report, outcome.trial.key, recorded))
        self.stdout.write(f"artifacts: {', '.join(str(output_dir / w) for w in written)}")

    def render(self, report: dict[str, Any], trial_key: str, recorded: bool) -> str:
        [setting] = report["settings"]
        lines = [list(COLUMNS)]
        for fold in setting["folds"]:
            for seg in fold["segments"]:
                m = seg["metrics"]
                lines.append(
                    [
                        fold["fold"],
                        f"[{seg['rows'][0]}, {seg['rows'][1]})",
                        fmt(m["net_pnl"], 2),
                        str(m["trade_count"]),
                        str(m["decision_count"]),
                        fmt(m["max_drawdown"], 2),
                        fmt(m["cost_bps"], 2),
                    ]
                )
        s = setting["summary"]
        lines.append(
            [
                "total",
                "",
                fmt(s["net_pnl"], 2),
                str(s["trade_count"]),
                str(s["decision_count"]),
                fmt(s["max_drawdown"], 2),
                fmt(s["cost_bps"], 2),
            ]
        )
        o = setting["overfitting"]
        stats = (
            f"sharpe_ratio {fmt(o['sharpe_ratio'])}  psr {fmt(o['probabilistic_sharpe_ratio'])}  "
            f"dsr {fmt(o['deflated_sharpe_ratio'])}  "
            f"pbo {fmt(o['probability_of_backtest_overfitting'])}  trial_count {o['trial_count']}"
        )
        spec = report["spec"]
        label = f"{spec['family']}@{spec['strategy_version']}"
        head = f"{spec['strategy_name']} ({label}) {setting['params']}"
        state = "recorded" if recorded else "already recorded"
        return "\n".join([head, table(lines), stats, f"trial {trial_key} ({state})"]) + "\n"
