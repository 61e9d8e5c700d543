"""Celery round trip of a trade cycle: `.delay()` to the cycle's completion in the database.

A real `celery worker` (the deployment's pool: prefork, --concurrency 2, late acks, prefetch 1)
on a private redis-server and a scratch Postgres database (`torghut_bench_celery`, or DB_DSN).
Lanes `bench-0..` are simulated-broker paper lanes (TRADING_ACCOUNTS_JSON), each with a replay
cursor over the same sample signals (the first --signals rows of
trading/sample_data/signals-sample.csv, all already "played") and one legacy_macd_rsi strategy, so
every measured cycle does the same work on a fresh lane: fetch the signals, decide, send orders to
the simulated broker, commit the cursor.

Per run: `run_trade_cycle.delay(lane)`, then the lane's `last_cycle_finished_at` is polled (every
--poll-ms) until the cycle has committed it; the worker's own start and finish stamps split the
round trip into queue + pick-up and the cycle itself. Baseline, interleaved with the cycles:
`torghut_site.tasks.ping` (a no-op task) `.delay().get()` through a Redis result backend.
--sets sets of --runs round trips each (p50/p99 per set, reported as ranges), after --warmup of
each. Writes bench/results/celery_roundtrip.json.

    .venv/bin/python bench/celery_roundtrip.py [--sets 2] [--runs 20] [--signals 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    PrivateRedis,
    django_setup,
    manage,
    percentile,
    process_env,
    scratch_database,
    spread,
    wait_until,
    write_result,
)

SETUP = r"""
from datetime import timedelta
from django.utils import timezone
from trading.models import Strategy, TradeCursor
Strategy.objects.create(name="macd", strategy_type="legacy_macd_rsi", enabled=True,
                        base_timeframe="1Min", max_notional_per_trade=1000,
                        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65})
# the anchor is moved to a few seconds before each lane's cycle (rows older than the 15-minute
# lookback would be skipped)
anchor = (timezone.now() - timedelta(seconds=10)).isoformat()
TradeCursor.objects.bulk_create([TradeCursor(source="replay", account_label=label,
                                             state={"anchor": anchor}) for label in LABELS])
