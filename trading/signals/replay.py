"""Replay a recorded signal file (CSV or JSONL/JSON) as if it were a live feed.

The file's timeline is rebased onto `anchor`: a row recorded at t plays at
anchor + (t - t0) / speed, where t0 is the first row's time, and is only released once that time
has come (≤ now). With `loop` the file starts over one bar after its last row (the period is the
recorded span plus the smallest gap between consecutive timestamps); every pass adds
(max seq + 1) to the rows' seq so positions keep increasing and the cursor stays monotonic.
Everything is computed from (anchor, speed, now), so the same inputs give the same batches.
"""

from __future__ import annotations

import bisect
import csv
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from trading.signals.base import CursorRules, CursorSignalSource, require_aware
from trading.signals.types import ParsedRows, SignalCursor, SignalEnvelope, row_key
from trading.signals.types import parse_signal_row as _parse_signal_row

SOURCE_NAME = "replay"


@dataclass(frozen=True)
class _Recorded:
    offset_us: int  # microseconds since the first row
    key: SignalCursor
    signal: SignalEnvelope | None  # None: invalid row (counted, skipped)


@dataclass(frozen=True)
class _Tape:
    rows: tuple[_Recorded, ...]
    offsets: tuple[int, ...]
    period_us: int  # one pass, including the gap before the restart
    seq_stride: int


_cache: dict[tuple[str, int, int], _Tape] = {}
_cache_lock = threading.Lock()


def read_signal_rows(path: Path) -> list[dict[str, Any]]:
    """Raw rows of a .csv (header row), .jsonl (one object a line) or .json (array) file."""
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return [dict(row) for row in csv.DictReader(text.splitlines())]
    if suffix == ".json":
        data = json.loads(text)
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON array of rows")
        return [dict(row) for row in data if isinstance(row, Mapping)]
    rows: list[dict[str, Any]] = []
    for line in text.splitlines():
        if line.strip():
            item = json.loads(line)
            if isinstance(item, Mapping):
                rows.append(dict(item))
    return rows


def _load_tape(path: Path) -> _Tape:
    stat = path.stat()
    cache_key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        tape = _cache.get(cache_key)
    if tape is not None:
        return tape
    keyed: list[tuple[SignalCursor, SignalEnvelope | None]] = []
    for row in read_signal_rows(path):
        key = row_key(row)
        if key is None:
            continue  # no position: cannot be placed on the timeline
        keyed.append((key, _parse_signal_row(row, source=SOURCE_NAME)))
    keyed.sort(key=lambda item: item[0])
    if not keyed:
        tape = _Tape(rows=(), offsets=(), period_us=0, seq_stride=1)
    else:
        t0 = keyed[0][0].event_ts
        rows = tuple(
            _Recorded(offset_us=_micros(key.event_ts - t0), key=key, signal=signal)
            for key, signal in keyed
        )
        offsets = tuple(r.offset_us for r in rows)
        distinct = sorted(set(offsets))
        gaps = [b - a for a, b in zip(distinct, distinct[1:], strict=False)]
        step = min(gaps) if gaps else 60_000_000
        tape = _Tape(
            rows=rows,
            offsets=offsets,
            period_us=distinct[-1] + step,
            seq_stride=max(r.key.seq for r in rows) + 1,
        )
    with _cache_lock:
        _cache[cache_key] = tape
    return tape


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class ReplaySignalSource(CursorSignalSource):
    def __init__(
        self,
        path: Path | str,
        *,
        anchor: datetime,
        speed: float = 1.0,
        loop: bool = True,
        rules: CursorRules | None = None,
    ) -> None:
        super().__init__(rules=rules)
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.path = Path(path)
        self.anchor = require_aware(anchor)
        self.speed = speed
        self.loop = loop
        ratio = Fraction(speed).limit_denominator(1_000_000)
        self._num, self._den = ratio.numerator, ratio.denominator
        self._tape = _load_tape(self.path)

    # -- timeline ---------------------------------------------------------------------------
    # play offset (µs since anchor) = floor(file offset * den / num) with speed = num / den:
    # exact integer arithmetic, monotonic, and invertible without search.
    def _play_time(self, file_us: int) -> datetime:
        return self.anchor + timedelta(microseconds=(file_us * self._den) // self._num)

    def _file_us(self, when: datetime) -> int:
        """The largest file offset (µs, counting past passes) whose play time is ≤ `when`."""
        played = _micros(when - self.anchor)
        return ((played + 1) * self._num - 1) // self._den

    def _position(self, pass_no: int, index: int) -> tuple[datetime, SignalCursor]:
        row = self._tape.rows[index]
        played = self._play_time(pass_no * self._tape.period_us + row.offset_us)
        return played, SignalCursor(
            played, row.key.symbol, row.key.seq + pass_no * self._tape.seq_stride
        )

    # -- CursorSignalSource -------------------------------------------------------------------
    def latest_event_ts(self, now: datetime) -> datetime | None:
        tape = self._tape
        if not tape.rows:
            return None
        file_now = self._file_us(now)
        if file_now < 0:
            return None
        pass_no, within = divmod(file_now, tape.period_us)
        if not self.loop and pass_no >= 1:
            pass_no, within = 0, tape.period_us
        index = bisect.bisect_right(tape.offsets, within) - 1  # offsets[0] == 0 <= within
        return self._play_time(pass_no * tape.period_us + tape.offsets[index])

    def read_after(self, start: SignalCursor, *, limit: int, now: datetime) -> ParsedRows:
        tape = self._tape
        if not tape.rows:
            return ParsedRows()
        file_start = max(self._file_us(start.event_ts), 0)
        pass_no, within = divmod(file_start, tape.period_us)
        if not self.loop and pass_no >= 1:
            return ParsedRows()
        # first candidate: the first row at or after the start time (ties are filtered by key)
        index = bisect.bisect_left(tape.offsets, within)
        while index > 0 and self._position(pass_no, index - 1)[0] >= start.event_ts:
            index -= 1
        signals: list[SignalEnvelope] = []
        invalid = 0
        last_key: SignalCursor | None = None
        read = 0
        while read < limit:
            if index >= len(tape.rows):
                pass_no += 1
                index = 0
                if not self.loop:
                    break
            played, key = self._position(pass_no, index)
            if played > now:
                break
            index += 1
            if key <= start:
                continue
            read += 1
            last_key = key
            recorded = tape.rows[index - 1].signal
            if recorded is None:
                invalid += 1
                continue
            signals.append(replace(recorded, event_ts=played, seq=key.seq))
        return ParsedRows(signals=signals, invalid_rows=invalid, last_key=last_key)


def load_signals(
    path: Path | str, *, source: str = SOURCE_NAME
) -> tuple[list[SignalEnvelope], int]:
    """All rows of a signal file as recorded (not rebased), sorted; with the invalid-row count."""
    signals: list[SignalEnvelope] = []
    invalid = 0
    for row in read_signal_rows(Path(path)):
        signal = _parse_signal_row(row, source=source)
        if signal is None:
            invalid += 1
        else:
            signals.append(signal)
    signals.sort(key=lambda s: s.cursor)
    return signals, invalid


__all__ = ["ReplaySignalSource", "load_signals", "read_signal_rows"]
