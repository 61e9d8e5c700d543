"""What a backtest or a sweep evaluates: the signal rows (a signal file, a replay of the recorded
`TaSignal` rows, or a ClickHouse range), the strategy-catalog entry, and the dataset as every
worker reads it.

The dataset of a sweep is the canonical JSON of its signal rows (`dataset_bytes`), stored once in
object storage under its sha256 (`dataset_store`, write-once). A frame is always built from those
bytes (`frame_from_dataset`), by the process that registers the sweep as by every worker, so all
of them see exactly the same rows, parsed the way the research lane parses them
(`autonomy.engine.data.frame_from_rows`, kept to the strategy's universe).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from autonomy.engine.artifacts import canonical_json
from autonomy.engine.backtest import BacktestConfig, Sizing
from autonomy.engine.data import BarFrame, frame_from_rows
from autonomy.lane_inputs import CandidateSpec, LaneInputError, catalog_spec
from autonomy.services.research_lane import costs_from_settings
from autonomy.services.schedule import signal_row
from autonomy.sweep import SweepInputError, frame_rows
from torghut_site.storage import object_get, object_put_once
from trading.services.catalog import CatalogError, parse_catalog
from trading.signals.base import CursorSignalSource
from trading.signals.replay import read_signal_rows
from trading.signals.types import SignalCursor

DATASET_PREFIX = "autonomy/datasets"
PAGE = 5_000
MAX_ROWS = 2_000_000
_FRAMES: dict[tuple[str, str, tuple[str, ...]], BarFrame] = {}  # a worker's last datasets
_FRAME_CACHE_SIZE = 2


# a catalog entry as the lane reads it (`autonomy.lane_inputs.catalog_spec`)
StrategyEntry = CandidateSpec


def strategy_entry(raw: bytes, name: str | None) -> StrategyEntry:
    """The catalog entry named `name` (enabled or not), else the one enabled entry."""
    try:
        entries = parse_catalog(raw.decode("utf-8"))
    except (CatalogError, UnicodeDecodeError) as exc:
        raise SweepInputError(str(exc), flag="--strategy-config") from exc
    if name:
        chosen = [e for e in entries if e["name"] == name]
        if not chosen:
            known = ", ".join(e["name"] for e in entries) or "none"
            raise SweepInputError(
                f"no strategy named {name!r} in the config (it has: {known})", flag="--strategy"
            )
    else:
        chosen = [e for e in entries if e["enabled"]]
        if len(chosen) != 1:
            raise SweepInputError(
                f"{len(chosen)} strategies are enabled in the config: name one with --strategy",
                flag="--strategy",
            )
    try:
        return catalog_spec(chosen[0])
    except LaneInputError as exc:
        raise SweepInputError(str(exc), flag="--strategy-config") from exc


def backtest_config(entry: StrategyEntry) -> BacktestConfig:
    """Costs, sizing and cash exactly as the research lane sets them (`autonomy.research_lane`)."""
    sizing = (
        Sizing(max_notional_per_trade=entry.max_notional_per_trade)
        if entry.max_notional_per_trade is not None
        else Sizing(qty=float(settings.TRADING_DEFAULT_QTY or 1))
    )
    return BacktestConfig(
        costs=costs_from_settings(),
        sizing=sizing,
        starting_cash=float(settings.SIMULATED_BROKER_STARTING_CASH or 0),
    )


def rows_from_file(path: Path) -> list[dict[str, Any]]:
    return read_signal_rows(path)


def rows_between(
    source: CursorSignalSource, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Every signal of `source` with start <= event_ts <= end, in stream order, as rows the
    lane's parser reads back into the same signals."""
    cursor = SignalCursor.at(start)
    out: list[dict[str, Any]] = []
    while len(out) < MAX_ROWS:
        page = source.read_after(cursor, limit=PAGE, now=end)
        out.extend(signal_row(s) for s in page.signals if start <= s.event_ts <= end)
        if page.last_key is None or len(page.signals) < PAGE or page.last_key.event_ts > end:
            break
        cursor = page.last_key
    return out


def rows_replay(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The recorded signal rows (`trading.models.TaSignal`) in [start, end]."""
    from trading.signals.kafka import KafkaSignalSource

    return rows_between(KafkaSignalSource(), start, end)


def rows_clickhouse(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The configured ClickHouse signal table's rows in [start, end]."""
    from trading.signals.clickhouse import ClickHouseSignalSource

    return rows_between(ClickHouseSignalSource.from_settings(), start, end)


def dataset_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    return canonical_json(list(rows))


def dataset_key(sha256: str) -> str:
    return f"{DATASET_PREFIX}/{sha256}.json"


def dataset_store(data: bytes) -> tuple[str, str]:
    """(sha256, object key) of the dataset, stored write-once."""
    sha = hashlib.sha256(data).hexdigest()
    key = dataset_key(sha)
    object_put_once(key, data, content_type="application/json")
    return sha, key


def frame_from_dataset(
    data: bytes, *, source: str, timeframe: str, universe: Sequence[str]
) -> BarFrame:
    rows = json.loads(data)
    parsed = frame_from_rows(rows, source=source, timeframe=timeframe)
    return frame_rows(parsed.frame, universe)


def dataset_frame(
    *, key: str, sha256: str, source: str, timeframe: str, universe: Sequence[str]
) -> BarFrame:
    """The stored dataset's frame (kept per worker process for the last few datasets); the bytes
    read must hash to `sha256`."""
    cache_key = (sha256, timeframe, tuple(universe))
    if cache_key in _FRAMES:
        return _FRAMES[cache_key]
    data = object_get(key)
    if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), sha256):
        raise SweepInputError(f"the stored dataset {key} does not hash to {sha256}")
    frame = frame_from_dataset(data, source=source, timeframe=timeframe, universe=universe)
    while len(_FRAMES) >= _FRAME_CACHE_SIZE:
        _FRAMES.pop(next(iter(_FRAMES)))
    _FRAMES[cache_key] = frame
    return frame
