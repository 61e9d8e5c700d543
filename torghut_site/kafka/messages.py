"""What a consumer hands its handler and gets back: consumed records, dead letters, and the
handler protocols (`BatchHandler`, `PreparingHandler`, `StartingHandler`). No database, no
consumer loop, so `torghut_site.services` (which records dead letters) can import it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from confluent_kafka import Message

OFFSET_REUSED = "offset_reused"


@dataclass(frozen=True)
class RawMessage:
    """A consumed record, detached from librdkafka (safe to keep after the next poll)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None

    @classmethod
    def from_kafka(cls, message: Message) -> RawMessage:
        ts_type, ts = message.timestamp()
        return cls(
            topic=message.topic() or "",
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            key=message.key(),
            value=message.value(),
            timestamp_ms=ts if ts_type != 0 and ts >= 0 else None,
        )

    @property
    def produced_at(self) -> datetime | None:
        if self.timestamp_ms is None:
            return None
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)


@dataclass(frozen=True)
class DeadLetter:
    message: RawMessage
    reason: str
    error: str

    @classmethod
    def offset_reused(cls, message: RawMessage, holds: str) -> DeadLetter:
        """A record whose log position is stored with other content (`holds`, e.g. "a stored
        event with other content"): the log handed the offset out again (a topic recreated, a
        broker that lost acknowledged records). Kept as a dead letter, never dropped as a
        duplicate of what the position holds."""
        return cls(
            message,
            OFFSET_REUSED,
            f"{message.topic}[{message.partition}]@{message.offset} holds {holds}: "
            "the log reused the offset",
        )


class BatchHandler(Protocol):
    """Handles one batch in one database transaction; returns the messages it refuses."""

    def handle_batch(self, messages: Sequence[RawMessage]) -> list[DeadLetter]: ...


@runtime_checkable
class PreparingHandler(BatchHandler, Protocol):
    """A handler in two steps, so the first can run for the next batch on a helper thread.

    `prepare_batch` is CPU only: no database, no side effect, no metrics; whatever it returns is
    read-only (a retried batch reuses it). `handle_prepared` is `handle_batch` given it.
    """

    def prepare_batch(self, messages: Sequence[RawMessage]) -> Any: ...

    def handle_prepared(
        self, messages: Sequence[RawMessage], prepared: Any
    ) -> list[DeadLetter]: ...


@runtime_checkable
class StartingHandler(BatchHandler, Protocol):
    """A handler whose own database says where a partition should start when the group has no
    committed offset for it (a first join, offsets expired, a new group id).

    `start_offsets` gets the `(topic, partition)` pairs without a committed offset and returns,
    for those it knows, the first offset it has not applied; it must be sure that every record
    before that offset was applied (the rest start at the earliest retained record, which the
    handler's dedupe makes safe). Runs on the consumer's thread inside the assignment callback:
    one short query, no side effect.
    """

    def start_offsets(
        self, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]: ...
