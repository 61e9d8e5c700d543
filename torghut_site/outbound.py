"""Outbound HTTP for URLs that someone outside the operators chose: one policy, one fetch.

Every fetch of an attacker-influenced URL (today: a whitepaper PDF named in a GitHub issue) goes
through `outbound_get`. Each hop of a redirect chain is checked in this order, and a refusal
raises `OutboundError` before any connection is opened:

1. the URL parses, has a host and no user-info (`url_invalid`);
2. its scheme is in `policy.allowed_schemes` (`scheme_forbidden`);
3. its host matches `policy.allowed_hosts` (`host_not_allowed`), see `host_matches`;
4. the host is resolved ONCE (`resolver`, within the deadline), and every address it resolves
   to is checked (`address_forbidden` if any one is loopback, private, link-local, shared/CGNAT,
   multicast, reserved, unspecified, a cloud metadata address, or an IPv6 form embedding such an
   IPv4 address); a failed resolution is `unresolvable`;
5. the connection goes to a checked address itself (the IP is pinned: nothing resolves the name
   again, so a DNS answer that changes between check and connect cannot redirect it), with the
   original Host header and, over TLS, the host name for SNI and certificate verification.

Redirects are followed here (never by the transport), each hop checked anew. A credential is
sent only to the hosts it belongs to (`Credential.hosts`), only over https, and only while every
hop so far stayed on those hosts: once a hop leaves them it is never sent again in that chain.
No cookies are kept, no proxy from the environment is used. The body is streamed under a byte cap
and the whole exchange under one deadline.

Host patterns (`allowed_hosts`, `Credential.hosts`): a name matches itself and its subdomains at a
label boundary (`arxiv.org` matches `arxiv.org` and `export.arxiv.org`, not `evilarxiv.org`); an
IP literal matches only itself; `*` matches any host (the address checks still apply). Names are
compared lower-case without a trailing dot.

Tests: `OutboundPolicy.allow_loopback` lets a policy reach loopback addresses (and send
credentials over plain http to them), for the real servers tests start on 127.0.0.1. No
environment variable sets it; see `whitepapers.pdf.pdf_fetch_policy` for how a caller takes it.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
import urllib3.exceptions

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the host resolves to, in the order to try them
Resolver = Callable[[str, int], Sequence[IPAddress]]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
_CHUNK_BYTES = 64 * 1024

# cloud instance metadata and host agents, whatever range they fall in
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer (a public address)
        "192.0.0.192",  # Oracle Cloud
    )
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # embeds an IPv4 address in the low 32 bits


class OutboundCode(enum.StrEnum):
    URL_INVALID = "url_invalid"
    SCHEME_FORBIDDEN = "scheme_forbidden"
    HOST_NOT_ALLOWED = "host_not_allowed"
    ADDRESS_FORBIDDEN = "address_forbidden"
    UNRESOLVABLE = "unresolvable"
    FAILED = "failed"  # connect or transfer failed
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    HTTP_ERROR = "http_error"


# refused by the policy before any connection (the others are failures of the transfer)
POLICY_REFUSALS = frozenset(
    {
        OutboundCode.URL_INVALID,
        OutboundCode.SCHEME_FORBIDDEN,
        OutboundCode.HOST_NOT_ALLOWED,
        OutboundCode.ADDRESS_FORBIDDEN,
    }
)


class OutboundError(Exception):
    """A refused or failed fetch: `code` says which, `detail` what happened (names the URL)."""

    def __init__(self, code: OutboundCode, detail: str, *, status: int | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class Credential:
    """A header (e.g. Authorization) that belongs to `hosts` (patterns) and to nothing else."""

    header: str
    value: str = field(repr=False)
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class OutboundPolicy:
    allowed_hosts: tuple[str, ...]  # host patterns (see the module docstring); "*" = any host
    max_bytes: int
    timeout_seconds: float  # connect + every read + the whole chain
    max_redirects: int = 5
    allowed_schemes: frozenset[str] = frozenset({"https", "http"})
    credentials: tuple[Credential, ...] = ()
    user_agent: str = "torghut/1"
    # TEST ONLY: loopback addresses may be reached. Never read from the environment.
    allow_loopback: bool = False
    ca_certs: str | None = None  # a CA bundle instead of certifi's (tests with their own CA)


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    final_url: str
    redirects: int
    address: str  # the IP the final hop connected to

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")


@dataclass(frozen=True)
class _Hop:
    url: str
    scheme: str
    host: str  # normalised: lower-case, no trailing dot, no brackets
    port: int
    host_header: str
    target: str  # path and query


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses getaddrinfo gives for (host, port), in its order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    found: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")


def host_pattern_problem(pattern: str) -> str | None:
    """Why `pattern` is not a host pattern (settings validate their lists with this), or None."""
    if pattern == "*" or _ip_literal(_normal_host(pattern)) is not None:
        return None
    if pattern.startswith("*."):
        return f"{pattern!r}: write {pattern[2:]!r}, which also matches its subdomains"
    labels = _normal_host(pattern).split(".")
    if pattern != pattern.strip() or not all(_LABEL.match(label) for label in labels):
        return f"{pattern!r} is not a host name (no scheme, port or path) nor an IP address"
    return None


def host_matches(host: str, patterns: Sequence[str]) -> bool:
    """Whether `host` is one of `patterns` or a subdomain of one (label boundary); "*" = any."""
    host = _normal_host(host)
    if _ip_literal(host) is not None:
        return any(p == "*" or _normal_host(p) == host for p in patterns)
    for pattern in patterns:
        pattern = _normal_host(pattern)
        if pattern == "*" or host == pattern or host.endswith("." + pattern):
            return True
    return False


def address_refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why `address` must not be connected to, or None if it may be (a global unicast one)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = address_refusal(embedded, allow_loopback=allow_loopback)
            return None if inner is None else f"{inner} (embedded in {address})"
        if address.is_site_local:
            return "site-local"
    if address.is_loopback:
        return None if allow_loopback else "loopback"
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    checks: tuple[tuple[bool, str], ...] = (
        (address.is_unspecified, "unspecified"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _SHARED, "shared (CGNAT)"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not global"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


def outbound_get(
    url: str,
    *,
    policy: OutboundPolicy,
    headers: Mapping[str, str] | None = None,
    resolver: Resolver = system_resolver,
    head_check: Callable[[bytes, str], None] | None = None,
    head_bytes: int = 1024,
) -> OutboundResponse:
    """GET `url` under `policy`, following redirects hop by hop, and return the 2xx answer.

    `head_check(head, url)` sees the first `head_bytes` of the body (all of it if shorter) as
    soon as they have arrived, with the URL of the hop that answered; whatever it raises ends the
    download and propagates. A non-2xx final answer is `http_error` (its body is not read).
    """
    deadline = time.monotonic() + policy.timeout_seconds
    credential_hosts_kept = [True] * len(policy.credentials)
    current = url
    redirects = 0
    while True:
        hop = _hop(current, policy)
        addresses = _resolve_checked(hop, policy, resolver, deadline)
        for index, credential in enumerate(policy.credentials):
            if not host_matches(hop.host, credential.hosts):
                credential_hosts_kept[index] = False  # never re-added later in this chain
        response, pool, address = _open(
            hop, addresses, policy, deadline, headers, credential_hosts_kept
        )
        with contextlib.closing(pool), contextlib.closing(response):
            location = response.headers.get("Location")
            if response.status in REDIRECT_STATUSES and location:
                target = urljoin(current, location.strip())
                if redirects >= policy.max_redirects:
                    raise OutboundError(
                        OutboundCode.TOO_MANY_REDIRECTS,
                        f"more than {policy.max_redirects} redirects, the last to {target}",
                    )
                redirects += 1
                current = target
                continue
            if not 200 <= response.status < 300:
                raise OutboundError(
                    OutboundCode.HTTP_ERROR,
                    f"HTTP {response.status} from {current}",
                    status=response.status,
                )
            body = _read_body(
                response,
                max_bytes=policy.max_bytes,
                deadline=deadline,
                url=current,
                head_check=head_check,
                head_bytes=head_bytes,
            )
            return OutboundResponse(
                status=response.status,
                headers=urllib3.HTTPHeaderDict(response.headers),
                body=body,
                final_url=current,
                redirects=redirects,
                address=str(address),
            )


# -- each hop --------------------------------------------------------------------------------


def _normal_host(host: str) -> str:
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


def _ascii_host(host: str) -> str:
    """The host as ASCII (IDNA for a non-ASCII name); "" if it is no valid host at all."""
    if not host or _ip_literal(host) is not None:
        return host
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return ""
    return ascii_host if all(_LABEL.match(label) for label in ascii_host.split(".")) else ""


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _hop(url: str, policy: OutboundPolicy) -> _Hop:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        raw_host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        raise OutboundError(OutboundCode.URL_INVALID, f"{url!r}: {exc}") from exc
    if not scheme or (not parts.netloc and scheme in DEFAULT_PORTS):
        raise OutboundError(OutboundCode.URL_INVALID, f"{url!r} is not an absolute URL")
    if scheme not in policy.allowed_schemes or scheme not in DEFAULT_PORTS:
        raise OutboundError(OutboundCode.SCHEME_FORBIDDEN, f"{url!r}: scheme {scheme!r}")
    host = _ascii_host(_normal_host(raw_host))
    if not host:
        raise OutboundError(OutboundCode.URL_INVALID, f"{url!r} has no usable host")
    if parts.username is not None or parts.password is not None:
        raise OutboundError(OutboundCode.URL_INVALID, f"{url!r} carries user-info")
    if not host_matches(host, policy.allowed_hosts):
        raise OutboundError(
            OutboundCode.HOST_NOT_ALLOWED, f"{url!r}: host {host!r} is not on the allow-list"
        )
    effective_port = port or DEFAULT_PORTS[scheme]
    literal = _ip_literal(host)
    shown = f"[{host}]" if isinstance(literal, ipaddress.IPv6Address) else host
    host_header = shown if port is None or port == DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return _Hop(url, scheme, host, effective_port, host_header, target)


def _resolve_within(resolver: Resolver, hop: _Hop, timeout: float) -> list[IPAddress]:
    """`resolver(host, port)` within `timeout`: getaddrinfo has no timeout of its own, so it runs
    in a daemon thread that is abandoned (it ends at the system resolver's own timeout)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["addresses"] = list(resolver(hop.host, hop.port))
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"outbound-resolve {hop.host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise OutboundError(
            OutboundCode.TIMEOUT, f"{hop.url}: resolving {hop.host!r} outlasted the deadline"
        )
    if "error" in outcome:
        raise outcome["error"]
    addresses: list[IPAddress] = outcome["addresses"]
    return addresses


