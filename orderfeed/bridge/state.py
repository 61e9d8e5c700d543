"""The bridge's bookkeeping: one session's stream watch, and the counters of a bridge's run."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class StreamWatch:
    """One session's stream-health bookkeeping, on the event loop (times: monotonic, except the
    wall-clock times still to be written)."""

    connected: bool = False  # `listening` came
    last_message: float = 0.0
    last_touch: float = 0.0  # the last health write
    message_at: datetime | None = None  # of the last frame not written yet
    event_at: datetime | None = None  # of the last trade update not written yet
    events: int = 0  # trade updates in this session
    check_pending: bool = False  # the worker is looking for open orders
    next_check: float = 0.0
    close: bool = False  # silent with open orders: the worker says close


@dataclass
class BridgeStats:
    account: str
    attempts: int = 0  # connection attempts
    rate_limited: int = 0  # attempts refused for too many connections
    silence_reconnects: int = 0  # sessions closed after the max silence with orders open
    connections: int = 0  # sessions that reached `listening`
    reconnects: int = 0  # attempts after the first
    updates: int = 0  # updates handed to the producer
    delivered: int = 0  # acknowledged by Kafka
    produce_errors: int = 0
    producer_fatal_errors: int = 0  # each one replaced the producer
    resent: int = 0  # unconfirmed updates produced again on a new producer
    connected: bool = False
    last_error: str = ""
    backoff_seconds: deque[float] = field(default_factory=lambda: deque(maxlen=32))

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "attempts": self.attempts,
            "rate_limited": self.rate_limited,
            "silence_reconnects": self.silence_reconnects,
            "connections": self.connections,
            "reconnects": self.reconnects,
            "updates": self.updates,
            "delivered": self.delivered,
            "produce_errors": self.produce_errors,
            "producer_fatal_errors": self.producer_fatal_errors,
            "resent": self.resent,
            "last_error": self.last_error,
            "backoff_seconds": list(self.backoff_seconds),
        }
