"""Outbound HTTP to URLs that users give us (order webhooks, `load_stac` documents), safe against SSRF.

A URL's host is resolved ONCE; unless every address it resolves to is globally routable (or the operator
allow-listed the host or the address), the request is refused. The connection then goes to exactly the
checked addresses: no second lookup happens, so a name that answers a public address to the check and
127.0.0.1 to the connection (DNS rebinding) cannot turn us into a scanner of our own network. The Host
header, TLS SNI and the certificate check still use the URL's host name. Redirects are never followed
here: a caller that follows one passes the new URL through `OutboundGuard.request` again (checked and
pinned like the first).

Refused (after unwrapping IPv4 embedded in IPv6: mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, 6to4):
loopback, private (RFC 1918, fc00::/7 incl. fd00:ec2::254), link-local (169.254/16 incl. the instance
metadata endpoint 169.254.169.254, fe80::/10), shared address space 100.64/10, unspecified, multicast,
reserved (incl. 240/4, ::/8 and so NAT64 64:ff9b::/96), IPv6 site-local, documentation and benchmark ranges;
in short anything `ipaddress` does not call global, plus multicast and reserved. Odd IPv4 spellings
(`2130706433`, `0x7f.1`, `017700000001`, `127.1`) are what `getaddrinfo` makes of them: 127.0.0.1.

Library: urllib3 (in every Lambda already, through botocore; well kept). Its `HTTPSConnection` connects to
the `host` it is given (our checked IP) while `server_hostname` sets SNI and the name the certificate is
verified against, which is exactly pinning. `requests`/`httpx` resolve names themselves (pinning needs a
custom transport), `advocate` (SSRF-safe requests) has been unmaintained since 2020, and `drawbridge` is a
months-old single-author wrapper. The overall time budget is ours: urllib3's timeouts are per socket
operation, so a receiver that drips one byte at a time could hold a request far longer; a watchdog shuts
the socket down when the budget is spent.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses the host resolves to, in the order to try them
Resolver = Callable[[str, int], Sequence[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}
RESOLVE_TIMEOUT_S = 3.0  # a name server that stalls must not stall a request (the API answers within 29 s)
NOT_PUBLIC = "is not a public address"


class OutboundRefused(Exception):
    """The URL may not be requested. Messages never name the addresses a host resolved to."""


class UnsupportedUrl(OutboundRefused):
    pass


class HostNotResolved(OutboundRefused):
    def __init__(self, host: str) -> None:
        super().__init__(f"the host {host!r} could not be resolved")
        self.host = host


class NotPublicAddress(OutboundRefused):
    def __init__(self, host: str) -> None:
        super().__init__(f"the host {host!r} {NOT_PUBLIC}")
        self.host = host


class OutboundFailed(OSError):
    """The request went out but got no HTTP answer: `timed_out` tells a stall from a failed connection.
    The text is for operators' logs (the cause is chained), never for customers."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


def is_public_address(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or _ipv4_compatible(address)
        if embedded is not None:
            return is_public_address(embedded)
        if address.is_site_local:
            return False
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_unspecified
                                      or address.is_loopback or address.is_link_local or address.is_private)


