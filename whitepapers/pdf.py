"""Download a whitepaper PDF safely and extract its text. No database access.

`pdf_download` fetches through the site's outbound policy (`torghut_site.outbound`: scheme, host
and address checks on every hop, the connection pinned to the checked address, the GitHub token
only for GitHub-owned hosts, a byte cap and an overall deadline) and checks the PDF signature.
`pdf_text_extract` turns the bytes into text with pypdf and never raises on a bad file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from torghut_site.outbound import (
    Credential,
    OutboundCode,
    OutboundError,
    OutboundPolicy,
    Resolver,
    outbound_get,
    system_resolver,
)

USER_AGENT = "torghut-whitepaper/1"
# GitHub-owned hosts (and their subdomains): the only ones WHITEPAPER_GITHUB_TOKEN is sent to.
# Not github.io: GitHub Pages serves anyone's site.
GITHUB_TOKEN_HOSTS = ("github.com", "githubusercontent.com")
_SIGNATURE = b"%PDF-"
_SIGNATURE_WINDOW = 1024  # the signature must appear within the first KiB
_MAX_CAPTURED_LOG_RECORDS = 50


class PdfFetchError(Exception):
    """A failed download. `reason` is one of the `pdf_*` codes below; `detail` says what happened.

    pdf_download_failed, pdf_download_timeout, pdf_http_error, pdf_too_large, pdf_not_pdf,
    pdf_too_many_redirects, pdf_url_invalid, and the outbound policy's refusals (made before any
    connection): pdf_scheme_forbidden, pdf_host_not_allowed, pdf_address_forbidden.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# the outbound helper's codes as this module's reasons (a failed DNS lookup stays a failed download)
_REASONS: dict[OutboundCode, str] = {
    OutboundCode.URL_INVALID: "pdf_url_invalid",
    OutboundCode.SCHEME_FORBIDDEN: "pdf_scheme_forbidden",
    OutboundCode.HOST_NOT_ALLOWED: "pdf_host_not_allowed",
    OutboundCode.ADDRESS_FORBIDDEN: "pdf_address_forbidden",
    OutboundCode.UNRESOLVABLE: "pdf_download_failed",
    OutboundCode.FAILED: "pdf_download_failed",
    OutboundCode.TIMEOUT: "pdf_download_timeout",
    OutboundCode.TOO_LARGE: "pdf_too_large",
    OutboundCode.TOO_MANY_REDIRECTS: "pdf_too_many_redirects",
    OutboundCode.HTTP_ERROR: "pdf_http_error",
}


@dataclass(frozen=True)
class DownloadedPdf:
    data: bytes
    sha256: str
    size: int
    final_url: str
    content_type: str | None
    redirects: int


@dataclass(frozen=True)
class PdfText:
    text: str
    page_count: int
    char_count: int
    sha256: str  # of `text`, utf-8
    warnings: list[str] = field(default_factory=list)


def pdf_download(
    url: str,
    *,
    policy: OutboundPolicy,
    resolver: Resolver = system_resolver,
) -> DownloadedPdf:
    """GET `url` under `policy` (torghut_site.outbound) and return the PDF's bytes.

    The policy decides which schemes, hosts and addresses may be reached on each hop, the byte
    cap, the overall deadline, the redirect limit, and which hosts the GitHub token may reach
    (see `pdf_fetch_policy`). The body must carry the PDF signature in its first KiB.
    """
    try:
        answer = outbound_get(
            url,
            policy=policy,
            headers={"Accept": "application/pdf, */*;q=0.5"},
            resolver=resolver,
            head_check=_check_signature,
            head_bytes=_SIGNATURE_WINDOW,
        )
    except OutboundError as exc:
        raise PdfFetchError(_REASONS[exc.code], exc.detail) from exc
    data = answer.body
    return DownloadedPdf(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        final_url=answer.final_url,
        content_type=answer.content_type,
        redirects=answer.redirects,
    )


