#!/usr/bin/env python
"""Generate the bundled sample market data (deterministic: seeded numpy, fixed formatting).

One regular session (Tue 2026-03-03, 09:30–16:00 New York, 390 one-minute bars) for AAPL, MSFT,
NVDA, SPY and TSLA, preceded by the previous session's last hour (60 bars) so every indicator is
warm at the open. Log prices follow a mean-reverting (Ornstein-Uhlenbeck) walk around a slowly
drifting level plus a few intraday swings, so dips and rallies are sharp enough for the MACD/RSI
strategies to trade both ways.

Writes
- trading/sample_data/bars-sample.csv: every bar (warm-up hour included), `Bar` fields;
- trading/sample_data/signals-sample.csv: one flat signal per session bar, event_ts = bar close
  time, features from `trading.indicators` over the close prices (seq = bar number in the
  session, 1..390);
- tests/fixtures/walkforward_signals.json: the 3 AAPL envelope signals of the autonomy
  walk-forward fixture, at the path the original's lane example names
  (docs/compatibility.md#inputs-and-gate-policy).

Usage: .venv/bin/python scripts/generate_sample_data.py [--out DIR]  (--out: all three in DIR)
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trading.indicators import compute_features  # noqa: E402
from trading.signals.session import session_key  # noqa: E402

SEED = 20260303
SESSION_OPEN_UTC = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)  # 09:30 EST
WARMUP_OPEN_UTC = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # 15:00 EST the day before
SESSION_BARS = 390
WARMUP_BARS = 60
# symbol: (start price, per-minute volatility, typical spread $, mean volume per minute)
SYMBOLS: dict[str, tuple[float, float, float, int]] = {
    "AAPL": (231.40, 0.0009, 0.02, 95_000),
    "MSFT": (412.80, 0.0008, 0.03, 45_000),
    "NVDA": (134.60, 0.0014, 0.01, 480_000),
    "SPY": (581.20, 0.0006, 0.01, 120_000),
    "TSLA": (252.30, 0.0016, 0.04, 210_000),
}
SIGNAL_COLUMNS = (
    "event_ts",
    "symbol",
    "seq",
    "timeframe",
    "price",
    "macd",
    "macd_signal",
    "macd_hist",
    "rsi14",
    "ema12",
    "ema26",
    "boll_mid",
    "boll_upper",
    "boll_lower",
    "vol_realized_w60s",
    "vwap_session",
    "vwap_w5m",
    "spread",
)
BAR_COLUMNS = (
    "timestamp",
    "symbol",
    "timeframe",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "trade_count",
)
WALKFORWARD_SIGNALS = [
    ("2026-01-01T00:01:00+00:00", "1.2", "0.5", "20", "100.00"),
    ("2026-01-01T00:02:00+00:00", "-0.2", "0.1", "75", "101.00"),
    ("2026-01-01T00:04:00+00:00", "0.2", "0.1", "30", "102.00"),
]


def bar_times() -> list[datetime]:
    warm = [WARMUP_OPEN_UTC + timedelta(minutes=i) for i in range(WARMUP_BARS)]
    day = [SESSION_OPEN_UTC + timedelta(minutes=i) for i in range(SESSION_BARS)]
    return warm + day


def simulate_closes(rng: np.random.Generator, start: float, sigma: float, n: int) -> np.ndarray:
    """Cent-rounded closes: OU log-price around a drifting level, plus intraday swings."""
    theta = 0.06  # pull back towards the level per minute
    level = np.cumsum(rng.normal(0.0, sigma * 0.25, n))
    t = np.arange(n)
    swings = np.zeros(n)
    for _ in range(4):
        period = rng.uniform(35.0, 110.0)
        amplitude = sigma * rng.uniform(6.0, 11.0)
        swings += amplitude * np.sin(2 * math.pi * t / period + rng.uniform(0, 2 * math.pi))
    x = np.zeros(n)
    shocks = rng.normal(0.0, sigma, n)
    for i in range(1, n):
        x[i] = x[i - 1] + theta * (level[i] - x[i - 1]) + shocks[i]
    closes: np.ndarray = np.round(start * np.exp(x + swings - swings[0]), 2)
    return closes


def simulate_symbol(
    rng: np.random.Generator, symbol: str, times: list[datetime]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    start, sigma, spread, mean_volume = SYMBOLS[symbol]
    n = len(times)
    close = simulate_closes(rng, start, sigma, n)
    open_ = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0.0, sigma * 0.6, n)) * close
    high = np.round(np.maximum(open_, close) + wick, 2)
    low = np.round(np.minimum(open_, close) - np.abs(rng.normal(0.0, sigma * 0.6, n)) * close, 2)
    minute = np.array([(ts - SESSION_OPEN_UTC).total_seconds() / 60 % 1440 for ts in times])
    u_shape = 1.0 + 1.8 * np.exp(-minute / 25.0) + 1.2 * np.exp(-(390 - minute) / 20.0)
    volume = np.round(mean_volume * u_shape * rng.lognormal(0.0, 0.35, n)).astype(np.int64)
    sessions = np.array([session_key(ts) for ts in times], dtype=np.int64)
    features = compute_features(close, volume=volume.astype(np.float64), session=sessions)
    spreads = np.maximum(0.01, np.round(spread * rng.lognormal(0.0, 0.3, n), 2))

    bars: list[dict[str, str]] = []
    signals: list[dict[str, str]] = []
    for i, ts in enumerate(times):
        bars.append(
            {
                "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "symbol": symbol,
                "timeframe": "1Min",
                "open": f"{open_[i]:.2f}",
                "high": f"{high[i]:.2f}",
                "low": f"{low[i]:.2f}",
                "close": f"{close[i]:.2f}",
                "volume": str(int(volume[i])),
                "vwap": f"{(high[i] + low[i] + close[i]) / 3:.4f}",
                "trade_count": str(max(1, int(volume[i]) // 120)),
            }
        )
        if i < WARMUP_BARS:
            continue
        row = {
            "event_ts": (ts + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "symbol": symbol,
            "seq": str(i - WARMUP_BARS + 1),
            "timeframe": "1Min",
            "price": f"{close[i]:.2f}",
            "spread": f"{spreads[i]:.2f}",
        }
        for key in SIGNAL_COLUMNS:
            if key in row:
                continue
            value = float(features[key][i])
            digits = 4 if key in ("rsi14",) else 6
            row[key] = f"{value:.{digits}f}" if math.isfinite(value) else ""
        signals.append(row)
    return bars, signals


def to_csv(rows: list[dict[str, str]], columns: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def walkforward_json() -> str:
    rows = [
        {
            "event_ts": ts,
            "symbol": "AAPL",
            "timeframe": "1Min",
            "payload": {"macd": {"macd": macd, "signal": signal}, "rsi14": rsi, "price": price},
        }
        for ts, macd, signal, rsi, price in WALKFORWARD_SIGNALS
    ]
    return json.dumps(rows, indent=2) + "\n"


def generate() -> dict[str, str]:
    rng = np.random.default_rng(SEED)
    times = bar_times()
    all_bars: list[dict[str, str]] = []
    all_signals: list[dict[str, str]] = []
    for symbol in SYMBOLS:
        bars, signals = simulate_symbol(rng, symbol, times)
        all_bars.extend(bars)
        all_signals.extend(signals)
    all_bars.sort(key=lambda r: (r["timestamp"], r["symbol"]))
    all_signals.sort(key=lambda r: (r["event_ts"], r["symbol"], int(r["seq"])))
    return {
        "bars-sample.csv": to_csv(all_bars, BAR_COLUMNS),
        "signals-sample.csv": to_csv(all_signals, SIGNAL_COLUMNS),
        "walkforward_signals.json": walkforward_json(),
    }


# where each file is committed when no --out is given
HOMES = {"walkforward_signals.json": ROOT / "tests" / "fixtures"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    for name, text in generate().items():
        folder = args.out or HOMES.get(name, ROOT / "trading" / "sample_data")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path} ({len(text.encode()):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
