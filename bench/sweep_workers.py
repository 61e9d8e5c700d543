"""A parameter sweep on 1 and 2 Celery worker processes, against the same sweep in-line.

One dataset (--symbols x --bars generated one-minute bars with the live indicators, stored once
by sha256 in the artifact store) and one sweep of legacy_macd_rsi: a --grid-size x --grid-size
grid of RSI thresholds over --folds rolling folds, so settings x folds chunks. Per run the sweep's
ledger rows and trials are deleted and it is registered again, then computed:

- in-line: every chunk in this process (`sweep_run_local`, the `--workers local` path);
- 1 worker: `sweep_enqueue` to a private redis-server and one `celery worker --pool=prefork
  --concurrency=1` on the `research` queue, timed until the sweep is `done` (report written);
- 2 workers: the same with two such worker processes.

Each worker does one warm-up sweep first (its process reads the dataset once; a worker keeps the
last datasets' frames). Parallel efficiency = t(1 worker) / (2 x t(2 workers)); every run's
report must have the same sha256 (the byte-identical report, whoever computed the chunks). The
machine's other load shows in `load_average_1min_at_start`. Writes bench/results/sweep_workers.json.

    .venv/bin/python bench/sweep_workers.py [--runs 3] [--bars 20000] [--grid-size 5] [--folds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    PrivateRedis,
    django_setup,
    manage,
    process_env,
    scratch_database,
    spread,
    wait_until,
    write_result,
)

STRATEGY = b"""strategies:
  - name: bench-sweep
    type: legacy_macd_rsi
    version: 1.0.0
    enabled: true
    base_timeframe: 1Min
    params: {}