def pdf_fetch_policy() -> OutboundPolicy:
    """The outbound policy of a whitepaper download, from settings.

    Hosts: WHITEPAPER_PDF_ALLOWED_HOSTS. WHITEPAPER_GITHUB_TOKEN goes only to GitHub-owned hosts
    (GITHUB_TOKEN_HOSTS), over https, while the chain has stayed on them. The loopback allowance
    is a test-only Django setting (OUTBOUND_TEST_ALLOW_LOOPBACK) that settings.py never defines
    and no environment variable sets: only test code (a fixture, tests/settings_loopback.py)
    turns it on.
    """
    token = settings.WHITEPAPER_GITHUB_TOKEN
    credentials = (
        (Credential("Authorization", f"Bearer {token}", GITHUB_TOKEN_HOSTS),) if token else ()
    )
    return OutboundPolicy(
        allowed_hosts=tuple(settings.WHITEPAPER_PDF_ALLOWED_HOSTS),
        max_bytes=settings.WHITEPAPER_MAX_PDF_BYTES,
        timeout_seconds=settings.WHITEPAPER_DOWNLOAD_TIMEOUT_SECONDS,
        credentials=credentials,
        user_agent=USER_AGENT,
        allow_loopback=getattr(settings, "OUTBOUND_TEST_ALLOW_LOOPBACK", False) is True,
    )


def pdf_text_extract(data: bytes, *, max_pages: int = 2000) -> PdfText:
    """The text of every page (up to `max_pages`) joined by blank lines.

    Never raises for a bad document: an unreadable or encrypted PDF gives empty text and a
    warning; a page that fails gives "" and a warning ("page 3: <error>"). pypdf's own log
    records and Python warnings are captured into `warnings` instead of reaching the root logger.
    """
    notes: list[str] = []
    with _captured_pypdf_diagnostics(notes):
        texts, page_count = _extract_pages(data, max_pages=max_pages, notes=notes)
    # PostgreSQL text columns reject NUL characters
    text = "\n\n".join(texts).replace("\x00", "")
    return PdfText(
        text=text,
        page_count=page_count,
        char_count=len(text),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        warnings=notes,
    )


# -- download helpers -------------------------------------------------------------------------


def _check_signature(head: bytes, url: str) -> None:
    if _SIGNATURE not in head[:_SIGNATURE_WINDOW]:
        raise PdfFetchError(
            "pdf_not_pdf",
            f"no %PDF- signature in the first {_SIGNATURE_WINDOW} bytes ({url}): "
            f"starts with {head[:16]!r}",
        )


# -- extraction helpers -----------------------------------------------------------------------


def _extract_pages(data: bytes, *, max_pages: int, notes: list[str]) -> tuple[list[str], int]:
    from pypdf import PdfReader  # imported lazily: only the intake worker needs pypdf

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _decrypt_with_empty_password(reader):
            notes.append("encrypted pdf: cannot decrypt without a password")
            return [], 0
        pages = reader.pages
        page_count = len(pages)
    except Exception as exc:  # noqa: BLE001 - any parse failure means "unreadable", recorded
        notes.append(f"unreadable pdf: {type(exc).__name__}: {exc}")
        return [], 0
    if page_count > max_pages:
        notes.append(f"only the first {max_pages} of {page_count} pages were extracted")
    texts: list[str] = []
    for index in range(min(page_count, max_pages)):
        try:
            texts.append(pages[index].extract_text() or "")
        except Exception as exc:  # noqa: BLE001 - one bad page must not lose the others
            notes.append(f"page {index + 1}: {type(exc).__name__}: {exc}")
            texts.append("")  # keep the page boundaries where they are
    return texts, page_count


def _decrypt_with_empty_password(reader: Any) -> bool:
    """Many published PDFs are encrypted only against editing and open with an empty password."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # noqa: BLE001 - e.g. AES without a crypto provider: treat as encrypted
        return False


class _CapturingHandler(logging.Handler):
    def __init__(self, notes: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.notes = notes
        self.captured = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.captured += 1
        if self.captured <= _MAX_CAPTURED_LOG_RECORDS:
            self.notes.append(f"pypdf: {record.getMessage()}")


@contextmanager
def _captured_pypdf_diagnostics(notes: list[str]) -> Iterator[None]:
    """Route pypdf's log records and warnings into `notes` for the duration of one extraction.

    pypdf logs a warning for every small defect of a real-world file. The logger's previous
    handlers, level and propagation are restored afterwards, so nothing changes globally.
    """
    logger = logging.getLogger("pypdf")
    handler = _CapturingHandler(notes)
    saved_propagate, saved_level = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        notes.extend(f"{w.category.__name__}: {w.message}" for w in caught)
    finally:
        logger.removeHandler(handler)
        logger.propagate = saved_propagate
        logger.setLevel(saved_level)
