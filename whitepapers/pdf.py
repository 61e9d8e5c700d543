"""Download a whitepaper PDF safely. No database access.

`pdf_download` follows redirects itself so that it can drop credentials on a cross-origin hop,
streams the body under a byte cap and an overall deadline, and checks the PDF signature.
Text extraction is in `whitepapers.extract` (a child process under resource limits).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CHUNK_BYTES = 64 * 1024
_SIGNATURE = b"%PDF-"
_SIGNATURE_WINDOW = 1024  # the signature must appear within the first KiB


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
