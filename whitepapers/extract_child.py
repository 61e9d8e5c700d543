"""The child process of `whitepapers.extract`: pypdf text extraction under resource limits.

Run by the parent as `python -I <this file> <max_pages> <max_chars> <cpu_seconds> <memory_bytes>`
with the PDF's bytes on stdin; it writes one JSON object on stdout:
`{"text": ..., "page_count": ..., "warnings": [...]}`. It imports only the standard library and
pypdf (no Django, no database connection, no Celery), and sets its own limits first:

- RLIMIT_CPU: past `cpu_seconds` the kernel sends SIGXCPU (the process ends), one second later
  SIGKILL;
- RLIMIT_AS: an allocation past `memory_bytes` raises MemoryError, which ends the process with
  EXIT_MEMORY;
- `max_chars`: the text stops growing there (a visitor counts what pypdf reports and stops the
  page), with the warning `extraction_limit_exceeded:output`.

The parent enforces the wall-clock limit and kills the process group. Never raises for a bad
document: an unreadable or encrypted PDF gives empty text and a warning; a page that fails gives
"" and a warning ("page 3: <error>"). pypdf's log records and Python warnings are captured into
`warnings` (at most MAX_CAPTURED_LOG_RECORDS log records).
"""

from __future__ import annotations

import io
import json
import logging
import os
import resource
import sys
import warnings
from typing import Any

EXIT_MEMORY = 3
EXIT_USAGE = 64
OUTPUT_LIMIT_WARNING = "extraction_limit_exceeded:output"
MAX_CAPTURED_LOG_RECORDS = 50


class _OutputLimit(BaseException):
    """Raised from pypdf's text visitor once the text reached `max_chars`. A BaseException so
    that pypdf's own `except Exception` around form XObjects does not swallow it."""


def main(argv: list[str]) -> int:
    try:
        max_pages, max_chars, cpu_seconds, memory_bytes = (int(a) for a in argv[1:5])
    except ValueError:
        sys.stderr.write("usage: extract_child.py MAX_PAGES MAX_CHARS CPU_SECONDS MEMORY_BYTES\n")
        return EXIT_USAGE
    limits_set(cpu_seconds=cpu_seconds, memory_bytes=memory_bytes)
    try:
        data = sys.stdin.buffer.read()
        result = extract(data, max_pages=max_pages, max_chars=max_chars)
        payload = json.dumps(result, ensure_ascii=False).encode("utf-8")
    except MemoryError:
        os._exit(EXIT_MEMORY)  # no cleanup that could allocate again
    sys.stdout.buffer.write(payload)
    sys.stdout.buffer.flush()
    return 0


def limits_set(*, cpu_seconds: int, memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would otherwise dump core


def extract(data: bytes, *, max_pages: int, max_chars: int) -> dict[str, Any]:
    notes: list[str] = []
    logger = logging.getLogger("pypdf")
    handler = _CapturingHandler(notes)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        texts, page_count = _extract_pages(
            data, max_pages=max_pages, max_chars=max_chars, notes=notes
        )
    logger.removeHandler(handler)
    notes.extend(f"{w.category.__name__}: {w.message}" for w in caught)
    # PostgreSQL text columns reject NUL characters
    text = "\n\n".join(texts).replace("\x00", "")
    if len(text) > max_chars:
        text = text[:max_chars]
        if OUTPUT_LIMIT_WARNING not in notes:
            notes.append(OUTPUT_LIMIT_WARNING)
    return {"text": text, "page_count": page_count, "warnings": notes}


def _extract_pages(
    data: bytes, *, max_pages: int, max_chars: int, notes: list[str]
) -> tuple[list[str], int]:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _decrypt_with_empty_password(reader):
            notes.append("encrypted pdf: cannot decrypt without a password")
            return [], 0
        pages = reader.pages
        page_count = len(pages)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure means "unreadable", recorded
        notes.append(f"unreadable pdf: {type(exc).__name__}: {exc}")
        return [], 0
    if page_count > max_pages:
        notes.append(f"only the first {max_pages} of {page_count} pages were extracted")
    texts: list[str] = []
    budget = max_chars
    for index in range(min(page_count, max_pages)):
        text = _page_text(pages[index], index=index, budget=budget, notes=notes)
        texts.append(text)  # "" for a failed page keeps the page boundaries where they are
        budget -= len(text) + 2
        if budget <= 0:
            if OUTPUT_LIMIT_WARNING not in notes:
                notes.append(OUTPUT_LIMIT_WARNING)
            break
    return texts, page_count


def _page_text(page: Any, *, index: int, budget: int, notes: list[str]) -> str:
    pieces: list[str] = []
    seen = [0]

    def visitor(text: str, *_: Any) -> None:
        pieces.append(text)
        seen[0] += len(text)
        if seen[0] > budget:
            raise _OutputLimit

    try:
        return str(page.extract_text(visitor_text=visitor) or "")
    except _OutputLimit:
        notes.append(OUTPUT_LIMIT_WARNING)
        return "".join(pieces)[: max(budget, 0)]
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad page must not lose the others
        notes.append(f"page {index + 1}: {type(exc).__name__}: {exc}")
        return ""


def _decrypt_with_empty_password(reader: Any) -> bool:
    """Many published PDFs are encrypted only against editing and open with an empty password."""
    try:
        return bool(reader.decrypt(""))
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - e.g. AES without a crypto provider: treat as encrypted
        return False


class _CapturingHandler(logging.Handler):
    def __init__(self, notes: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.notes = notes
        self.captured = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.captured += 1
        if self.captured <= MAX_CAPTURED_LOG_RECORDS:
            self.notes.append(f"pypdf: {record.getMessage()}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