"""


def signals_file(path: Path, rows: int) -> Path:
    lines = (ROOT / "trading" / "sample_data" / "signals-sample.csv").read_text().splitlines()
    path.write_text("\n".join(lines[: rows + 1]) + "\n")
    return path


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": ms(percentile(ordered, 0.50)),
        "p99_ms": ms(percentile(ordered, 0.99)),
        "max_ms": ms(ordered[-1]),
    }


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--signals", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--poll-ms", type=float, default=2.0)
    parser.add_argument("--database", default="torghut_bench_celery")
    return parser.parse_args()


def _environment(
    dsn: str, var: str, redis_url: str, labels: list[str], signals: int
) -> dict[str, str]:
    return process_env(
        dsn,
        var,
        CELERY_BROKER_URL=redis_url,
        CELERY_RESULT_BACKEND=redis_url.removesuffix("/0") + "/1",
        TRADING_ENABLED="true",
        TRADING_KILL_SWITCH_ENABLED="false",
        TRADING_MULTI_ACCOUNT_ENABLED="true",
        TRADING_ACCOUNTS_JSON=json.dumps(
            [{"label": label, "mode": "paper", "broker": "simulated"} for label in labels]
        ),
        TRADING_SIGNAL_SOURCE="replay",
        TRADING_SIGNAL_REPLAY_PATH=str(signals_file(Path(var) / "signals.csv", signals)),
        TRADING_SIGNAL_REPLAY_LOOP="false",
        TRADING_SIGNAL_REPLAY_SPEED="1000",
        TRADING_EXECUTION_PREFER_LIMIT="false",
        TRADING_FEATURE_QUALITY_ENABLED="false",
    )


def _worker(env: dict[str, str], log_path: Path, concurrency: int) -> subprocess.Popen[bytes]:
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "torghut_site", "worker",
             "--pool=prefork", f"--concurrency={concurrency}", "-Q", "torghut",
             "-n", "bench@celery", "--without-gossip", "--without-mingle",
             "--loglevel=warning"],
            cwd=ROOT, env=env, stdout=log, stderr=log,
        )  # fmt: skip


def _stop(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=10)


def _cycle(label: str, poll: float, log_path: Path) -> dict[str, Any]:
    """One trade cycle of `label` sent through the broker, timed until its lane row says done."""
    from django.utils import timezone

    from trading.models import LaneState, TradeCursor
    from trading.tasks import run_trade_cycle

    # at 1000x replay speed 5 s of play covers the rows' 83 minutes: all "played"
    anchor = (timezone.now() - timedelta(seconds=5)).isoformat()
    TradeCursor.objects.filter(account_label=label).update(state={"anchor": anchor})
    sent = time.time()
    begin = time.perf_counter()
    run_trade_cycle.delay(label)
    rows = LaneState.objects.filter(account_label=label, last_cycle_finished_at__isnull=False)
    deadline = begin + 120
    while not rows.exists():
        if time.perf_counter() > deadline:
            raise SystemExit(f"cycle of {label} did not finish:\n{log_path.read_text()}")
        time.sleep(poll)
    total = time.perf_counter() - begin
    state = LaneState.objects.get(account_label=label)
    if state.last_cycle_status != "ok" or not state.last_cycle_summary.get("submitted"):
        raise SystemExit(f"{label}: {state.last_cycle_status} {state.last_cycle_summary}")
    assert state.last_cycle_started_at and state.last_cycle_finished_at
    started = state.last_cycle_started_at.timestamp()
    return {
        "total": total,
        "pickup": started - sent,
        "work": state.last_cycle_finished_at.timestamp() - started,
        "summary": state.last_cycle_summary,
    }


def _noop() -> float:
    from torghut_site.tasks import ping

    begin = time.perf_counter()
    ping.delay().get(timeout=60)
    return time.perf_counter() - begin


def _measure(args: argparse.Namespace, labels: list[str], log_path: Path) -> list[dict[str, Any]]:
    from trading.models import LaneState

    # the worker reconciles every lane at start: measure once that queue has drained
    ready = wait_until(
        lambda: LaneState.objects.filter(last_reconcile_at__isnull=False).count() == len(labels),
        timeout=180,
        step=0.5,
    )
    if not ready:
        raise SystemExit(f"the worker did not start:\n{log_path.read_text()}")
    poll = args.poll_ms / 1000
    lanes = iter(labels)
    for _ in range(args.warmup):
        _noop()
        _cycle(next(lanes), poll, log_path)
    sets: list[dict[str, Any]] = []
    for number in range(args.sets):
        load_avg = round(os.getloadavg()[0], 1)
        cycles, pings = [], []
        for _ in range(args.runs):
            pings.append(_noop())
            cycles.append(_cycle(next(lanes), poll, log_path))
        one = {
            "load_average_1min_at_start": load_avg,
            "trade_cycle": summary([c["total"] for c in cycles]),
            "trade_cycle_queue_and_pickup": summary([c["pickup"] for c in cycles]),
            "trade_cycle_in_worker": summary([c["work"] for c in cycles]),
            "noop_task": summary(pings),
            "cycle_summary": {
                k: v
                for k, v in cycles[-1]["summary"].items()
                if k in ("signals", "intents", "decisions", "submitted", "rejected")
            },
        }
        sets.append(one)
        print(f"set {number + 1}/{args.sets}: {json.dumps(one)}", flush=True)
    return sets


def _report(args: argparse.Namespace, sets: list[dict[str, Any]]) -> None:
    figures: dict[str, Any] = {
        "sets": args.sets,
        "runs_per_set": args.runs,
        "signals_per_cycle": args.signals,
        "worker": f"prefork --concurrency {args.concurrency}, redis-server broker, Postgres",
        "poll_ms": args.poll_ms,
        "per_set": sets,
    }
    for part in (
        "trade_cycle",
        "trade_cycle_queue_and_pickup",
        "trade_cycle_in_worker",
        "noop_task",
    ):
        for key in ("p50_ms", "p99_ms"):
            figures[f"{part}_{key}"] = spread([s[part][key] for s in sets])
    for key in ("p50_ms", "p99_ms"):
        figures[f"trade_cycle_{key}_ratio_vs_noop"] = spread(
            [round(s["trade_cycle"][key] / s["noop_task"][key], 1) for s in sets]
        )
    table: list[dict[str, Any]] = [
        {
            "name": f"celery trade cycle round trip {key[:3]}",
            "figure": figures[f"trade_cycle_{key}"],
            "baseline": figures[f"noop_task_{key}"],
            "ratio": figures[f"trade_cycle_{key}_ratio_vs_noop"],
            "unit": f"ms (baseline: no-op task; {args.signals} signals/cycle)",
        }
        for key in ("p50_ms", "p99_ms")
    ]
    path = write_result("celery_roundtrip", figures, table)
    for key, value in figures.items():
        if key != "per_set":
            print(f"{key:<44} {value}")
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    args = _arguments()
    labels = [f"bench-{i}" for i in range(args.warmup + args.sets * args.runs)]
    dsn = scratch_database(args.database)
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as var, PrivateRedis(var) as redis:
        env = _environment(dsn, var, redis.url, labels, args.signals)
        manage("migrate", "-v0", env=env)
        manage("shell", "-c", f"LABELS = {labels!r}\n{SETUP}", env=env)
        os.environ.update(env)  # this process is the client (`.delay()`) on the same settings
        django_setup()
        log_path = Path(var) / "worker.log"
        worker = _worker(env, log_path, args.concurrency)
        try:
            sets = _measure(args, labels, log_path)
        finally:
            _stop(worker)
    _report(args, sets)


if __name__ == "__main__":
    main()
