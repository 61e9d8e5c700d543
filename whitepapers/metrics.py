"""Whitepaper workflow metrics (in the project registry, served on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

WHITEPAPER_EVENTS = Counter(
    "torghut_whitepaper_events_total",
    "GitHub issue events processed, by intake and outcome reason.",
    ["source", "reason"],
)
WHITEPAPER_DISPATCHES = Counter(
    "torghut_whitepaper_agentrun_dispatch_total",
    "AgentRun dispatches, by outcome (dispatched, idempotent, failed).",
    ["outcome"],
)
WHITEPAPER_FINALIZED = Counter(
    "torghut_whitepaper_runs_finalized_total",
    "Finalize calls, by resulting run status.",
    ["status"],
)
WHITEPAPER_KAFKA_MESSAGES = Counter(
    "torghut_whitepaper_kafka_messages_total", "Records polled from the GitHub events topic."
)
WHITEPAPER_KAFKA_ERRORS = Counter(
    "torghut_whitepaper_kafka_consumer_errors_total",
    "Kafka errors and failed handling attempts of the whitepaper consumer.",
)
WHITEPAPER_EXTRACTIONS = Counter(
    "torghut_whitepaper_text_extractions_total",
    "PDF text extractions in the limited child process, by outcome (ok, output, cpu, memory, "
    "timeout, failed).",
    ["outcome"],
)