def _ipv4_compatible(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """`::a.b.c.d` (deprecated, but still routed by some stacks)."""
    value = int(address)
    return ipaddress.IPv4Address(value) if value >> 32 == 0 and value > 1 else None


@dataclass(frozen=True)
class AllowList:
    """Private hosts and networks an operator lets us reach (their own receivers, tests).

    Parsed from a comma-separated setting: CIDRs/addresses (`10.1.0.0/16`, `127.0.0.2`) allow those
    addresses for any host name; a host name (`hooks.internal`) allows whatever it resolves to.
    `allow_all` switches the check off (pinning stays): for tests of code that reads local servers."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    allow_all: bool = False

    @classmethod
    def parse(cls, text: str | Iterable[str] | None) -> AllowList:
        entries = text.split(",") if isinstance(text, str) else list(text or ())
        hosts, networks = set(), []
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(_normal_host(entry))
        return cls(frozenset(hosts), tuple(networks))

    @classmethod
    def everything(cls) -> AllowList:
        return cls(allow_all=True)

    def allows_host(self, host: str) -> bool:
        return self.allow_all or _normal_host(host) in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return self.allow_all or any(address in network for network in self.networks)


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def system_resolver(timeout_s: float = RESOLVE_TIMEOUT_S) -> Resolver:
    """`getaddrinfo` with a deadline (it has none of its own; a stuck lookup finishes in its thread)."""

    def resolve(host: str, port: int) -> list[str]:
        future = _RESOLVER_POOL.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        try:
            infos = future.result(timeout=timeout_s)
        except FutureTimeout:
            raise socket.gaierror(f"resolving {host!r} took more than {timeout_s} s") from None
        return list(dict.fromkeys(info[4][0] for info in infos))

    return resolve


# as many as load_stac fetches at once (8) and a webhook batch (4) may look up together
_RESOLVER_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="resolve")


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`addresses`, in order) and what to tell the server."""

    scheme: str
    host: str  # the URL's host name: Host header, TLS SNI and certificate check
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 3.0  # per connection attempt
    read_s: float = 5.0  # per socket read
    budget_s: float = 10.0  # the whole request, all addresses tried, the answer read


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes
    truncated: bool = False  # the body was longer than the caller wanted to read


@dataclass
class OutboundGuard:
    """Checks and pins outbound requests (see the module docstring)."""

    allow: AllowList = field(default_factory=AllowList)
    resolver: Resolver = field(default_factory=system_resolver)
    ca_certs: str | None = None  # a CA bundle other than the system's (tests with their own CA)

    def check(self, url: str) -> Target:
        """Resolves the URL's host once and checks every address; raises `OutboundRefused`."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UnsupportedUrl("the URL cannot be parsed") from None
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise UnsupportedUrl("only http(s) URLs with a host can be requested")
        if parts.username is not None or parts.password is not None:
            raise UnsupportedUrl("URLs with user information are not supported")
        host = parts.hostname
        port = port or DEFAULT_PORTS[parts.scheme]
        try:
            answers = self.resolver(host, port)
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
        except (OSError, UnicodeError, ValueError):
            raise HostNotResolved(host) from None
        if not addresses:
            raise HostNotResolved(host)
        if not self.allow.allows_host(host):
            if not all(is_public_address(a) or self.allow.allows_address(a) for a in addresses):
                raise NotPublicAddress(host)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return Target(parts.scheme, host, port, path, tuple(str(a) for a in addresses))

    def request(self, method: str, url: str, *, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeouts: Timeouts = Timeouts(),
                max_body_bytes: int = 64 * 1024) -> OutboundResponse:
        """One request to the checked, pinned addresses of `url`; redirects are returned, not followed.
        Raises `OutboundRefused` before any connection, `OutboundFailed` without an HTTP answer."""
        return self.send(self.check(url), method, body=body, headers=headers, timeouts=timeouts,
                         max_body_bytes=max_body_bytes)

    def send(self, target: Target, method: str, *, body: bytes | None = None,
             headers: Mapping[str, str] | None = None, timeouts: Timeouts = Timeouts(),
             max_body_bytes: int = 64 * 1024) -> OutboundResponse:
        deadline = time.monotonic() + timeouts.budget_s
        failure: OutboundFailed | None = None
        for address in target.addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                return self._exchange(target, address, method, body, dict(headers or {}), timeouts, remaining,
                                      max_body_bytes)
            except _NotConnected as error:  # the next address may answer
                failure = OutboundFailed("could not connect", timed_out=error.timed_out)
                failure.__cause__ = error.__cause__
        if failure is None or deadline - time.monotonic() <= 0:
            raise OutboundFailed(f"no answer within {timeouts.budget_s} s", timed_out=True) from failure
        raise failure

    def _exchange(self, target: Target, address: str, method: str, body: bytes | None, headers: dict[str, str],
                  timeouts: Timeouts, remaining: float, max_body_bytes: int) -> OutboundResponse:
        from urllib3.connection import HTTPConnection, HTTPSConnection
        from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError

        connect_timeout = min(timeouts.connect_s, remaining)
        if target.scheme == "https":
            connection = HTTPSConnection(address, target.port, timeout=connect_timeout, server_hostname=target.host,
                                         ca_certs=self.ca_certs)
        else:
            connection = HTTPConnection(address, target.port, timeout=connect_timeout)
        watchdog = _Watchdog(connection, remaining)
        try:
            try:
                connection.connect()
            except (HTTPError, OSError) as error:
                # urllib3's NewConnectionError (refused, unreachable) derives from its ConnectTimeoutError
                timed_out = watchdog.fired or isinstance(error, TimeoutError) or (
                    isinstance(error, ConnectTimeoutError) and not isinstance(error, NewConnectionError))
                raise _NotConnected(timed_out=timed_out) from error
            connection.timeout = timeouts.read_s
            headers = {"Host": target.host_header, **headers}
            if body is not None:
                headers.setdefault("Content-Length", str(len(body)))
            connection.request(method, target.path, body=body, headers=headers, preload_content=False)
            response = connection.getresponse()
            content = response.read(max_body_bytes + 1)
            return OutboundResponse(response.status, response.headers, content[:max_body_bytes],
                                    truncated=len(content) > max_body_bytes)
        except _NotConnected:
            raise
        except (HTTPError, OSError, ValueError) as error:
            timed_out = watchdog.fired or isinstance(error, (TimeoutError, ReadTimeoutError))
            message = f"no answer within {timeouts.budget_s} s" if watchdog.fired else "the exchange failed"
            raise OutboundFailed(message, timed_out=timed_out) from error
        finally:
            watchdog.cancel()
            connection.close()


class _NotConnected(Exception):
    def __init__(self, *, timed_out: bool) -> None:
        super().__init__("not connected")
        self.timed_out = timed_out


class _Watchdog:
    """Shuts the connection's socket down when the request's budget is spent: a blocked read then ends."""

    def __init__(self, connection, seconds: float) -> None:
        self._connection = connection
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        sock = getattr(self._connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()
