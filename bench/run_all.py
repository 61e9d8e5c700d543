"""Run every benchmark script in bench/ and print one table of their headline figures.

make bench        (or .venv/bin/python bench/run_all.py [--only api_latency ...])

Each script writes bench/results/<name>.json. A script's JSON may carry its own `table` rows
({name, figure, baseline, ratio, unit}); for the others the rows are read from their figures here.
`ratio` is figure / baseline where both were measured in the same run; a {min, median, max} value
(several runs or sets in one invocation) prints as a min–max range. A row whose JSON was not
rewritten by this run (its script failed) is marked "stale".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
# (script, result name, arguments)
SCRIPTS: list[tuple[str, str, list[str]]] = [
    ("decision_pipeline.py", "decision_pipeline", []),
    ("submit_path.py", "submit_path", []),
    ("orderfeed_ingest.py", "orderfeed_ingest", []),
    ("consumer_idle.py", "consumer_idle", []),
    ("profile_orderfeed.py", "profile_orderfeed", []),
    ("backtest_engine.py", "backtest_engine", []),
    ("api_latency.py", "api_latency", []),
    ("celery_roundtrip.py", "celery_roundtrip", []),
    ("sweep_workers.py", "sweep_workers", []),
    ("chaos_soak.py", "chaos_soak", ["--schedules", "200"]),
]

Row = dict[str, Any]


def _range(value: Any) -> Any:
    return value if isinstance(value, dict) else {"min": value, "median": value, "max": value}


def _ratio_range(per_run: list[dict[str, Any]], num: str, den: str) -> dict[str, float]:
    ratios = sorted(r[num] / r[den] for r in per_run if r.get(den))
    return {"min": ratios[0], "median": ratios[len(ratios) // 2], "max": ratios[-1]}


def _submit_path(f: dict[str, Any]) -> list[Row]:
    rates = f["worker_decisions_per_second"]
    return [
        {
            "name": "submit path, 2 processes",
            "figure": {"min": min(rates), "median": sum(rates) / len(rates), "max": max(rates)},
            "baseline": None,
            "ratio": None,
            "unit": "decisions/s per process"
            + ("" if f["invariant_one_order_per_decision"] else " (DUPLICATE ORDERS)"),
        }
    ]


def _orderfeed_ingest(f: dict[str, Any]) -> list[Row]:
    runs = f["per_run"]
    return [
        {
            "name": "order-feed ingest, 1 process",
            "figure": f["ingest_events_per_second_1_process"],
            "baseline": f["raw_consume_records_per_second"],
            "ratio": _ratio_range(runs, "one", "raw"),
            "unit": "events/s (baseline: raw confluent-kafka consume)",
        },
        {
            "name": "order-feed ingest, 2 processes",
            "figure": f["ingest_events_per_second_2_processes"],
            "baseline": f["raw_consume_records_per_second"],
            "ratio": _ratio_range(runs, "two", "raw"),
            "unit": "events/s (baseline: raw confluent-kafka consume)",
        },
        {
            "name": "order-feed latency p50/p99",
            "figure": f"{fmt(f['latency_p50_ms'])} / {fmt(f['latency_p99_ms'])}",
            "baseline": None,
            "ratio": None,
            "unit": f"ms at {f['latency_rate_per_second']} updates/s",
        },
    ]


def _profile_orderfeed(f: dict[str, Any]) -> list[Row]:
    return [
        {
            "name": "order-feed handler CPU",
            "figure": f"{f['python_cpu_us_per_event']} + {f['postgres_cpu_us_per_event']}",
            "baseline": None,
            "ratio": None,
            "unit": f"µs/event Python + Postgres (wall {f['wall_us_per_event']})",
        }
    ]


def _backtest_engine(f: dict[str, Any]) -> list[Row]:
    return [
        {
            "name": "backtest + walk-forward",
            "figure": f["pipeline_bars_per_s"],
            "baseline": f["baseline_bars_per_s"],
            "ratio": f["speedup_vs_baseline"],
            "unit": "bars/s (baseline: pandas ewm + Python loop)",
        },
        *(
            [
                {
                    "name": "backtest + walk-forward vs vectorbt",
                    "figure": f["pipeline_best_of_3_s"],
                    "baseline": f["vectorbt_s"],
                    "ratio": f["speedup_vs_vectorbt"],
                    "unit": "s (baseline: vectorbt from_signals, no walk-forward)",
                }
            ]
            if "vectorbt_s" in f
            else []
        ),
        {
            "name": "parameter sweep",
            "figure": f["sweep_bars_per_s"],
            "baseline": f["baseline_bars_per_s"],
            "ratio": round(f["sweep_bars_per_s"] / f["baseline_bars_per_s"], 1),
            "unit": f"bars/s, {f['sweep_settings']} settings",
        },
    ]


EXTRACTORS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "submit_path": _submit_path,
    "orderfeed_ingest": _orderfeed_ingest,
    "profile_orderfeed": _profile_orderfeed,
    "backtest_engine": _backtest_engine,
}


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        low, high = value["min"], value["max"]
        return fmt(low) if low == high else f"{fmt(low)}–{fmt(high)}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def rows_of(name: str, since: float) -> list[Row]:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return [{"name": name, "figure": "no result", "baseline": None, "ratio": None, "unit": ""}]
    data = json.loads(path.read_text())
    extract = EXTRACTORS.get(name)
    rows = data.get("table") or (extract(data["figures"]) if extract else [])
    measured = datetime.fromisoformat(data["measured_at"]).timestamp()
    if measured < since - 1:
        rows = [{**row, "unit": f"{row['unit']} [stale: {data['measured_at']}]"} for row in rows]
    return list(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks and print one table.")
    parser.add_argument("--only", nargs="*", help="result names to run (default: all)")
    parser.add_argument("--table-only", action="store_true", help="print the stored results")
    args = parser.parse_args()
    chosen = [s for s in SCRIPTS if not args.only or s[1] in args.only]
    started = time.time()
    failed: list[str] = []
    if not args.table_only:
        for script, _name, extra in chosen:
            print(f"== {script} {' '.join(extra)}", flush=True)
            began = time.perf_counter()
            result = subprocess.run([sys.executable, str(BENCH / script), *extra], check=False)
            print(f"== {script}: exit {result.returncode} in {time.perf_counter() - began:.0f} s")
            if result.returncode != 0:
                failed.append(script)
    else:
        started = 0.0
    table = [row for _, name, _ in chosen for row in rows_of(name, started)]
    header = ("benchmark", "figure", "baseline", "ratio", "unit")
    cells = [header] + [
        (r["name"], fmt(r["figure"]), fmt(r["baseline"]), fmt(r["ratio"]), r["unit"]) for r in table
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    print()
    print(
        f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs, "
        f"{datetime.now(tz=UTC).isoformat(timespec='seconds')}"
    )
    for cell in cells:
        print("  ".join(c.ljust(w) for c, w in zip(cell[:4], widths, strict=True)) + "  " + cell[4])
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
