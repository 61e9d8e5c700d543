"""Idle CPU of the consumers: what `run_orderfeed_consumer` and `run_signal_consumer` cost while
their topics are empty, against a bare confluent-kafka consumer and a sleeping process.

For each broker — the test services' noida-db (127.0.0.1:19092, `--test-broker`) and a noida-db of
this benchmark's own (`PrivateBroker`, fresh data dir) — fresh topics (3 partitions each) are
created, then `python -c 'time.sleep()'` (the floor: what an idle process costs) and the two
consumer commands with default settings start. Once both have their partitions (they log
"partitions assigned"), user + system CPU of each process (/proc/<pid>/stat, all threads) and of
the broker's processes is sampled over `--seconds`. Then they stop, and a bare
`confluent_kafka.Consumer` with default settings polling the order-feed topic every 250 ms (what
the client library costs idle) is sampled the same way, with the broker (`broker_with_bare`).
Figures are % of one core. noida-db answers an empty fetch at once (it ignores
`fetch.wait.max.ms` and `fetch.min.bytes`), so a consumer that keeps fetching from an empty
partition spins, and the broker with it.

Postgres: a scratch database (`--database`) for the consumers' heartbeats, migrated first.

    .venv/bin/python bench/consumer_idle.py [--seconds 20] [--brokers test,private]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _common import ROOT, scratch_database, wait_until, write_result
from orderfeed_ingest import PrivateBroker, cpu_seconds, create_topic, delete_topics

TEST_BROKER = os.environ.get("TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
TARGET_PERCENT = 2.0

BARE_CONSUMER = """
import sys, uuid
from confluent_kafka import Consumer
consumer = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "bare-" + uuid.uuid4().hex})
consumer.subscribe([sys.argv[2]], on_assign=lambda c, p: print("partitions assigned", flush=True))
while True:
    consumer.poll(0.25)
