import subprocess
import sys
from pathlib import Path

from trading.signals.replay import load_signals
from trading.strategies.registry import get_strategy

ROOT = Path(__file__).resolve().parents[3]
SAMPLE_DIR = ROOT / "trading" / "sample_data"
FIXTURES_DIR = ROOT / "tests" / "fixtures"
HOMES = {
    "bars-sample.csv": SAMPLE_DIR,
    "signals-sample.csv": SAMPLE_DIR,
    "walkforward_signals.json": FIXTURES_DIR,
}


def test_generator_is_deterministic_and_matches_the_committed_files(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_sample_data.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.count("wrote ") == 3
    for name, home in HOMES.items():
        assert (tmp_path / name).read_bytes() == (home / name).read_bytes(), name


def test_sample_size_and_shape():
    total = sum((home / name).stat().st_size for name, home in HOMES.items())
    assert total < 1_000_000
    signals, invalid = load_signals(SAMPLE_DIR / "signals-sample.csv")
    assert invalid == 0
    assert len(signals) == 5 * 390
    assert sorted({s.symbol for s in signals}) == ["AAPL", "MSFT", "NVDA", "SPY", "TSLA"]
    assert signals[0].event_ts.isoformat() == "2026-03-03T14:31:00+00:00"
    assert signals[-1].event_ts.isoformat() == "2026-03-03T21:00:00+00:00"
    assert set(signals[0].features) == {
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
    }
    bars = (SAMPLE_DIR / "bars-sample.csv").read_text().splitlines()
    assert len(bars) == 1 + 5 * (60 + 390)


def test_both_strategies_trade_on_the_sample():
    signals, _ = load_signals(SAMPLE_DIR / "signals-sample.csv")
    counts = {}
    for name in ("legacy_macd_rsi", "intraday_tsmom"):
        strategy = get_strategy(name)
        actions = [strategy.evaluate(s, {}) for s in signals]
        counts[name] = (
            sum(1 for a in actions if a and a.action == "buy"),
            sum(1 for a in actions if a and a.action == "sell"),
        )
    assert counts == {"legacy_macd_rsi": (110, 107), "intraday_tsmom": (18, 0)}
