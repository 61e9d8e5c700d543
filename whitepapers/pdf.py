"""Download a whitepaper PDF safely. No database access.

`pdf_download` fetches through the site's outbound policy (`torghut_site.outbound`: scheme, host
and address checks on every hop, the connection pinned to the checked address, the GitHub token
only for GitHub-owned hosts, a byte cap and an overall deadline) and checks the PDF signature.
Text extraction is in `whitepapers.extract` (a child process under resource limits).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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


# -- download helpers -------------------------------------------------------------------------


def _check_signature(head: bytes, url: str) -> None:
    if _SIGNATURE not in head[:_SIGNATURE_WINDOW]:
        raise PdfFetchError(
            "pdf_not_pdf",
            f"no %PDF- signature in the first {_SIGNATURE_WINDOW} bytes ({url}): "
            f"starts with {head[:16]!r}",
        )
