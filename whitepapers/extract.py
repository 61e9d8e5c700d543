"""Extract a whitepaper PDF's text in a child process with CPU, memory, time and output limits.

A PDF is a program: a 9 KB file whose page invokes a form XObject thousands of times, the form
showing a huge string, makes pypdf produce gigabytes of text for minutes. So pypdf never runs in
the worker's own process. `pdf_text_extract` starts a fresh interpreter on
`whitepapers/extract_child.py` (`python -I`: no environment variables, no user site, no Django),
hands it the bytes on stdin and reads one JSON object from stdout. The child sets RLIMIT_CPU and
RLIMIT_AS on itself and stops the text at `max_chars`; this side kills the child's process group
when the wall-clock limit passes, and whenever the call ends early (a Celery soft time limit
raised while waiting: the child never outlives the task).

A limit that is hit is an outcome, not an exception: empty text (or the text up to `max_chars`
for the output limit) with the warning `extraction_limit_exceeded:<cpu|memory|timeout|output>`
and `limit_exceeded` set. Nothing here touches the database: callers run it before they open a
transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from whitepapers.metrics import WHITEPAPER_EXTRACTIONS

logger = logging.getLogger(__name__)

CHILD = Path(__file__).resolve().with_name("extract_child.py")
LIMIT_WARNING_PREFIX = "extraction_limit_exceeded:"
_EXIT_MEMORY = 3  # extract_child.EXIT_MEMORY (the child is never imported here)
_STDERR_TAIL = 500


@dataclass(frozen=True)
class PdfText:
    text: str
    page_count: int
    char_count: int
    sha256: str  # of `text`, utf-8
    warnings: list[str] = field(default_factory=list)
    # cpu, memory, timeout or output when a limit ended the extraction; failed when the child
    # ended without an answer for another reason
    limit_exceeded: str | None = None


@dataclass(frozen=True)
class ExtractLimits:
    cpu_seconds: int
    memory_mb: int
    timeout_seconds: float
    max_chars: int

    @classmethod
    def from_settings(cls) -> ExtractLimits:
        return cls(
            cpu_seconds=settings.WHITEPAPER_EXTRACT_CPU_SECONDS,
            memory_mb=settings.WHITEPAPER_EXTRACT_MEMORY_MB,
            timeout_seconds=settings.WHITEPAPER_EXTRACT_TIMEOUT_SECONDS,
            max_chars=settings.WHITEPAPER_EXTRACT_MAX_CHARS,
        )


def pdf_text_extract(
    data: bytes, *, max_pages: int = 2000, limits: ExtractLimits | None = None
) -> PdfText:
    """The text of every page (up to `max_pages`) joined by blank lines, extracted in a child
    process under `limits` (the WHITEPAPER_EXTRACT_* settings by default). Never raises for a
    bad document or a limit; only the caller's own interruption (a Celery time limit) raises,
    after the child is killed."""
    limits = limits or ExtractLimits.from_settings()
    command = [
        sys.executable,
        "-I",  # isolated: ignores PYTHON* variables and the user site; no cwd on sys.path
        str(CHILD),
        str(max_pages),
        str(limits.max_chars),
        str(limits.cpu_seconds),
        str(limits.memory_mb * 1024 * 1024),
    ]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and file, no shell
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={},
        close_fds=True,
        start_new_session=True,  # its own process group, killed as one
    )
    try:
        stdout, stderr = process.communicate(input=data, timeout=limits.timeout_seconds)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        return _limited("timeout", f"no answer within {limits.timeout_seconds:g} s")
    finally:
        if process.poll() is None:  # interrupted while waiting (e.g. SoftTimeLimitExceeded)
            _kill_group(process)
    return _result(process.returncode, stdout, stderr, limits=limits)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()  # reap it and close the pipes


def _result(returncode: int, stdout: bytes, stderr: bytes, *, limits: ExtractLimits) -> PdfText:
    tail = stderr[-_STDERR_TAIL:].decode("utf-8", "replace").strip()
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        # SIGXCPU at the soft RLIMIT_CPU, SIGKILL at the hard one (this side kills only on the
        # wall-clock limit, handled before)
        return _limited("cpu", f"more than {limits.cpu_seconds} s of CPU")
    if returncode == _EXIT_MEMORY or "MemoryError" in tail:
        return _limited("memory", f"more than {limits.memory_mb} MB of memory")
    if returncode != 0:
        return _failed(f"extraction_failed: exit {returncode}: {tail}")
    try:
        answer: dict[str, Any] = json.loads(stdout)
        text = str(answer["text"])
        page_count = int(answer["page_count"])
        notes = [str(note) for note in answer["warnings"]]
    except (ValueError, KeyError, TypeError) as exc:
        return _failed(f"extraction_failed: unreadable answer: {exc}")
    limit = "output" if f"{LIMIT_WARNING_PREFIX}output" in notes else None
    WHITEPAPER_EXTRACTIONS.labels(outcome=limit or "ok").inc()
    return _text(text[: limits.max_chars], page_count, notes, limit)


def _limited(kind: str, detail: str) -> PdfText:
    logger.warning("whitepaper text extraction stopped: %s (%s)", kind, detail)
    WHITEPAPER_EXTRACTIONS.labels(outcome=kind).inc()
    return _text("", 0, [f"{LIMIT_WARNING_PREFIX}{kind}", detail], kind)


def _failed(detail: str) -> PdfText:
    logger.warning("whitepaper text extraction failed: %s", detail)
    WHITEPAPER_EXTRACTIONS.labels(outcome="failed").inc()
    return _text("", 0, [detail], "failed")


def _text(text: str, page_count: int, notes: list[str], limit: str | None) -> PdfText:
    return PdfText(
        text=text,
        page_count=page_count,
        char_count=len(text),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        warnings=notes,
        limit_exceeded=limit,
    )
