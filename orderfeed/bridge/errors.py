"""The bridge's classified errors: what ends a stream session (and is retried with backoff),
what refuses a connection for too many connections, what kills the Kafka producer."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from websockets.exceptions import WebSocketException

CONNECTION_LIMIT_TEXT = "connection limit exceeded"


class BridgeNotConfigured(Exception):
    """The bridge cannot start: no Kafka, no Alpaca lane, or a lane without keys."""


class StreamAuthError(Exception):
    """The stream refused the lane's key/secret."""


class StreamProtocolError(Exception):
    """The stream answered something the Alpaca protocol does not allow."""


class StreamRateLimited(Exception):
    """The stream refused the connection: too many connections for the account."""


class StreamSilent(Exception):
    """Connected, but nothing came for longer than the max silence while orders are open."""


# what ends a session and leads to a reconnect with backoff; anything else is a bug and raises
SESSION_ERRORS: tuple[type[BaseException], ...] = (
    StreamAuthError,
    StreamProtocolError,
    StreamRateLimited,
    StreamSilent,
    OSError,  # refused, reset, unreachable; TimeoutError is an OSError
    WebSocketException,  # handshake refused (e.g. HTTP 429/5xx), connection closed
)


def stream_rate_limited(exc: BaseException) -> bool:
    """A refusal for too many connections: HTTP 429 at the handshake (websockets' legacy client
    raises InvalidStatusCode with `status_code`, the new one InvalidStatus with `response`), or
    Alpaca's "connection limit exceeded"."""
    if isinstance(exc, StreamRateLimited):
        return True
    response = getattr(exc, "response", None)
    status = getattr(exc, "status_code", None) or getattr(response, "status_code", None)
    return status == 429 or CONNECTION_LIMIT_TEXT in str(exc).lower()


def fatal_kafka_error(exc: BaseException) -> KafkaError | None:
    """The fatal producer error behind `exc`, or None.

    confluent-kafka never hands a fatal error to `error_cb`: `poll()`/`flush()` raise it as a
    KafkaException. A delivery callback served in the same call then runs with that exception
    still set and fails, so the call raises a SystemError whose cause is the KafkaException
    (confluent-kafka 2.16, observed): the whole chain is searched. `produce()` on a producer that
    is already fatal raises `_FATAL`, which is not flagged `fatal()`. (`flush()` can even lose the
    exception and raise a bare SystemError: see `TradeUpdatesBridge._serve`.)"""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, KafkaException) and current.args:
            error = current.args[0]
            if isinstance(error, KafkaError) and (
                error.fatal() or error.code() == KafkaError._FATAL
            ):
                return error
        current = current.__cause__ or current.__context__
    return None