"""


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=2)
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--grid-size", type=int, default=5)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--database", default="torghut_bench_sweep")
    return parser.parse_args()


def _rows(symbols: int, bars: int) -> list[dict[str, Any]]:
    from datetime import UTC, datetime, timedelta

    import numpy as np

    from trading.indicators import compute_features, finite_features

    start = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for s in range(symbols):
        rng = np.random.default_rng(s)
        t = np.arange(bars)
        log_price = np.cumsum(rng.normal(0, 0.0015, bars)) + 0.02 * np.sin(2 * np.pi * t / 90)
        close = np.round((50.0 + 10 * s) * np.exp(log_price), 2)
        features = compute_features(close)
        for i in range(bars):
            row: dict[str, Any] = {
                "event_ts": (start + timedelta(minutes=i)).isoformat(),
                "symbol": f"S{s:02d}",
                "seq": i,
                "timeframe": "1Min",
                "price": f"{close[i]:.2f}",
            }
            row.update(finite_features(features, i))
            rows.append(row)
    rows.sort(key=lambda r: (r["event_ts"], r["symbol"], r["seq"]))
    return rows


def _prepared(rows: list[dict[str, Any]], grid_size: int, folds: int, offset: int = 0) -> Any:
    from autonomy.services.sweep_data import strategy_entry
    from autonomy.services.sweeps import sweep_prepare
    from autonomy.sweep import FoldPlanSpec

    buys = [30 + offset + 3 * i for i in range(grid_size)]
    sells = [55 + offset + 3 * i for i in range(grid_size)]
    return sweep_prepare(
        rows=rows,
        entry=strategy_entry(STRATEGY, None),
        params={},
        grid=[("buy_rsi_threshold", buys), ("sell_rsi_threshold", sells)],
        plan=FoldPlanSpec("rolling", folds),
        signal_source="file",
    )


def _fresh(prepared: Any) -> Any:
    from autonomy.models import ResearchTrial, Sweep
    from autonomy.services.sweeps import sweep_register

    Sweep.objects.filter(sweep_id=prepared.spec.sweep_id).delete()
    ResearchTrial.objects.all().delete()
    return sweep_register(prepared=prepared)


def _inline(prepared: Any) -> tuple[float, str]:
    from autonomy.services.sweeps import sweep_run_local

    sweep = _fresh(prepared)
    begin = time.perf_counter()
    sweep = sweep_run_local(sweep=sweep)
    return time.perf_counter() - begin, sweep.report_sha256


def _distributed(prepared: Any, timeout: float = 900) -> tuple[float, str]:
    from autonomy.models import Sweep, SweepStatus
    from autonomy.services.sweeps import sweep_enqueue

    sweep = _fresh(prepared)
    begin = time.perf_counter()
    sweep_enqueue(sweep=sweep)
    rows = Sweep.objects.filter(pk=sweep.pk, status=SweepStatus.DONE)
    if not wait_until(rows.exists, timeout=timeout, step=0.05):
        raise SystemExit(f"sweep {sweep.sweep_id} did not finish")
    elapsed = time.perf_counter() - begin
    return elapsed, Sweep.objects.get(pk=sweep.pk).report_sha256


def _workers(env: dict[str, str], var: str, count: int) -> list[subprocess.Popen[bytes]]:
    out = []
    for i in range(count):
        log = open(Path(var) / f"worker-{count}-{i}.log", "w")  # noqa: SIM115 - the process's
        out.append(
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "celery"),
                    "-A",
                    "torghut_site",
                    "worker",
                    "--pool=prefork",
                    "--concurrency=1",
                    "-Q",
                    "research",
                    "-n",
                    f"sweep{i}@bench",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel=info",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )  # fmt: skip
        )
    for i in range(count):
        path = Path(var) / f"worker-{count}-{i}.log"
        if not wait_until(lambda p=path: "ready." in p.read_text(), timeout=120, step=0.2):
            raise SystemExit(f"worker {i} did not start:\n{path.read_text()}")
    return out


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        w.terminate()
    for w in workers:
        try:
            w.wait(timeout=30)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait(timeout=10)


def _measure(args: argparse.Namespace, env: dict[str, str], var: str) -> dict[str, Any]:
    rows = _rows(args.symbols, args.bars)
    prepared = _prepared(rows, args.grid_size, args.folds)
    warmup = _prepared(rows, 2, args.folds, offset=1)  # same dataset, another sweep
    _inline(warmup)
    runs: dict[str, list[float]] = {"inline": [], "workers_1": [], "workers_2": []}
    shas: set[str] = set()
    for _ in range(args.runs):
        elapsed, sha = _inline(prepared)
        runs["inline"].append(elapsed)
        shas.add(sha)
    for count in (1, 2):
        workers = _workers(env, var, count)
        try:
            for _ in range(count):  # every worker process reads the dataset once
                _distributed(warmup)
            for _ in range(args.runs):
                elapsed, sha = _distributed(prepared)
                runs[f"workers_{count}"].append(elapsed)
                shas.add(sha)
        finally:
            _stop(workers)
    if len(shas) != 1:
        raise SystemExit(f"the report differs between runs: {sorted(shas)}")
    return {
        "runs": runs,
        "report_sha256": shas.pop(),
        "rows": prepared.spec.rows,
        "chunks": prepared.spec.chunk_count,
    }


def _report(args: argparse.Namespace, measured: dict[str, Any], load: float) -> None:
    runs = measured["runs"]
    t_inline, t1, t2 = (min(runs[k]) for k in ("inline", "workers_1", "workers_2"))
    figures: dict[str, Any] = {
        "load_average_1min_at_start": load,
        "dataset_rows": measured["rows"],
        "settings": args.grid_size**2,
        "folds": args.folds,
        "chunks": measured["chunks"],
        "runs": args.runs,
        "inline_s": spread(runs["inline"], 3),
        "workers_1_s": spread(runs["workers_1"], 3),
        "workers_2_s": spread(runs["workers_2"], 3),
        "parallel_efficiency": round(t1 / (2 * t2), 3),  # best of runs
        "speedup_2_vs_1": round(t1 / t2, 3),
        "workers_1_vs_inline": round(t1 / t_inline, 3),
        "report_sha256": measured["report_sha256"],
        "report_identical_across_runs": True,
        "worker": "celery prefork --concurrency 1 per process, private redis-server, Postgres",
    }
    table = [
        {
            "name": f"sweep of {measured['chunks']} chunks on 2 workers",
            "figure": figures["workers_2_s"],
            "baseline": figures["workers_1_s"],
            "ratio": figures["speedup_2_vs_1"],
            "unit": f"s (baseline: 1 worker; efficiency {figures['parallel_efficiency']})",
        },
        {
            "name": "sweep on 1 worker vs in-line",
            "figure": figures["workers_1_s"],
            "baseline": figures["inline_s"],
            "ratio": figures["workers_1_vs_inline"],
            "unit": "s (baseline: the same sweep in one process)",
        },
    ]
    path = write_result("sweep_workers", figures, table)
    print(json.dumps(figures, indent=2))
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    args = _arguments()
    dsn = scratch_database(args.database)
    load = round(os.getloadavg()[0], 1)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as var, PrivateRedis(var) as redis:
        env = process_env(dsn, var, CELERY_BROKER_URL=redis.url)
        manage("migrate", "-v0", env=env)
        os.environ.update(env)  # this process registers, enqueues and runs the in-line sweep
        django_setup()
        measured = _measure(args, env, var)
    _report(args, measured, load)


if __name__ == "__main__":
    main()
