"""Arguments shared by `manage.py backtest` and `manage.py sweep`: the strategy, the signal source,
parameters and the fold plan, parsed into the services' inputs (errors name the flag)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from autonomy.services.sweep_data import (
    StrategyEntry,
    rows_clickhouse,
    rows_from_file,
    rows_replay,
    strategy_entry,
)
from autonomy.sweep import PLAN_KINDS, FoldPlanSpec, SweepInputError
from trading.signals.base import SignalSourceError


def add_source_arguments(parser: CommandParser, *, strategy_required: bool = True) -> None:
    parser.add_argument("--strategy-config", required=strategy_required, type=Path)
    parser.add_argument(
        "--strategy", default=None, help="catalog entry name (default: the one enabled)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--signals", type=Path, help="a signal file (JSON, JSON lines or CSV)")
    source.add_argument(
        "--replay",
        nargs=2,
        metavar=("FROM", "TO"),
        help="recorded signals in [FROM, TO] (ISO, UTC)",
    )
    source.add_argument(
        "--clickhouse", nargs=2, metavar=("FROM", "TO"), help="ClickHouse signals in [FROM, TO]"
    )
    parser.add_argument("--params", nargs="+", default=[], metavar="K=V")
    parser.add_argument("--fold-plan", choices=PLAN_KINDS, default="rolling")
    parser.add_argument("--folds", type=int, default=None, help="test windows, or cpcv groups")
    parser.add_argument("--test-groups", type=int, default=2, help="cpcv: groups tested per split")
    parser.add_argument("--purge", type=int, default=1, help="cpcv: rows purged before a test")
    parser.add_argument("--embargo", type=int, default=0, help="cpcv: rows embargoed after a test")
    parser.add_argument("--no-progress", action="store_true")


def parse_value(text: str) -> Any:
    """A parameter value: an int, a float, true/false, else the text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text.strip()


def parse_params(items: list[str], flag: str = "--params") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise CommandError(f"{flag}: expected NAME=VALUE, got {item!r}")
        if name.strip() in out:
            raise CommandError(f"{flag}: {name.strip()} is given twice")
        out[name.strip()] = parse_value(value)
    return out


def parse_grid(items: list[str]) -> list[tuple[str, list[Any]]]:
    out: list[tuple[str, list[Any]]] = []
    for item in items:
        name, sep, values = item.partition("=")
        parts = [v for v in values.split(",") if v.strip()]
        if not sep or not name.strip() or not parts:
            raise CommandError(f"--grid: expected NAME=V1,V2,..., got {item!r}")
        if any(name.strip() == known for known, _ in out):
            raise CommandError(f"--grid: {name.strip()} is given twice")
        out.append((name.strip(), [parse_value(v) for v in parts]))
    return out


def fold_plan(options: dict[str, Any], default_folds: int) -> FoldPlanSpec:
    folds = options["folds"] if options["folds"] is not None else default_folds
    if folds < 1:
        raise CommandError("--folds must be at least 1")
    return FoldPlanSpec(
        kind=options["fold_plan"],
        folds=folds,
        test_groups=options["test_groups"],
        purge=options["purge"],
        embargo=options["embargo"],
    )


def _when(text: str, flag: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CommandError(f"{flag}: not an ISO time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def read_source(options: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str]:
    """(rows, signal source name, its flag)."""
    try:
        if options["signals"] is not None:
            path: Path = options["signals"]
            try:
                return rows_from_file(path), "file", "--signals"
            except OSError as exc:
                raise CommandError(f"--signals {path}: {exc.strerror}") from exc
            except (ValueError, UnicodeDecodeError) as exc:
                raise CommandError(f"--signals {path}: {exc}") from exc
        for flag, name, reader in (
            ("--replay", "replay", rows_replay),
            ("--clickhouse", "clickhouse", rows_clickhouse),
        ):
            bounds = options[name]
            if bounds is not None:
                start, end = _when(bounds[0], flag), _when(bounds[1], flag)
                if end < start:
                    raise CommandError(f"{flag}: TO is before FROM")
                return reader(start, end), name, flag
    except SignalSourceError as exc:
        raise CommandError(f"signal source: {exc}") from exc
    raise CommandError(
        "give one signal source: --signals FILE, --replay FROM TO or --clickhouse FROM TO"
    )


def read_strategy(options: dict[str, Any]) -> StrategyEntry:
    path: Path = options["strategy_config"]
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"--strategy-config {path}: {exc.strerror}") from exc
    try:
        return strategy_entry(raw, options["strategy"])
    except SweepInputError as exc:
        raise as_command_error(exc) from exc


def as_command_error(exc: SweepInputError) -> CommandError:
    return CommandError(f"{exc.flag}: {exc}" if exc.flag else str(exc))


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