def _resolve_checked(
    hop: _Hop, policy: OutboundPolicy, resolver: Resolver, deadline: float
) -> list[IPAddress]:
    literal = _ip_literal(hop.host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        timeout = _remaining(deadline, policy.timeout_seconds, hop.url)
        try:
            addresses = _resolve_within(resolver, hop, timeout)
        except (OSError, UnicodeError, ValueError) as exc:
            raise OutboundError(
                OutboundCode.UNRESOLVABLE, f"{hop.url}: cannot resolve {hop.host!r}: {exc}"
            ) from exc
        if not addresses:
            raise OutboundError(
                OutboundCode.UNRESOLVABLE, f"{hop.url}: {hop.host!r} resolves to no address"
            )
    for address in addresses:
        reason = address_refusal(address, allow_loopback=policy.allow_loopback)
        if reason is not None:
            raise OutboundError(
                OutboundCode.ADDRESS_FORBIDDEN,
                f"{hop.url}: {hop.host!r} resolves to {address} ({reason})",
            )
    return addresses


def _hop_headers(
    hop: _Hop,
    address: IPAddress,
    policy: OutboundPolicy,
    extra: Mapping[str, str] | None,
    credential_hosts_kept: Sequence[bool],
) -> dict[str, str]:
    headers = {
        "Host": hop.host_header,
        "User-Agent": policy.user_agent,
        # the byte cap is meant for what goes over the wire and into memory: no compression
        "Accept-Encoding": "identity",
        "Connection": "close",  # one connection per hop, never reused
        **(extra or {}),
    }
    secure = hop.scheme == "https" or (policy.allow_loopback and address.is_loopback)
    for credential, kept in zip(policy.credentials, credential_hosts_kept, strict=True):
        if kept and secure:
            headers[credential.header] = credential.value
    return headers


def _pool(hop: _Hop, address: IPAddress, policy: OutboundPolicy) -> urllib3.HTTPConnectionPool:
    """A one-connection pool to the pinned address; urllib3 uses no environment proxy."""
    options: dict[str, Any] = {"maxsize": 1, "block": False, "retries": False}
    if hop.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            str(address),
            hop.port,
            cert_reqs="CERT_REQUIRED",
            ca_certs=policy.ca_certs or certifi.where(),
            server_hostname=None if _ip_literal(hop.host) else hop.host,
            assert_hostname=hop.host,
            **options,
        )
    return urllib3.HTTPConnectionPool(str(address), hop.port, **options)