"""


def consumer_env(bootstrap: str, topics: dict[str, str], var_dir: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TRADING_", "LLM_"))},
        "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
        "TORGHUT_ENV_FILE": "/nonexistent",
        "TORGHUT_VAR_DIR": var_dir,
        "LOG_LEVEL": "info",
        "TRADING_ORDER_FEED_ENABLED": "true",
        "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS": bootstrap,
        "TRADING_ORDER_FEED_TOPIC": topics["orderfeed"],
        "TRADING_ORDER_FEED_GROUP_ID": f"idle-orderfeed-{suffix}",
        "TRADING_ORDER_FEED_DLQ_TOPIC": "",
        "TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TRADING_SIGNAL_KAFKA_TOPIC": topics["signals"],
        "TRADING_SIGNAL_KAFKA_GROUP_ID": f"idle-signals-{suffix}",
        "TRADING_SIGNAL_KAFKA_DLQ_TOPIC": "",
    }


class Processes:
    """The measured processes, each with its output in a file (read for "partitions assigned")."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        out = open(Path(self.workdir) / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
        self.procs[name] = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out)

    def joined(self, name: str) -> bool:
        assert self.procs[name].poll() is None, f"{name} exited: {self.log(name)[-2000:]}"
        return "partitions assigned" in self.log(name)

    def log(self, name: str) -> str:
        return (Path(self.workdir) / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def sample(pids: dict[str, list[int]], seconds: float) -> dict[str, float]:
    """% of one core each group of processes uses over `seconds`."""
    before = {name: cpu_seconds(p) for name, p in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    return {
        name: round((cpu_seconds(p) - before[name]) / elapsed * 100, 2) for name, p in pids.items()
    }


def measure(bootstrap: str, broker_pids: list[int], seconds: float) -> dict[str, float]:
    """% of one core used by each process and the broker over `seconds` of idleness: first with
    our two consumers (and the sleeper), then with the bare consumer alone."""
    suffix = uuid.uuid4().hex[:8]
    topics = {"orderfeed": f"bench.idle.feed.{suffix}", "signals": f"bench.idle.signals.{suffix}"}
    for topic in topics.values():
        create_topic(bootstrap, topic, partitions=3)
    workdir = tempfile.mkdtemp(prefix="bench-idle-")
    env = consumer_env(bootstrap, topics, workdir)
    procs = Processes(workdir)
    try:
        procs.start("sleep", [sys.executable, "-c", "import time; time.sleep(3600)"], env)
        procs.start("orderfeed", [sys.executable, "manage.py", "run_orderfeed_consumer"], env)
        procs.start("signals", [sys.executable, "manage.py", "run_signal_consumer"], env)
        for name in ("orderfeed", "signals"):
            assert wait_until(lambda n=name: procs.joined(n), timeout=120), f"{name} did not join"
        time.sleep(2)  # the group settles (the last rebalance, the first fetches)
        pids = {name: [procs.procs[name].pid] for name in ("sleep", "orderfeed", "signals")}
        ours = sample({**pids, "broker": broker_pids}, seconds)
        for name in ("orderfeed", "signals"):
            procs.procs.pop(name).terminate()
        argv = [sys.executable, "-c", BARE_CONSUMER, bootstrap, topics["orderfeed"]]
        procs.start("bare", argv, env)
        assert wait_until(lambda: procs.joined("bare"), timeout=120), "bare did not join"
        time.sleep(2)
        bare = sample({"bare": [procs.procs["bare"].pid], "broker": broker_pids}, seconds)
        return {**ours, "bare": bare["bare"], "broker_with_bare": bare["broker"]}
    finally:
        procs.stop()
        delete_topics(bootstrap, list(topics.values()))


def noida_pids(port: int) -> list[int]:
    """The processes of the noida-db that listens on `port` (found by its command line)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "noida" in cmd and (f"--kafka-port {port}" in cmd or f"kafka-port={port}" in cmd):
            found.append(int(entry))
    return found


def print_figures(label: str, figures: dict[str, float]) -> None:
    print(f"{label}: % of one core while idle")
    for name, value in figures.items():
        print(f"  {name:10} {value:6.2f}")
    bare = figures["bare"]
    for name in ("orderfeed", "signals"):
        ratio = figures[name] / bare if bare else float("nan")
        print(f"  {name} / bare consumer: {ratio:.2f}")


def row(name: str, figure: float, baseline: float) -> dict[str, Any]:
    return {
        "name": name,
        "figure": figure,
        "baseline": baseline,
        "ratio": round(figure / baseline, 2) if baseline else None,
        "unit": f"% of a core idle (baseline: bare consumer; target < {TARGET_PERCENT})",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--brokers", default="test,private")
    parser.add_argument("--database", default="torghut_bench_idle")
    args = parser.parse_args()
    brokers = args.brokers.split(",")

    os.environ["DB_DSN"] = scratch_database(args.database)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        check=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "torghut_site.settings"},
    )
    figures: dict[str, Any] = {"seconds": args.seconds, "target_percent_of_a_core": TARGET_PERCENT}
    table = []
    if "test" in brokers:
        port = int(TEST_BROKER.rsplit(":", 1)[1])
        figures["test_broker"] = measure(TEST_BROKER, noida_pids(port), args.seconds)
        print_figures(f"test broker {TEST_BROKER}", figures["test_broker"])
    if "private" in brokers:
        with PrivateBroker() as broker:
            figures["private_broker"] = measure(broker.bootstrap, broker.pids(), args.seconds)
        print_figures("private broker", figures["private_broker"])
    for key, label in (("test_broker", "test broker"), ("private_broker", "private broker")):
        if key in figures:
            f = figures[key]
            table.append(row(f"idle order-feed consumer, {label}", f["orderfeed"], f["bare"]))
            table.append(row(f"idle signal consumer, {label}", f["signals"], f["bare"]))
    print(write_result("consumer_idle", figures, table))


if __name__ == "__main__":
    main()
