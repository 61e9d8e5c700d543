"""The outbound helper's rules on plain values, and TLS to a pinned address on a real server.

The fetch itself against real servers (redirects, caps, refusals) is covered through the PDF
download: whitepapers/tests/test_pdf.py and tests/security/test_outbound_fetch.py.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.pdf_host import PdfHost
from torghut_site.outbound import (
    Credential,
    OutboundCode,
    OutboundError,
    OutboundPolicy,
    _hop,
    _hop_headers,
    address_refusal,
    host_matches,
    host_pattern_problem,
    outbound_get,
)

PAPER = b"%PDF-1.4\n" + b"0" * 2000
LOOPBACK = ipaddress.ip_address("127.0.0.1")


@pytest.mark.parametrize(
    ("host", "patterns", "expected"),
    [
        ("arxiv.org", ("arxiv.org",), True),
        ("export.arxiv.org", ("arxiv.org",), True),
        ("EXPORT.ARXIV.ORG.", ("arxiv.org",), True),
        ("evilarxiv.org", ("arxiv.org",), False),
        ("arxiv.org.evil.net", ("arxiv.org",), False),
        ("org", ("arxiv.org",), False),
        ("anything.example", ("*",), True),
        ("127.0.0.1", ("127.0.0.1",), True),
        ("127.0.0.1", ("0.1",), False),  # suffixes are for names, not IP literals
        ("::1", ("[::1]",), True),
        ("someone.github.io", ("github.com", "githubusercontent.com"), False),
        ("raw.githubusercontent.com", ("github.com", "githubusercontent.com"), True),
    ],
)
def test_host_patterns(host, patterns, expected):
    assert host_matches(host, patterns) is expected


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("arxiv.org", None),
        ("*", None),
        ("10.0.0.5", None),
        ("my_host.internal", None),
        ("*.arxiv.org", "'*.arxiv.org': write 'arxiv.org', which also matches its subdomains"),
        (
            "https://arxiv.org/",
            "'https://arxiv.org/' is not a host name (no scheme, port or path) nor an IP address",
        ),
        (
            "arxiv.org:443",
            "'arxiv.org:443' is not a host name (no scheme, port or path) nor an IP address",
        ),
    ],
)
def test_host_pattern_problems(pattern, problem):
    assert host_pattern_problem(pattern) == problem


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("151.101.3.42", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - a test value
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),  # reserved, listed by Python among the private ranges
        ("fc00::1", "private"),
        ("fec0::1", "site-local"),
        ("2001:db8::1", "private"),  # documentation
        ("::ffff:127.0.0.1", "loopback (embedded in ::ffff:7f00:1)"),
        ("::ffff:8.8.8.8", None),
        ("2002:a00:5::1", "private (embedded in 2002:a00:5::1)"),  # 6to4 of 10.0.0.5
        ("64:ff9b::a9fe:a9fe", "cloud metadata (embedded in 64:ff9b::a9fe:a9fe)"),  # NAT64
    ],
)
def test_address_refusals(address, reason):
    assert address_refusal(ipaddress.ip_address(address)) == reason


def test_the_test_allowance_admits_loopback_and_nothing_else():
    for allowed in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert address_refusal(ipaddress.ip_address(allowed), allow_loopback=True) is None
    for refused in ("10.0.0.5", "169.254.169.254", "0.0.0.0", "fe80::1"):  # noqa: S104
        assert address_refusal(ipaddress.ip_address(refused), allow_loopback=True) is not None


def _policy(**overrides) -> OutboundPolicy:
    options = {
        "allowed_hosts": ("github.com",),
        "max_bytes": 1_000_000,
        "timeout_seconds": 5.0,
        "credentials": (Credential("Authorization", "Bearer t", ("github.com",)),),
        **overrides,
    }
    return OutboundPolicy(**options)


def test_credentials_go_over_https_only_except_to_loopback_under_the_test_allowance():
    public = ipaddress.ip_address("140.82.112.3")
    https = _hop("https://github.com/a.pdf", _policy())
    http = _hop("http://github.com/a.pdf", _policy())
    assert _hop_headers(https, public, _policy(), None, [True])["Authorization"] == "Bearer t"
    assert "Authorization" not in _hop_headers(http, public, _policy(), None, [True])
    assert "Authorization" not in _hop_headers(https, public, _policy(), None, [False])
    allowed = _policy(allow_loopback=True)
    assert _hop_headers(http, LOOPBACK, allowed, None, [True])["Authorization"] == "Bearer t"
    assert "Authorization" not in _hop_headers(http, LOOPBACK, _policy(), None, [True])


def test_credential_value_is_not_in_the_policy_repr():
    assert "Bearer t" not in repr(_policy())


def test_user_info_in_a_url_is_refused():
    with pytest.raises(OutboundError) as info:
        _hop("https://github.com:x@github.com/a.pdf", _policy())
    assert info.value.code == OutboundCode.URL_INVALID


# -- TLS to the pinned address: SNI and certificate checks use the URL's host name ---------------
def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)  # noqa: S603, S607


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """A throwaway CA and two server certificates it signed: github.com and evil.example."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    root: Path = tmp_path_factory.mktemp("tls")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=torghut outbound test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        cwd=root,
    )  # fmt: skip
    for name in ("github.com", "evil.example"):
        (root / f"{name}.ext").write_text(
            f"subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n"
            "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        )
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=root,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
            cwd=root,
        )  # fmt: skip
    return root


