"""Download a whitepaper PDF safely and extract its text. No database access.

`pdf_download` follows redirects itself so that it can drop credentials on a cross-origin hop,
streams the body under a byte cap and an overall deadline, and checks the PDF signature.
`pdf_text_extract` turns the bytes into text with pypdf and never raises on a bad file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CHUNK_BYTES = 64 * 1024
_SIGNATURE = b"%PDF-"
_SIGNATURE_WINDOW = 1024  # the signature must appear within the first KiB
_MAX_CAPTURED_LOG_RECORDS = 50


class PdfFetchError(Exception):
    """A failed download. `reason` is one of the `pdf_*` codes below; `detail` says what happened.

    pdf_download_failed, pdf_download_timeout, pdf_http_error, pdf_too_large, pdf_not_pdf,
    pdf_too_many_redirects, pdf_url_invalid.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


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
    token: str | None,
    max_bytes: int,
    timeout_seconds: float,
    max_redirects: int = 5,
    session: requests.Session | None = None,
    user_agent: str = "torghut-whitepaper/1",
) -> DownloadedPdf:
    """GET `url`, following at most `max_redirects` redirects, and return the PDF's bytes.

    `token` is sent as a bearer token to the original origin only. After the first hop to another
    origin (scheme, host or port), no Authorization, Cookie, session header or session cookie is
    sent again, even if a later redirect comes back. `timeout_seconds` bounds connecting, each
    read, and the whole download.
    """
    deadline = time.monotonic() + timeout_seconds
    origin = _origin(url)
    own_session = session is None
    http = session if session is not None else requests.Session()
    try:
        current = url
        redirects = 0
        credentials_allowed = True
        while True:
            if credentials_allowed and _origin(current) != origin:
                credentials_allowed = False
            response = _get(
                http,
                current,
                token=token if credentials_allowed else None,
                with_session_state=credentials_allowed,
                user_agent=user_agent,
                timeout=_remaining(deadline, timeout_seconds, current),
            )
            try:
                location = response.headers.get("Location")
                if response.status_code in REDIRECT_STATUSES and location:
                    target = urljoin(current, location.strip())
                    if redirects >= max_redirects:
                        raise PdfFetchError(
                            "pdf_too_many_redirects",
                            f"more than {max_redirects} redirects, the last to {target}",
                        )
                    redirects += 1
                    current = target
                    continue
                if not 200 <= response.status_code < 300:
                    raise PdfFetchError(
                        "pdf_http_error", f"HTTP {response.status_code} from {current}"
                    )
                data = _read_body(response, max_bytes=max_bytes, deadline=deadline, url=current)
                return DownloadedPdf(
                    data=data,
                    sha256=hashlib.sha256(data).hexdigest(),
                    size=len(data),
                    final_url=current,
                    content_type=response.headers.get("Content-Type"),
                    redirects=redirects,
                )
            finally:
                response.close()
    finally:
        if own_session:
            http.close()


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


def _origin(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError as exc:
        raise PdfFetchError("pdf_url_invalid", f"{url!r}: {exc}") from exc
    if scheme not in _DEFAULT_PORTS or not host:
        raise PdfFetchError("pdf_url_invalid", f"{url!r} is not an http(s) URL with a host")
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def _remaining(deadline: float, timeout_seconds: float, url: str) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise PdfFetchError(
            "pdf_download_timeout", f"no complete answer within {timeout_seconds:g} s ({url})"
        )
    return min(remaining, timeout_seconds)


def _get(
    http: requests.Session,
    url: str,
    *,
    token: str | None,
    with_session_state: bool,
    user_agent: str,
    timeout: float,
) -> requests.Response:
    headers = {
        "User-Agent": user_agent,
        "Accept": "application/pdf, */*;q=0.5",
        # the byte cap is meant for what goes over the wire and into memory: no compression
        "Accept-Encoding": "identity",
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = requests.Request("GET", url, headers=headers)
    # Session.prepare_request merges the session's headers, cookies and auth; a bare prepare()
    # carries none of them, which is what a cross-origin hop must get.
    prepared = http.prepare_request(request) if with_session_state else request.prepare()
    if not with_session_state:
        prepared.headers.pop("Authorization", None)
        prepared.headers.pop("Cookie", None)
    send_kwargs = http.merge_environment_settings(prepared.url, {}, True, None, None)
    try:
        return http.send(prepared, allow_redirects=False, timeout=(timeout, timeout), **send_kwargs)
    except requests.Timeout as exc:
        raise PdfFetchError("pdf_download_timeout", f"{url}: {exc}") from exc
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema) as exc:
        raise PdfFetchError("pdf_url_invalid", f"{url}: {exc}") from exc
    except requests.RequestException as exc:
        raise PdfFetchError("pdf_download_failed", f"{url}: {exc}") from exc


def _read_body(response: requests.Response, *, max_bytes: int, deadline: float, url: str) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise PdfFetchError(
            "pdf_too_large", f"Content-Length {int(declared)} exceeds {max_bytes} bytes ({url})"
        )
    buffer = bytearray()
    signature_checked = False
    raw = response.raw
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PdfFetchError(
                    "pdf_download_timeout",
                    f"body not complete before the deadline after {len(buffer)} bytes ({url})",
                )
            _tighten_read_timeout(raw, remaining)
            # read1 returns whatever has arrived, so a dribbling server cannot hold one read
            # open past the deadline the way read(n) would while it waits for n bytes
            chunk = raw.read1(_CHUNK_BYTES, decode_content=True)
            if not chunk:
                break
            buffer += chunk
            if len(buffer) > max_bytes:
                raise PdfFetchError("pdf_too_large", f"body exceeds {max_bytes} bytes ({url})")
            if not signature_checked and len(buffer) >= _SIGNATURE_WINDOW:
                _check_signature(buffer, url)
                signature_checked = True
    except (
        requests.Timeout,
        urllib3.exceptions.ReadTimeoutError,
        TimeoutError,
    ) as exc:
        raise PdfFetchError(
            "pdf_download_timeout", f"read timed out after {len(buffer)} bytes ({url}): {exc}"
        ) from exc
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
        raise PdfFetchError(
            "pdf_download_failed", f"body read failed after {len(buffer)} bytes ({url}): {exc}"
        ) from exc
    if not signature_checked:
        _check_signature(buffer, url)
    return bytes(buffer)


def _check_signature(buffer: bytearray, url: str) -> None:
    if _SIGNATURE not in buffer[:_SIGNATURE_WINDOW]:
        head = bytes(buffer[:16])
        raise PdfFetchError(
            "pdf_not_pdf",
            f"no %PDF- signature in the first {_SIGNATURE_WINDOW} bytes ({url}): "
            f"starts with {head!r}",
        )


def _tighten_read_timeout(raw: Any, remaining: float) -> None:
    """Make the next socket read wait no longer than the overall deadline allows.

    urllib3 applies the read timeout per socket read; without this, a server that stalls just
    before the deadline would get one more full read timeout. Best effort: if the socket is not
    reachable (another transport adapter), the per-read timeout still bounds each wait.
    """
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        try:
            sock.settimeout(max(remaining, 0.001))
        except OSError:
            return


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
