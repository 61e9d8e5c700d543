"""Log lines keep their cause: the text format prints the structured fields, librdkafka's own
lines go through Python logging (rate-limited) instead of raw to file descriptor 2."""

from __future__ import annotations

import copy
import io
import logging
import logging.config
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from tests.conftest import ROOT
from torghut_site.kafka.clients import LIBRDKAFKA_LOG_LIMIT
from torghut_site.logging import RateLimitFilter, bind_request_id, reset_request_id


@pytest.fixture
def text_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose lines are formatted by the settings' `text` formatter (LOG_FORMAT=text)."""
    stream = io.StringIO()
    name = f"test.text.{uuid.uuid4().hex}"
    configured: dict[str, Any] = settings.LOGGING
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": copy.deepcopy(configured["filters"]),
            "formatters": {"text": copy.deepcopy(configured["formatters"]["text"])},
            "handlers": {
                name: {
                    "class": "logging.StreamHandler",
                    "stream": stream,
                    "formatter": "text",
                    "filters": ["context"],
                }
            },
            "loggers": {name: {"handlers": [name], "level": "INFO", "propagate": False}},
        }
    )
    logger = logging.getLogger(name)
    token = bind_request_id("-")  # no request or task id an earlier test left bound
    try:
        yield logger, stream
    finally:
        reset_request_id(token)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)


def test_text_format_prints_the_extra_fields_after_the_message(text_log):
    logger, stream = text_log
    token = bind_request_id("rid-7")
    try:
        logger.warning(
            "kafka error",
            extra={
                "consumer": "orderfeed",
                "error": 'KafkaError{code=_TRANSPORT,val=-195,str="broker down"}',
                "partitions": ["t[0]", "t[1]"],
                "lag": 3,
                "group": "",
            },
        )
    finally:
        reset_request_id(token)
    [line] = stream.getvalue().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} .*", line)
    assert line.split(" ", 2)[2] == (
        f"WARNING {logger.name} [rid-7] kafka error consumer=orderfeed "
        'error="KafkaError{code=_TRANSPORT,val=-195,str=\\"broker down\\"}" '
        'partitions=["t[0]","t[1]"] lag=3 group=""'
    )


def test_text_format_redacts_secrets_like_the_json_format_and_appends_the_traceback(text_log):
    logger, stream = text_log
    try:
        raise ValueError("bad batch")
    except ValueError:
        logger.exception(
            "handler failed",
            extra={"sasl_password": "kafka-pw-1", "api_key": "key-2", "symbol": "AAPL"},
        )
    text = stream.getvalue()
    first, *traceback = text.splitlines()
    assert first.endswith(
        "[-] handler failed sasl_password=[redacted] api_key=[redacted] symbol=AAPL"
    )
    assert "kafka-pw-1" not in text and "key-2" not in text
    assert traceback[0] == "Traceback (most recent call last):"
    assert traceback[-1] == "ValueError: bad batch"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_passes_n_per_key_and_interval_then_summarises_what_it_dropped(text_log):
    logger, stream = text_log
    clock = FakeClock()
    limit = RateLimitFilter(
        limit=2, interval=60, key=lambda r: (r.levelno, getattr(r, "facility", "")), clock=clock
    )
    logger.addFilter(limit)
    for n in range(5):
        logger.error("connect failed %d", n, extra={"facility": "FAIL"})
    logger.error("other", extra={"facility": "ERROR"})
    assert limit.suppressed_total == 3
    clock.now += 59.9
    logger.error("connect failed 5", extra={"facility": "FAIL"})  # the window is not over
    clock.now += 0.1
    logger.error("connect failed 6", extra={"facility": "FAIL"})

    messages = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    assert messages == [
        "connect failed 0 facility=FAIL",
        "connect failed 1 facility=FAIL",
        "other facility=ERROR",
        "connect failed 5 (suppressed 4 similar messages in 60 s) facility=FAIL suppressed=4",
        "connect failed 6 facility=FAIL",
    ]
    assert limit.suppressed_total == 4


LIBRDKAFKA_CHILD = """
import logging.config
import time

from torghut_site.settings.workers import LOGGING

logging.config.dictConfig(LOGGING)  # as Django configures it, without loading every app
from torghut_site.kafka.clients import kafka_producer, librdkafka_rate_limit
from torghut_site.kafka.config import producer_config

config = producer_config(bootstrap_servers="127.0.0.1:{port}", client_id="closed-port")
# reconnect every ~50 ms: far more FAIL lines than the limit lets through
config.update({{"reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 50}})
producer = kafka_producer(config)
deadline = time.monotonic() + 2.5
while time.monotonic() < deadline:
    producer.poll(0.1)
print("suppressed", librdkafka_rate_limit.suppressed_total)
"""


def test_librdkafka_lines_go_through_python_logging_rate_limited_not_raw_to_fd_2(tmp_path):
    """A child process, because librdkafka writes to file descriptor 2 itself (pytest's capture
    would not see it): a producer pointed at a closed port for 2.5 s."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TRADING_", "LOG_"))},
        "TORGHUT_ENV_FILE": "/nonexistent",
        "TORGHUT_VAR_DIR": str(tmp_path),
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "info",
    }
    done = subprocess.run(
        [sys.executable, "-c", LIBRDKAFKA_CHILD.format(port=port)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # librdkafka's own format (`%3|<time>|FAIL|<client>| ...`) never reaches fd 2
    assert not re.search(r"^%\d\|", done.stderr, re.MULTILINE), done.stderr
    fails = [
        line
        for line in done.stderr.splitlines()
        if " ERROR torghut_site.kafka.librdkafka [-] " in line
        and f"Connect to ipv4#127.0.0.1:{port} failed" in line
    ]
    assert 1 <= len(fails) <= LIBRDKAFKA_LOG_LIMIT, done.stderr
    assert all(line.endswith("kafka_client=closed-port#producer-1 facility=FAIL") for line in fails)
    suppressed = int(done.stdout.split("suppressed ")[1])
    assert suppressed > 0
