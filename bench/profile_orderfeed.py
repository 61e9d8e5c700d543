"""Profile of the order-feed handler alone (no Kafka): where one batch's time goes.

Builds the benchmark's trade updates as `RawMessage`s (new → partial_fill → fill per order, whose
executions exist) and feeds them to `OrderFeedHandler.handle_batch` in batches, against a scratch
Postgres database, with the consumer process's garbage-collector settings. Reports, per event:
- wall µs; this process's CPU µs (Python, psycopg, JSON — the part one consumer process cannot
  parallelise); the database server's CPU µs (the backend's own run time, read from
  /proc/<pid>/schedstat: Postgres on this machine) and the rest (waiting: I/O, scheduling);
- per statement (each execute, COPY and the COMMIT): round trips per batch, wall and server CPU
  µs per event.
`--cprofile` prints the top functions (`--sort tottime|cumulative`). `--setup-sql` runs SQL after
the migrations (a what-if trial: drop an index, change a column) and records nothing.

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
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _common import ROOT, django_setup, scratch_database, write_result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--database", default="torghut_perf_profile")
    parser.add_argument(
        "--setup-sql", help="SQL run after the migrations, before the orders (what-if trials)"
    )
    args = parser.parse_args()

    os.environ["DB_DSN"] = scratch_database(args.database)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        check=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "torghut_site.settings"},
    )
    django_setup()
    from django.db import connection
    from orderfeed_ingest import create_orders, update

    from orderfeed.consumer import consumer_process_tune
    from orderfeed.services import OrderFeedHandler
    from torghut_site.kafka.messages import RawMessage

    orders = args.events // 3
    if args.setup_sql:
        with connection.cursor() as cursor:
            cursor.execute(args.setup_sql)
    create_orders(0, orders)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT pg_backend_pid()")
        server = _server_clock(cursor.fetchone()[0])
    now_ms = int(time.time() * 1000)
    messages = [
        RawMessage("bench.profile", n % 3, i, b"S000", update(n, step), now_ms)
        for i, (n, step) in enumerate((n, step) for n in range(orders) for step in range(3))
    ]
    batches = [messages[i : i + args.batch] for i in range(0, len(messages), args.batch)]
    consumer_process_tune()

    handler = OrderFeedHandler()
    profiler = cProfile.Profile() if args.cprofile else None
    wall = cpu = srv = 0.0
    with _statements(server) as statements:
        for batch in batches:
            w0, c0, s0 = time.perf_counter(), time.process_time(), server()
            if profiler is not None:
                profiler.enable()
            handler.handle_batch(batch)
            if profiler is not None:
                profiler.disable()
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
            srv += server() - s0
    n = len(messages)
    us = 1e6 / n
    print(f"events {n}, batch {args.batch}, batches {len(batches)}")
    print(f"wall           {wall * us:7.1f} µs/event   ({n / wall:,.0f} events/s)")
    print(f"CPU here       {cpu * us:7.1f} µs/event   ({n / cpu:,.0f} events/s if never waiting)")
    print(f"CPU Postgres   {srv * us:7.1f} µs/event   ({n / srv:,.0f} events/s for one backend)")
    print(f"rest           {(wall - cpu - srv) * us:7.1f} µs/event   (I/O, scheduling)")
    print("per statement: round trips/batch, wall µs/event, Postgres CPU µs/event")
    for name, (count, s_wall, s_srv) in sorted(statements.items(), key=lambda kv: -kv[1][1]):
        print(f"  {count / len(batches):4.1f}  {s_wall * us:6.1f}  {s_srv * us:6.1f}  {name}")
    figures = {
        "events": n,
        "batch": args.batch,
        "wall_us_per_event": round(wall * us, 1),
        "python_cpu_us_per_event": round(cpu * us, 1),
        "postgres_cpu_us_per_event": round(srv * us, 1),
        "round_trips_per_batch": round(sum(c for c, _, _ in statements.values()) / len(batches), 1),
        "statements": {
            name: {
                "per_batch": round(c / len(batches), 1),
                "wall_us_per_event": round(w * us, 1),
                "postgres_cpu_us_per_event": round(s * us, 1),
            }
            for name, (c, w, s) in statements.items()
        },
    }
    if profiler is not None:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(40)
    elif not args.setup_sql:  # a what-if trial leaves the recorded figures alone
        print(write_result("profile_orderfeed", figures))


def _server_clock(pid: int) -> Callable[[], float]:
    """CPU seconds the Postgres backend `pid` has run (0 when it cannot be read)."""
    path = f"/proc/{pid}/schedstat"

    def read() -> float:
        try:
            with open(path, encoding="ascii") as f:
                return int(f.read().split()[0]) / 1e9
        except OSError:
            return 0.0

    return read


@contextmanager
def _statements(server: Callable[[], float]) -> Iterator[dict[str, list[Any]]]:
    """Count and time every statement, COPY and commit at the psycopg level (the ingest's own
    cursors bypass Django's execute wrappers)."""
    from psycopg import Connection, Cursor

    totals: dict[str, list[Any]] = defaultdict(lambda: [0, 0.0, 0.0])
    original_execute, original_copy, original_commit = (
        Cursor.execute,
        Cursor.copy,
        Connection.commit,
    )

    def timed(name: str, action: Callable[[], Any]) -> Any:
        w0, s0 = time.perf_counter(), server()
        try:
            return action()
        finally:
            entry = totals[name]
            entry[0] += 1
            entry[1] += time.perf_counter() - w0
            entry[2] += server() - s0

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        return timed(_name(query), lambda: original_execute(self, query, *args, **kwargs))

    @contextmanager
    def copy(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        w0, s0 = time.perf_counter(), server()
        with original_copy(self, statement, *args, **kwargs) as c:
            yield c
        entry = totals[_name(statement)]
        entry[0] += 1
        entry[1] += time.perf_counter() - w0
        entry[2] += server() - s0

    def commit(self: Any) -> None:
        timed("COMMIT", lambda: original_commit(self))

    Cursor.execute = execute  # type: ignore[method-assign]
    Cursor.copy = copy  # type: ignore[method-assign]
    Connection.commit = commit  # type: ignore[method-assign]
    try:
        yield totals
    finally:
        Cursor.execute = original_execute  # type: ignore[method-assign]
        Cursor.copy = original_copy  # type: ignore[method-assign]
        Connection.commit = original_commit  # type: ignore[method-assign]


def _name(query: Any) -> str:
    text = " ".join(str(query).split())
    return text[:70]


if __name__ == "__main__":
    main()
