"""Issue #18 finding 1: the PDF download leaked WHITEPAPER_GITHUB_TOKEN and reached any address.

Before the fix, `attachment_url: http://127.0.0.1:<port>/x.pdf` in an issue made the intake send
`Authorization: Bearer <token>` to that port; any host, private or loopback, was fetched and got
the token. Now every hop passes the outbound policy (torghut_site/outbound.py) before any
connection, and the token goes only to GitHub-owned hosts.

Every test here goes through the intake as an issue event would (the control API) or through
`pdf_download` under the policy the intake builds from settings. Traffic never leaves loopback:

- `dns` replaces name resolution (`socket.getaddrinfo`) with a table, so "a host name that
  resolves to 10.0.0.5" needs no DNS server; an unknown name fails to resolve;
- it also guards the connect (`urllib3.util.connection.create_connection`, through which both
  the old and the new download connect): every attempt is recorded, and one to an address outside
  loopback is refused there, before any packet is sent.

Names resolved to 127.0.0.1 reach the loopback test servers only under the test allowance
(OUTBOUND_TEST_ALLOW_LOOPBACK, set by the `workflow` fixture or here): refusals of private,
link-local, metadata and public-but-not-allowed addresses are asserted at resolution time.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import urllib3.util.connection

from tests.conftest import manage
from tests.servers.pdf_host import PDF_HEADER, PdfHost
from whitepapers.models import WhitepaperAnalysisRun
from whitepapers.tests.conftest import (  # noqa: F401 - the whitepaper workflow's fixtures
    control,
    fs_artifacts,
    s3_artifacts,
    s3_client,
    workflow,
)
from whitepapers.tests.pdfs import make_pdf
from whitepapers.tests.test_workflow import post_event
from whitepapers.tests.workflow import PaperHost, issue_payload

pytestmark = [pytest.mark.django_db]

PAPER = make_pdf(["Momentum with regime filters", "Results: Sharpe 1.4 out of sample"])
TOKEN = "ghp_outbound_test_token_123"  # noqa: S105 - a test value
BEARER = f"Bearer {TOKEN}"


# -- name resolution and the connect guard ------------------------------------------------------
@dataclass
class FakeDns:
    answers: dict[str, list[list[str]]] = field(default_factory=dict)  # successive answers
    lookups: list[str] = field(default_factory=list)
    connects: list[tuple[str, int]] = field(default_factory=list)

    def name(self, host: str, *answers: list[str]) -> None:
        self.answers[host] = list(answers)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@pytest.fixture
def dns(monkeypatch) -> Iterator[FakeDns]:
    fake = FakeDns()
    fake.name("localhost", ["127.0.0.1"])
    real_getaddrinfo = socket.getaddrinfo
    real_connect = urllib3.util.connection.create_connection

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if _is_ip(name):  # a numeric address: resolved locally, no query is sent
            return real_getaddrinfo(host, port, *args, **kwargs)
        key = name.lower().rstrip(".")
        fake.lookups.append(key)
        series = fake.answers.get(key)
        if series is None:
            raise socket.gaierror(socket.EAI_NONAME, f"test DNS: {name} is not in the table")
        answer = series[min(fake.lookups.count(key), len(series)) - 1]
        number = int(port or 0)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, number, 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, number))
            for ip in answer
        ]

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        host, port = address
        fake.connects.append((host, port))
        if _is_ip(host):
            targets = [host]
        else:  # the old download connected by name: the guard looks the name up itself
            series = fake.answers.get(host.lower().rstrip("."), [[]])
            targets = series[max(fake.lookups.count(host.lower().rstrip(".")) - 1, 0)]
        if not targets or not all(ipaddress.ip_address(t).is_loopback for t in targets):
            raise ConnectionRefusedError(f"test guard: {host} is outside loopback, not connected")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    yield fake


def port_of(server: Any) -> int:
    return int(server.url.rsplit(":", 1)[1])


# -- the intake without the test allowance: production's defaults ------------------------------
@pytest.fixture
def intake(settings, fs_artifacts, dns):  # noqa: F811 - the imported fixture
    """The intake as deployed: default host allow-list, no loopback allowance, a GitHub token."""
    settings.WHITEPAPER_WORKFLOW_ENABLED = True
    settings.WHITEPAPER_WORKFLOW_API_TOKEN = "wp-control-token"  # noqa: S105 - a test value
    settings.WHITEPAPER_GITHUB_TOKEN = TOKEN
    settings.WHITEPAPER_AGENTRUN_AUTO_DISPATCH = False
    settings.WHITEPAPER_DOWNLOAD_TIMEOUT_SECONDS = 5
    assert getattr(settings, "OUTBOUND_TEST_ALLOW_LOOPBACK", False) is False
    return dns


def refused(control_client: Any, url: str, capture: Any, *, number: int = 42) -> dict[str, Any]:
    """Post the issue with `url`; assert a refused intake recorded as a failed run."""
    response = post_event(control_client, issue_payload(url=url, number=number), capture)
    body: dict[str, Any] = response.json()
    assert response.status_code == 200
    assert body["accepted"] is False
    run = WhitepaperAnalysisRun.objects.get(run_id=body["run_id"])
    assert (run.status, run.failure_code) == ("failed", body["reason"])
    return body


def test_issue_naming_a_loopback_port_is_refused_and_the_port_gets_nothing(
    intake,
    paper_host,
    control,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    """The reproduction of the finding: the token went to whatever port the issue named."""
    url = paper_host.put("x.pdf", PAPER)  # http://127.0.0.1:<port>/papers/x.pdf
    body = refused(control, url, django_capture_on_commit_callbacks)
    assert body["reason"] == "pdf_host_not_allowed"
    assert body["detail"] == f"{url!r}: host '127.0.0.1' is not on the allow-list"
    assert paper_host.requests == []
    assert intake.connects == []


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_loopback_is_refused_even_when_the_allow_list_admits_any_host(
    intake,
    paper_host,
    control,  # noqa: F811
    settings,
    django_capture_on_commit_callbacks,
    name,
):
    settings.WHITEPAPER_PDF_ALLOWED_HOSTS = ["*"]
    url = f"http://{name}:{port_of(paper_host)}/papers/x.pdf"
    paper_host.put("x.pdf", PAPER)
    body = refused(control, url, django_capture_on_commit_callbacks)
    assert body["reason"] == "pdf_address_forbidden"
    assert body["detail"] == f"{url}: '{name}' resolves to 127.0.0.1 (loopback)"
    assert paper_host.requests == []
    assert intake.connects == []


@pytest.mark.parametrize(
    ("host", "addresses", "why"),
    [
        ("intranet.arxiv.org", ["10.0.0.5"], "10.0.0.5 (private)"),
        ("metadata.arxiv.org", ["169.254.169.254"], "169.254.169.254 (cloud metadata)"),
        ("link.arxiv.org", ["169.254.10.1"], "169.254.10.1 (link-local)"),
        ("imds6.arxiv.org", ["fd00:ec2::254"], "fd00:ec2::254 (cloud metadata)"),
        ("cgnat.arxiv.org", ["100.64.0.7"], "100.64.0.7 (shared (CGNAT))"),
        (
            "mapped.arxiv.org",
            ["::ffff:10.0.0.5"],
            "::ffff:a00:5 (private (embedded in ::ffff:a00:5))",
        ),
        ("zero.arxiv.org", ["0.0.0.0"], "0.0.0.0 (unspecified)"),  # noqa: S104 - a test value
        ("multi.arxiv.org", ["224.0.0.251"], "224.0.0.251 (multicast)"),
        # one forbidden answer among public ones is enough
        ("mixed.arxiv.org", ["151.101.3.42", "10.0.0.5"], "10.0.0.5 (private)"),
    ],
)
def test_allowed_name_resolving_to_a_forbidden_address_is_refused_before_connecting(
    intake,
    control,  # noqa: F811
    django_capture_on_commit_callbacks,
    host,
    addresses,
    why,
):
    intake.name(host, addresses)
    url = f"https://{host}/paper.pdf"
    body = refused(control, url, django_capture_on_commit_callbacks)
    assert body["reason"] == "pdf_address_forbidden"
    assert body["detail"] == f"{url}: {host!r} resolves to {why}"
    assert intake.lookups == [host]
    assert intake.connects == []


def test_public_host_not_on_the_allow_list_is_refused_before_resolving(
    intake,
    control,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    intake.name("papers.example.net", ["8.8.8.8"])
    url = "https://papers.example.net/paper.pdf"
    body = refused(control, url, django_capture_on_commit_callbacks)
    assert body["reason"] == "pdf_host_not_allowed"
    assert intake.lookups == []
    assert intake.connects == []


def test_the_allowance_cannot_be_switched_on_from_the_environment():
    """OUTBOUND_TEST_ALLOW_LOOPBACK is no environment variable: a production process given it
    still refuses loopback."""
    code = "from whitepapers.pdf import pdf_fetch_policy; print(pdf_fetch_policy().allow_loopback)"
    result = manage("shell", "-c", code, env={"OUTBOUND_TEST_ALLOW_LOOPBACK": "true"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


# -- the token: GitHub-owned hosts only (loopback servers under the test allowance) -------------
@pytest.fixture
def github_names(workflow, settings, dns):  # noqa: F811 - the imported fixture
    """The workflow (its PDF host on 127.0.0.1, reached under the test allowance) with the
    default allow-list, a GitHub token, and names of every kind resolving to that host."""
    settings.WHITEPAPER_GITHUB_TOKEN = TOKEN
    settings.WHITEPAPER_PDF_ALLOWED_HOSTS = [
        "github.com",
        "githubusercontent.com",
        "arxiv.org",
        "github.io",
        "evilgithub.com",
        "example.net",
    ]
    for name in (
        "github.com",
        "api.github.com",
        "objects.githubusercontent.com",
        "export.arxiv.org",
        "someone.github.io",
        "evilgithub.com",
        "github.com.example.net",
    ):
        dns.name(name, ["127.0.0.1"])
    return workflow


def _authorization_of_each_request(host: PaperHost) -> list[str | None]:
    with host.lock:
        return [r.headers.get("authorization") for r in host.requests]


@pytest.mark.parametrize("name", ["github.com", "api.github.com", "objects.githubusercontent.com"])
def test_token_reaches_github_owned_hosts(
    github_names,
    control,  # noqa: F811
    django_capture_on_commit_callbacks,
    name,
):
    github_names.host.put("paper.pdf", PAPER)
    url = f"http://{name}:{port_of(github_names.host)}/papers/paper.pdf"
    response = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    assert response.json()["reason"] == "accepted"
    assert _authorization_of_each_request(github_names.host) == [BEARER]
    [request] = github_names.host.requests
    assert request.headers["host"] == f"{name}:{port_of(github_names.host)}"


@pytest.mark.parametrize(
    "name",
    ["export.arxiv.org", "someone.github.io", "evilgithub.com", "github.com.example.net"],
)
def test_token_is_not_sent_to_other_hosts(
    github_names,
    control,  # noqa: F811
    django_capture_on_commit_callbacks,
    name,
):
    github_names.host.put("paper.pdf", PAPER)
    url = f"http://{name}:{port_of(github_names.host)}/papers/paper.pdf"
    response = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    assert response.json()["reason"] == "accepted"
    assert _authorization_of_each_request(github_names.host) == [None]


@pytest.fixture
def pdf_host() -> Iterator[PdfHost]:
    server = PdfHost(PAPER).start()
    try:
        yield server
    finally:
        server.stop()


def test_token_is_dropped_after_a_redirect_off_github_and_not_restored(
    github_names,
    pdf_host,
    control,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    """github.com -> export.arxiv.org -> github.com: only the first hop carries the token."""
    port = port_of(pdf_host)
    back = f"http://export.arxiv.org:{port}/to?url=http://github.com:{port}/paper.pdf"
    url = f"http://github.com:{port}/to?url={back}"
    response = post_event(control, issue_payload(url=url), django_capture_on_commit_callbacks)
    assert response.json()["reason"] == "accepted"
    with pdf_host.lock:
        seen = [
            (r.headers["host"], r.path, r.headers.get("authorization")) for r in pdf_host.requests
        ]
    assert seen == [
        (f"github.com:{port}", "/to", BEARER),
        (f"export.arxiv.org:{port}", "/to", None),
        (f"github.com:{port}", "/paper.pdf", None),
    ]


# -- redirects and rebinding ----------------------------------------------------------------------
def test_redirect_to_a_forbidden_address_is_refused(
    github_names,
    dns,
    pdf_host,
    control,  # noqa: F811
    settings,
    django_capture_on_commit_callbacks,
):
    settings.WHITEPAPER_PDF_ALLOWED_HOSTS = ["*"]
    dns.name("intranet.arxiv.org", ["10.0.0.5"])
    port = port_of(pdf_host)
    for target, why in (
        ("http://intranet.arxiv.org/x.pdf", "'intranet.arxiv.org' resolves to 10.0.0.5 (private)"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "'169.254.169.254' resolves to 169.254.169.254 (cloud metadata)",
        ),
    ):
        url = f"http://github.com:{port}/to?url={target}"
        number = 100 + len(dns.connects)
        body = refused(control, url, django_capture_on_commit_callbacks, number=number)
        assert body["reason"] == "pdf_address_forbidden"
        assert body["detail"] == f"{target}: {why}"
    assert all(ipaddress.ip_address(h).is_loopback for h, _ in dns.connects)
    assert [r.path for r in pdf_host.requests] == ["/to", "/to"]


@pytest.mark.parametrize(
    "target",
    ["file:///etc/passwd", "ftp://arxiv.org/paper.pdf", "gopher://arxiv.org:70/_GET%20/"],
)
def test_redirect_to_another_scheme_is_refused(
    github_names,
    dns,
    pdf_host,
    control,  # noqa: F811
    django_capture_on_commit_callbacks,
    target,
):
    """The issue's own URL must be http(s) (whitepapers/github.py); a redirect may name any
    scheme, and is refused before anything is opened."""
    url = f"http://github.com:{port_of(pdf_host)}/to?url={target}"
    body = refused(control, url, django_capture_on_commit_callbacks)
    assert body["reason"] == "pdf_scheme_forbidden"
    assert dns.lookups == ["github.com"]
    assert [r.path for r in pdf_host.requests] == ["/to"]


def test_rebinding_cannot_move_the_connection_to_loopback(
    intake,
    paper_host,
    control,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    """The name first answers a public address (checked, allowed), then 127.0.0.1. The check
    and the connection use the one answer: the connect goes to the public address (refused by the
    test guard, so nothing leaves the machine), never to the loopback server."""
    port = port_of(paper_host)
    paper_host.put("x.pdf", PAPER)
    intake.name("rebind.arxiv.org", ["151.101.3.42"], ["127.0.0.1"])
    url = f"http://rebind.arxiv.org:{port}/papers/x.pdf"
    body = refused(control, url, django_capture_on_commit_callbacks)
    assert body["reason"] == "pdf_download_failed"
    assert intake.lookups == ["rebind.arxiv.org"]
    assert intake.connects == [("151.101.3.42", port)]
    assert paper_host.requests == []


# -- caps -----------------------------------------------------------------------------------------
def test_size_and_time_caps_hold_under_the_settings(
    github_names,
    pdf_host,
    control,  # noqa: F811
    settings,
    django_capture_on_commit_callbacks,
):
    port = port_of(pdf_host)
    settings.WHITEPAPER_MAX_PDF_BYTES = 256 * 1024
    big = f"http://github.com:{port}/huge?bytes={64 * 1024 * 1024}"
    body = refused(control, big, django_capture_on_commit_callbacks, number=1)
    assert body["reason"] == "pdf_too_large"
    assert pdf_host.last_stream().bytes_written < 16 * 1024 * 1024

    settings.WHITEPAPER_DOWNLOAD_TIMEOUT_SECONDS = 0.5
    started = time.monotonic()
    slow = f"http://github.com:{port}/dribble?delay=0.02"
    body = refused(control, slow, django_capture_on_commit_callbacks, number=2)
    assert body["reason"] == "pdf_download_timeout"
    assert time.monotonic() - started < 1.5
    assert pdf_host.last_stream().bytes_written > len(PDF_HEADER)