def _open(
    hop: _Hop,
    addresses: Sequence[IPAddress],
    policy: OutboundPolicy,
    deadline: float,
    extra: Mapping[str, str] | None,
    credential_hosts_kept: Sequence[bool],
) -> tuple[urllib3.BaseHTTPResponse, urllib3.HTTPConnectionPool, IPAddress]:
    """Send the request to the first checked address that accepts a connection."""
    last: Exception | None = None
    for address in addresses:
        timeout = _remaining(deadline, policy.timeout_seconds, hop.url)
        pool = _pool(hop, address, policy)
        try:
            response = pool.urlopen(
                "GET",
                hop.target,
                headers=_hop_headers(hop, address, policy, extra, credential_hosts_kept),
                redirect=False,
                retries=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
            )
        except urllib3.exceptions.NewConnectionError as exc:
            pool.close()
            last = exc  # refused or unreachable: the next checked address, if any
            continue
        except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            pool.close()
            raise OutboundError(OutboundCode.TIMEOUT, f"{hop.url}: {exc}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            pool.close()
            raise OutboundError(OutboundCode.FAILED, f"{hop.url}: {exc}") from exc
        except ValueError as exc:  # http.client refuses control characters in the request line
            pool.close()
            raise OutboundError(OutboundCode.URL_INVALID, f"{hop.url!r}: {exc}") from exc
        return response, pool, address
    raise OutboundError(OutboundCode.FAILED, f"{hop.url}: {last}")


def _remaining(deadline: float, timeout_seconds: float, url: str) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise OutboundError(
            OutboundCode.TIMEOUT, f"no complete answer within {timeout_seconds:g} s ({url})"
        )
    return min(remaining, timeout_seconds)


# -- the body --------------------------------------------------------------------------------


def _read_body(
    response: urllib3.BaseHTTPResponse,
    *,
    max_bytes: int,
    deadline: float,
    url: str,
    head_check: Callable[[bytes, str], None] | None,
    head_bytes: int,
) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise OutboundError(
            OutboundCode.TOO_LARGE,
            f"Content-Length {int(declared)} exceeds {max_bytes} bytes ({url})",
        )
    buffer = bytearray()
    check = head_check
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OutboundError(
                    OutboundCode.TIMEOUT,
                    f"body not complete before the deadline after {len(buffer)} bytes ({url})",
                )
            _tighten_read_timeout(response, remaining)
            # read1 returns whatever has arrived, so a dribbling server cannot hold one read
            # open past the deadline the way read(n) would while it waits for n bytes
            chunk = response.read1(_CHUNK_BYTES, decode_content=True)
            if not chunk:
                break
            buffer += chunk
            if len(buffer) > max_bytes:
                raise OutboundError(
                    OutboundCode.TOO_LARGE, f"body exceeds {max_bytes} bytes ({url})"
                )
            if check is not None and len(buffer) >= head_bytes:
                check(bytes(buffer[:head_bytes]), url)
                check = None
    except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
        raise OutboundError(
            OutboundCode.TIMEOUT, f"read timed out after {len(buffer)} bytes ({url}): {exc}"
        ) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise OutboundError(
            OutboundCode.FAILED, f"body read failed after {len(buffer)} bytes ({url}): {exc}"
        ) from exc
    if check is not None:
        check(bytes(buffer), url)
    return bytes(buffer)


def _tighten_read_timeout(response: Any, remaining: float) -> None:
    """Make the next socket read wait no longer than the overall deadline allows.

    urllib3 applies the read timeout per socket read; without this, a server that stalls just
    before the deadline would get one more full read timeout.
    """
    sock = getattr(getattr(response, "connection", None), "sock", None)
    if sock is not None:
        try:
            sock.settimeout(max(remaining, 0.001))
        except OSError:
            return
