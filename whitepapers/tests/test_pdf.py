"""PDF download against a real HTTP host (two, for cross-origin redirects) and text extraction."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import logging
import time
from collections.abc import Iterator

import pytest
from pypdf import PdfReader, PdfWriter

from tests.conftest import free_port
from tests.servers.base import Fault
from tests.servers.pdf_host import PDF_HEADER, PdfHost
from torghut_site.outbound import Credential, OutboundPolicy
from whitepapers.extract import pdf_text_extract
from whitepapers.pdf import PdfFetchError, pdf_download
from whitepapers.tests.pdfs import make_pdf

PAPER = make_pdf(["Attention is all you need", "Results (table 2) \\ appendix"])
OTHER_PAPER = make_pdf(["A paper on another origin"])
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def host_server() -> Iterator[PdfHost]:
    server = PdfHost(PAPER).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def other_host_server() -> Iterator[PdfHost]:
    """Same address, another port: another origin."""
    server = PdfHost(OTHER_PAPER).start()
    yield server
    server.stop()


def fresh(server: PdfHost) -> PdfHost:
    with server.lock:
        server.requests.clear()
        server.streams.clear()
        server.faults.clear()
    return server


@pytest.fixture
def host(host_server: PdfHost) -> PdfHost:
    return fresh(host_server)


@pytest.fixture
def other_host(other_host_server: PdfHost) -> PdfHost:
    return fresh(other_host_server)


def port_of(server: PdfHost) -> int:
    return int(server.url.rsplit(":", 1)[1])


def loopback_names(host: str, port: int) -> list[ipaddress.IPv4Address]:
    """A resolver for the test names below: each of them is the test servers' 127.0.0.1."""
    assert host in {"github.com", "mirror.example"}
    return [ipaddress.IPv4Address("127.0.0.1")]


def download(url: str, *, token: str | None = None, token_hosts=("127.0.0.1",), **overrides):
    """pdf_download under a policy that reaches the loopback test servers (the test allowance)."""
    credentials = (Credential("Authorization", f"Bearer {token}", token_hosts),) if token else ()
    options = {
        "allowed_hosts": ("127.0.0.1", "github.com", "mirror.example"),
        "allow_loopback": True,
        "max_bytes": 10 * MiB,
        "timeout_seconds": 5.0,
        "user_agent": "torghut-whitepaper/1",
        "credentials": credentials,
        **overrides,
    }
    return pdf_download(url, policy=OutboundPolicy(**options), resolver=loopback_names)


def fetch_error(url: str, **overrides) -> PdfFetchError:
    with pytest.raises(PdfFetchError) as info:
        download(url, **overrides)
    return info.value


# -- success --------------------------------------------------------------------------------


def test_download_returns_bytes_checksum_and_metadata(host):
    pdf = download(f"{host.url}/paper.pdf", token="gh-token")
    assert pdf.data == PAPER
    assert pdf.sha256 == hashlib.sha256(PAPER).hexdigest()
    assert pdf.size == len(PAPER)
    assert pdf.final_url == f"{host.url}/paper.pdf"
    assert pdf.content_type == "application/pdf"
    assert pdf.redirects == 0
    [request] = host.requests_to("/paper.pdf")
    assert request.headers["authorization"] == "Bearer gh-token"
    assert request.headers["user-agent"] == "torghut-whitepaper/1"
    assert request.headers["accept-encoding"] == "identity"


def test_no_token_sends_no_authorization(host):
    download(f"{host.url}/paper.pdf")
    [request] = host.requests_to("/paper.pdf")
    assert "authorization" not in request.headers


def test_follows_five_redirects_relative_and_absolute(host):
    pdf = download(f"{host.url}/redirect/4", token="gh-token")
    assert pdf.data == PAPER
    assert pdf.redirects == 5
    assert pdf.final_url == f"{host.url}/paper.pdf"
    assert [r.path for r in host.requests] == [
        "/redirect/4",  # 308, relative "3"
        "/redirect/3",  # 307, absolute
        "/redirect/2",  # 303, relative "1"
        "/redirect/1",  # 302, absolute
        "/redirect/0",  # 301, "/paper.pdf"
        "/paper.pdf",
    ]
    # same origin all the way: the token is sent on every hop
    assert {r.headers.get("authorization") for r in host.requests} == {"Bearer gh-token"}


def test_sixth_redirect_is_refused(host):
    error = fetch_error(f"{host.url}/redirect/5")
    assert error.reason == "pdf_too_many_redirects"
    assert error.detail == f"more than 5 redirects, the last to {host.url}/paper.pdf"
    assert [r.path for r in host.requests][-1] == "/redirect/0"
    assert host.requests_to("/paper.pdf") == []


