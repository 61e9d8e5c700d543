"""Structured logs (JSON lines, or text with `key=value` fields) carrying the request id (web)
or task id (Celery)."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# LogRecord attributes that are not "extra" fields
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}
# never print these even when passed as extra
_SECRET_KEYS = re.compile(r"(secret|password|token|api_key|authorization)", re.IGNORECASE)


def current_request_id() -> str:
    return _request_id.get()


def bind_request_id(value: str) -> contextvars.Token[str]:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token[str]) -> None:
    _request_id.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's structured `extra` fields, in the order given; secrets are redacted."""
    return {
        key: "[redacted]" if _SECRET_KEYS.search(key) else value
        for key, value in record.__dict__.items()
        if key not in _RESERVED and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", _request_id.get()),
        }
        payload.update(extra_fields(record))
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, separators=(",", ":"))


# a text value is quoted (JSON string escapes) when it is empty, starts with a quote or holds
# whitespace or a control character: the `key=value` pairs stay on one line and split at spaces
_NEEDS_QUOTES = re.compile(r'^$|^"|[\s\x00-\x1f\x7f]')


def text_value(value: Any) -> str:
    """One `extra` value as it appears after `key=` in a text log line."""
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool | int | float):
        text = str(value)
    else:
        text = json.dumps(value, default=str, separators=(",", ":"))
    return json.dumps(text) if _NEEDS_QUOTES.search(text) else text


class TextFormatter(logging.Formatter):
    """`LOG_FORMAT=text`: `time LEVEL logger [request id] message key=value ...`, the same
    fields (and redactions) as the JSON lines, then the traceback on the following lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        line = super().formatMessage(record)
        fields = " ".join(f"{k}={text_value(v)}" for k, v in extra_fields(record).items())
        return f"{line} {fields}" if fields else line


# a summary record is stamped when it is made, not when its example was
_NOW_FIELDS = {"created", "msecs", "relativeCreated", "message", "asctime"}


@dataclass
class _Window:
    started: float
    passed: int = 0
    suppressed: int = 0
    example: logging.LogRecord | None = None


class RateLimitFilter(logging.Filter):
    """At most `limit` records of one `key` per `interval` seconds pass; the others are dropped
    and counted (`suppressed_total`). When a key's window is over, the next record through the
    filter (of any key) is preceded by one summary record per key that lost some:
    "<example message> (suppressed N similar messages in S s)" with a `suppressed` field.

    Put it on a logger (`logger.addFilter`): the summary is handled by the logger the example
    came from, so it goes to the same handlers in the same format."""

    def __init__(
        self,
        *,
        limit: int,
        interval: float,
        key: Callable[[logging.LogRecord], Hashable],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.limit = limit
        self.interval = interval
        self.key = key
        self.clock = clock
        self.suppressed_total = 0
        self._windows: dict[Hashable, _Window] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_rate_summary", False):
            return True
        now = self.clock()
        key = self.key(record)
        with self._lock:
            closed = [k for k, w in self._windows.items() if now - w.started >= self.interval]
            summaries = [self._summary(self._windows.pop(k)) for k in closed]
            window = self._windows.setdefault(key, _Window(started=now))
            allowed = window.passed < self.limit
            if allowed:
                window.passed += 1
            else:
                window.suppressed += 1
                window.example = record
                self.suppressed_total += 1
        for summary in summaries:
            if summary is not None:
                logging.getLogger(summary.name).handle(summary)
        return allowed

    def _summary(self, window: _Window) -> logging.LogRecord | None:
        example = window.example
        if example is None or not window.suppressed:
            return None
        fields = {k: v for k, v in vars(example).items() if k not in _NOW_FIELDS}
        summary = logging.makeLogRecord(fields)
        summary.msg = "%s (suppressed %d similar messages in %d s)"
        summary.args = (example.getMessage(), window.suppressed, round(self.interval))
        summary.suppressed = window.suppressed
        summary._rate_summary = True
        summary.exc_info = summary.exc_text = None
        return summary


class RequestIdMiddleware:
    """Takes X-Request-ID from the caller (if sane) or makes one, and echoes it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex
        token = bind_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response["X-Request-ID"] = request_id
        return response
