"""Profile of the order-feed handler alone (no Kafka): where one batch's time goes.

Builds the benchmark's trade updates as `RawMessage`s (new → partial_fill → fill per order, whose
executions exist) and feeds them to `OrderFeedHandler.handle_batch` in batches, against a scratch
Postgres database. Reports, per event: wall µs, this process's CPU µs (Python, psycopg, JSON —
the part one consumer process cannot parallelise) and the rest (waiting for Postgres), and the
database round trips per batch. `--cprofile` prints the top functions by cumulative time.

    .venv/bin/python bench/profile_orderfeed.py [--events 30000] [--batch 2000] [--cprofile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import ROOT, django_setup, scratch_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()

    os.environ["DB_DSN"] = scratch_database("torghut_perf_profile")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        check=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "torghut_site.settings"},
    )
    django_setup()
    from django.db import connection
    from orderfeed_ingest import create_orders, update

    from orderfeed.services import OrderFeedHandler
    from torghut_site.kafka import RawMessage

    orders = args.events // 3
    create_orders(0, orders)
    now_ms = int(time.time() * 1000)
    messages = [
        RawMessage("bench.profile", n % 3, i, b"S000", update(n, step), now_ms)
        for i, (n, step) in enumerate((n, step) for n in range(orders) for step in range(3))
    ]
    batches = [messages[i : i + args.batch] for i in range(0, len(messages), args.batch)]

    statements = 0

    def count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    handler = OrderFeedHandler()
    profiler = cProfile.Profile() if args.cprofile else None
    wall = cpu = 0.0
    with connection.execute_wrapper(count):
        copies = _count_copies()
        for batch in batches:
            w0, c0 = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            handler.handle_batch(batch)
            if profiler is not None:
                profiler.disable()
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
    n = len(messages)
    print(f"events {n}, batch {args.batch}, batches {len(batches)}")
    print(f"wall      {wall / n * 1e6:8.1f} µs/event   ({n / wall:,.0f} events/s)")
    print(f"CPU here  {cpu / n * 1e6:8.1f} µs/event   ({n / cpu:,.0f} events/s if never waiting)")
    print(f"waiting   {(wall - cpu) / n * 1e6:8.1f} µs/event")
    print(
        f"round trips per batch: {statements / len(batches):.1f} statements "
        f"+ {copies() / len(batches):.1f} COPY"
    )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def _count_copies() -> Callable[[], int]:
    """COPY goes around Django's execute wrapper: count psycopg `Cursor.copy` calls instead."""
    from psycopg import Cursor

    calls = 0
    original = Cursor.copy

    def copy(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(self, *args, **kwargs)

    Cursor.copy = copy  # type: ignore[method-assign]
    return lambda: calls


if __name__ == "__main__":
    main()