def test_max_redirects_is_configurable(host):
    assert fetch_error(f"{host.url}/redirect/1", max_redirects=1).reason == (
        "pdf_too_many_redirects"
    )
    assert download(f"{host.url}/redirect/0", max_redirects=1).redirects == 1


# -- credentials across hosts -----------------------------------------------------------------
# The token belongs to hosts, not origins: it goes to github.com on any port, never to another
# host, and never again once a hop has left github.com. Both servers are 127.0.0.1, reached under
# the names github.com and mirror.example; no cookie is ever kept or sent.


def test_redirect_to_another_host_drops_authorization_and_cookies(host, other_host):
    start = f"http://github.com:{port_of(host)}/to?url=http://mirror.example:{port_of(other_host)}"
    pdf = download(f"{start}/paper.pdf", token="gh-token", token_hosts=("github.com",))
    assert pdf.data == OTHER_PAPER
    assert pdf.final_url == f"http://mirror.example:{port_of(other_host)}/paper.pdf"
    assert pdf.redirects == 1
    [first] = host.requests_to("/to")
    assert first.headers["authorization"] == "Bearer gh-token"
    assert first.headers["host"] == f"github.com:{port_of(host)}"
    [second] = other_host.requests_to("/paper.pdf")
    assert "authorization" not in second.headers
    assert "cookie" not in second.headers  # host A's Set-Cookie is not replayed anywhere
    assert second.headers["host"] == f"mirror.example:{port_of(other_host)}"
    assert second.headers["user-agent"] == "torghut-whitepaper/1"


def test_credentials_are_not_restored_when_the_chain_comes_back(host, other_host):
    back = f"http://mirror.example:{port_of(other_host)}/to?url=http://github.com:{port_of(host)}"
    pdf = download(
        f"http://github.com:{port_of(host)}/to?url={back}/paper.pdf",
        token="gh-token",
        token_hosts=("github.com",),
    )
    assert pdf.data == PAPER
    assert pdf.redirects == 2
    [first] = host.requests_to("/to")
    assert first.headers["authorization"] == "Bearer gh-token"
    [bounce] = other_host.requests_to("/to")
    [last] = host.requests_to("/paper.pdf")
    for request in (bounce, last):
        assert "authorization" not in request.headers
        assert "cookie" not in request.headers


# -- refusals -------------------------------------------------------------------------------


def test_oversized_streamed_body_stops_early(host):
    started = time.monotonic()
    error = fetch_error(f"{host.url}/huge?bytes={256 * MiB}", max_bytes=256 * 1024)
    assert error.reason == "pdf_too_large"
    assert error.detail == f"body exceeds {256 * 1024} bytes ({host.url}/huge?bytes={256 * MiB})"
    stream = host.last_stream()
    assert stream.aborted is True
    assert stream.completed is False
    # the client hung up after ~256 KiB; only socket buffers' worth more could be written
    assert stream.bytes_written < 16 * MiB
    assert time.monotonic() - started < 5


def test_oversized_chunked_body_stops_early(host):
    error = fetch_error(f"{host.url}/huge?bytes={256 * MiB}&chunked=1", max_bytes=100_000)
    assert error.reason == "pdf_too_large"
    stream = host.last_stream()
    assert (stream.aborted, stream.completed) == (True, False)
    assert stream.bytes_written < 16 * MiB


def test_body_exactly_at_the_limit_is_accepted(host):
    pdf = download(f"{host.url}/huge?bytes=200000&chunked=1", max_bytes=200_000)
    assert pdf.size == 200_000
    assert pdf.data.startswith(PDF_HEADER)


def test_oversized_content_length_is_refused_before_reading(host):
    error = fetch_error(f"{host.url}/huge-declared", max_bytes=MiB)
    assert error.reason == "pdf_too_large"
    assert error.detail == (
        f"Content-Length {10 * 1024**3} exceeds {MiB} bytes ({host.url}/huge-declared)"
    )


def test_html_page_is_not_a_pdf(host):
    error = fetch_error(f"{host.url}/page.html")
    assert error.reason == "pdf_not_pdf"
    assert error.detail == (
        f"no %PDF- signature in the first 1024 bytes ({host.url}/page.html): "
        "starts with b'<!doctype html><'"
    )


def test_http_error_status(host):
    error = fetch_error(f"{host.url}/missing.pdf")
    assert (error.reason, error.detail) == (
        "pdf_http_error",
        f"HTTP 404 from {host.url}/missing.pdf",
    )


def test_http_error_after_redirect_names_the_final_url(host):
    error = fetch_error(f"{host.url}/to?url=/gone.pdf")
    assert (error.reason, error.detail) == ("pdf_http_error", f"HTTP 404 from {host.url}/gone.pdf")