def _tls_host(certificates: Path, name: str) -> PdfHost:
    server = PdfHost(PAPER).start()
    assert server._httpd is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates / f"{name}.pem", certificates / f"{name}.key")
    # same listening descriptor, now TLS: accept() hands out TLS connections from here on
    server._httpd.socket = context.wrap_socket(server._httpd.socket, server_side=True)
    return server


@pytest.fixture
def github_tls(certificates) -> Iterator[PdfHost]:
    server = _tls_host(certificates, "github.com")
    yield server
    server.stop()


@pytest.fixture
def impostor_tls(certificates) -> Iterator[PdfHost]:
    server = _tls_host(certificates, "evil.example")
    yield server
    server.stop()


def _via_loopback(host: str, port: int) -> list[ipaddress.IPv4Address]:
    assert host == "github.com"
    return [ipaddress.IPv4Address("127.0.0.1")]


def test_tls_verifies_the_host_name_while_connecting_to_the_pinned_address(
    certificates, github_tls
):
    port = int(github_tls.url.rsplit(":", 1)[1])
    policy = _policy(allow_loopback=True, ca_certs=str(certificates / "ca.pem"))
    answer = outbound_get(
        f"https://github.com:{port}/paper.pdf", policy=policy, resolver=_via_loopback
    )
    assert answer.body == PAPER
    assert answer.address == "127.0.0.1"
    [request] = github_tls.requests
    assert request.headers["host"] == f"github.com:{port}"
    assert request.headers["authorization"] == "Bearer t"  # https: the credential may go


def test_tls_refuses_a_certificate_for_another_name(certificates, impostor_tls):
    port = int(impostor_tls.url.rsplit(":", 1)[1])
    policy = _policy(allow_loopback=True, ca_certs=str(certificates / "ca.pem"))
    with pytest.raises(OutboundError) as info:
        outbound_get(f"https://github.com:{port}/paper.pdf", policy=policy, resolver=_via_loopback)
    assert info.value.code == OutboundCode.FAILED
    assert info.value.detail == (
        f"https://github.com:{port}/paper.pdf: hostname 'github.com' doesn't match 'evil.example'"
    )
    assert impostor_tls.requests == []  # nothing was sent over the refused connection


# -- no proxy from the environment ----------------------------------------------------------------
@pytest.fixture
def two_hosts() -> Iterator[tuple[PdfHost, PdfHost]]:
    target, proxy = PdfHost(PAPER).start(), PdfHost(b"").start()
    yield target, proxy
    target.stop()
    proxy.stop()


def test_proxies_from_the_environment_are_not_used(monkeypatch, two_hosts):
    """A proxy would see the URL and the credential, and connect by name itself (no pinning)."""
    target, proxy = two_hosts
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    policy = _policy(allowed_hosts=("127.0.0.1",), allow_loopback=True)
    answer = outbound_get(f"{target.url}/paper.pdf", policy=policy)
    assert answer.body == PAPER
    assert [r.path for r in target.requests] == ["/paper.pdf"]
    assert proxy.requests == []


@pytest.mark.parametrize(
    "url",
    ["https://github.com\r\nX-Injected: 1/a.pdf", "https://git hub.com/a.pdf", "https://-x.com/"],
)
def test_hosts_that_are_no_host_names_are_refused(url):
    with pytest.raises(OutboundError) as info:
        _hop(url, _policy(allowed_hosts=("*",)))
    assert info.value.code == OutboundCode.URL_INVALID


def test_a_non_ascii_host_is_matched_in_its_idna_form():
    hop = _hop("https://bücher.example/a.pdf", _policy(allowed_hosts=("xn--bcher-kva.example",)))
    assert (hop.host, hop.host_header) == ("xn--bcher-kva.example", "xn--bcher-kva.example")


def test_control_characters_in_the_path_are_percent_encoded_not_sent_raw(two_hosts):
    target, _ = two_hosts
    policy = _policy(allowed_hosts=("127.0.0.1",), allow_loopback=True)
    with pytest.raises(OutboundError) as info:
        outbound_get(f"{target.url}/a b\r\nX-Injected: 1\x01.pdf", policy=policy)
    assert info.value.code == OutboundCode.HTTP_ERROR  # the server's 404 for the encoded path
    [request] = target.requests
    assert request.path == "/a%20bX-Injected:%201%01.pdf"  # urlsplit drops CR, LF and tab
    assert "x-injected" not in request.headers


def test_a_slow_resolution_ends_at_the_deadline():
    release = threading.Event()

    def stalled(host: str, port: int) -> list[ipaddress.IPv4Address]:
        release.wait(5)
        return [ipaddress.IPv4Address("151.101.3.42")]

    started = time.monotonic()
    with pytest.raises(OutboundError) as info:
        outbound_get(
            "https://github.com/a.pdf", policy=_policy(timeout_seconds=0.3), resolver=stalled
        )
    release.set()
    assert info.value.code == OutboundCode.TIMEOUT
    assert info.value.detail == (
        "https://github.com/a.pdf: resolving 'github.com' outlasted the deadline"
    )
    assert time.monotonic() - started < 1.0


def test_a_failed_resolution_is_unresolvable():
    def failing(host: str, port: int) -> list[ipaddress.IPv4Address]:
        raise socket.gaierror(socket.EAI_NONAME, "no such name")

    with pytest.raises(OutboundError) as info:
        outbound_get("https://github.com/a.pdf", policy=_policy(), resolver=failing)
    assert info.value.code == OutboundCode.UNRESOLVABLE
    assert info.value.detail == (
        "https://github.com/a.pdf: cannot resolve 'github.com': [Errno -2] no such name"
    )
