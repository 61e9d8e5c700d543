"""The shared consumer's poison isolation (`BatchConsumer._isolate`) on its own: a handler that
refuses any batch holding a poison message, and the batches it was given, in order."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter

from torghut_site.kafka.config import ConsumerSettings
from torghut_site.kafka.consumer import BatchConsumer, ConsumerMetrics
from torghut_site.kafka.messages import DeadLetter, RawMessage


class PoisonRefusing:
    def __init__(self, poison: set[int]) -> None:
        self.poison = poison
        self.calls: list[tuple[int, ...]] = []
        self.handled: list[int] = []

    def handle_batch(self, messages: Sequence[RawMessage]) -> list[DeadLetter]:
        offsets = tuple(m.offset for m in messages)
        self.calls.append(offsets)
        if self.poison & set(offsets):
            raise ValueError(f"poison in {offsets}")
        self.handled.extend(offsets)
        return []


def consumer(handler: PoisonRefusing, attempts: int = 2) -> BatchConsumer:
    registry = CollectorRegistry()
    settings = ConsumerSettings(
        name="isolation-test",
        heartbeat_kind="test",
        bootstrap_servers="127.0.0.1:1",
        topics=("t",),
        group_id="g",
        client_id="c",
        max_handler_attempts=attempts,
        retry_backoff_seconds=0.0,
    )
    metrics = ConsumerMetrics(
        messages=Counter("m", "m", registry=registry), errors=Counter("e", "e", registry=registry)
    )
    return BatchConsumer(settings, handler, metrics)


def batch(n: int) -> list[RawMessage]:
    return [RawMessage("t", 0, offset, None, b"{}", 0) for offset in range(n)]


def test_one_poison_in_sixteen_is_found_by_halves_in_log_order():
    handler = PoisonRefusing({11})
    messages = batch(16)
    letters = consumer(handler)._isolate(messages)

    assert [(letter.message.offset, letter.reason) for letter in letters] == [(11, "handler_error")]
    assert letters[0].error == "ValueError: poison in (11,)"
    assert handler.handled == [o for o in range(16) if o != 11]  # every other one, in log order
    assert handler.calls == [
        (0, 1, 2, 3, 4, 5, 6, 7),
        (8, 9, 10, 11, 12, 13, 14, 15),  # fails once: split
        (8, 9, 10, 11),  # fails once: split
        (8, 9),
        (10, 11),  # fails once: split
        (10,),
        (11,),
        (11,),  # a single message gets every attempt (2) before it is dead-lettered
        (12, 13, 14, 15),
    ]


def test_every_poison_is_dead_lettered_and_the_rest_handled():
    handler = PoisonRefusing({0, 5, 6})
    letters = consumer(handler, attempts=3)._isolate(batch(8))

    assert [letter.message.offset for letter in letters] == [0, 5, 6]
    assert handler.handled == [1, 2, 3, 4, 7]
    assert handler.calls.count((0,)) == 3
    # 5 halves that fail once ([0-3], [0, 1], [4-7], [4, 5], [6, 7]), 3 poisons × 3 attempts, 4
    # halves and singles handled ([1], [2, 3], [4], [7]): many poisons in a small batch cost more than one by one would
    assert len(handler.calls) == 18