def test_dribbling_body_ends_at_the_overall_deadline(host):
    started = time.monotonic()
    error = fetch_error(f"{host.url}/dribble?delay=0.02", timeout_seconds=0.5)
    elapsed = time.monotonic() - started
    assert error.reason == "pdf_download_timeout"
    assert 0.45 <= elapsed < 1.0
    stream = host.last_stream()
    # bytes kept arriving: no single read ever hit the per-read timeout
    assert stream.bytes_written > len(PDF_HEADER) + 5
    assert stream.aborted is True


def test_slow_headers_time_out(host):
    host.inject(Fault(method="GET", path_regex="/paper.pdf", delay=1.5))
    started = time.monotonic()
    error = fetch_error(f"{host.url}/paper.pdf", timeout_seconds=0.3)
    assert error.reason == "pdf_download_timeout"
    assert time.monotonic() - started < 1.0


def test_connection_refused():
    port = free_port()
    error = fetch_error(f"http://127.0.0.1:{port}/paper.pdf")
    assert error.reason == "pdf_download_failed"
    assert error.detail.startswith(f"http://127.0.0.1:{port}/paper.pdf: ")


def test_dropped_connection_is_a_download_failure(host):
    host.inject(Fault(method="GET", path_regex="/paper.pdf", drop=True))
    assert fetch_error(f"{host.url}/paper.pdf").reason == "pdf_download_failed"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://127.0.0.1/paper.pdf", "pdf_scheme_forbidden"),
        ("file:///etc/passwd", "pdf_scheme_forbidden"),
        ("paper.pdf", "pdf_url_invalid"),
        ("http:///paper.pdf", "pdf_url_invalid"),
        ("http://[::1/x.pdf", "pdf_url_invalid"),
    ],
)
def test_only_http_urls_are_fetched(url, reason):
    error = fetch_error(url)
    assert error.reason == reason


def test_redirect_to_another_scheme_is_refused(host):
    error = fetch_error(f"{host.url}/to?url=file:///etc/passwd", token="t")
    assert error.reason == "pdf_scheme_forbidden"
    assert error.detail == "'file:///etc/passwd': scheme 'file'"


# -- text extraction ------------------------------------------------------------------------


def test_extracts_text_of_each_page():
    text = pdf_text_extract(PAPER)
    expected = "Attention is all you need\n\nResults (table 2) \\ appendix"
    assert text.text == expected
    assert text.page_count == 2
    assert text.char_count == len(expected)
    assert text.sha256 == hashlib.sha256(expected.encode()).hexdigest()
    assert text.warnings == []


def test_max_pages_truncates_with_a_warning():
    text = pdf_text_extract(make_pdf(["one", "two", "three"]), max_pages=2)
    assert (text.text, text.page_count) == ("one\n\ntwo", 3)
    assert text.warnings == ["only the first 2 of 3 pages were extracted"]


def test_garbage_is_unreadable_not_an_exception(caplog):
    with caplog.at_level(logging.DEBUG):
        text = pdf_text_extract(b"%PDF-1.4 this is not really a pdf")
    assert (text.text, text.page_count, text.char_count) == ("", 0, 0)
    assert text.sha256 == hashlib.sha256(b"").hexdigest()
    assert text.warnings == [
        "pypdf: EOF marker not found",
        "unreadable pdf: PdfStreamError: Stream has ended unexpectedly",
    ]
    # pypdf's log record was captured, not sent on to the root logger
    assert [r for r in caplog.records if r.name.startswith("pypdf")] == []
    pypdf_logger = logging.getLogger("pypdf")
    assert pypdf_logger.propagate is True
    assert pypdf_logger.handlers == []
    assert pypdf_logger.level == logging.NOTSET


def test_empty_bytes():
    text = pdf_text_extract(b"")
    assert text.warnings == ["unreadable pdf: EmptyFileError: Cannot read an empty file"]
    assert (text.text, text.page_count) == ("", 0)


def test_damaged_page_keeps_the_other_pages():
    damaged = make_pdf(["Alpha", "Beta", "Gamma"]).replace(b"/Contents 7 0 R", b"/Contents 99 0 R")
    text = pdf_text_extract(damaged)
    assert text.text == "Alpha\n\n\n\nGamma"
    assert text.page_count == 3
    assert text.warnings == ["pypdf: Object 99 0 not defined."]


def encrypted(data: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_encrypted_pdf_gives_empty_text_and_a_warning():
    text = pdf_text_extract(encrypted(make_pdf(["secret"]), "password"))
    assert (text.text, text.page_count) == ("", 0)
    assert text.warnings == ["encrypted pdf: cannot decrypt without a password"]


def test_pdf_encrypted_with_an_empty_user_password_is_read():
    text = pdf_text_extract(encrypted(make_pdf(["open to all"]), ""))
    assert (text.text, text.page_count, text.warnings) == ("open to all", 1, [])
