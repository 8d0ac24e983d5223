"""The outbound-URL guard: which addresses are refused, the allow-list, and that a request goes to exactly
the address that was checked (real local servers record every connection they get)."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import trustme

from stratus.outbound import (
    AllowList,
    HostNotResolved,
    NotPublicAddress,
    OutboundFailed,
    OutboundGuard,
    Timeouts,
    UnsupportedUrl,
    is_public_address,
)

from tests.receivers import LocalHttpServer

SHORT = Timeouts(connect_s=1.0, read_s=2.0, budget_s=3.0)


class RecordingServer(LocalHttpServer):
    """An HTTP server on 127.0.0.1 that counts the connections it accepts and records each request's Host."""

    def __init__(self, *, status: int = 200, headers: dict[str, str] | None = None, tls: ssl.SSLContext | None = None,
                 drip: bool = False) -> None:
        owner = self
        self.connections = 0
        self.hosts: list[str] = []
        self._closing = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                owner.hosts.append(self.headers["Host"])
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if drip:  # 3 s of body, a byte at a time (every read gets data), then it breaks off
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    for _ in range(60):
                        if owner._closing.wait(0.05):
                            return
                        try:
                            self.wfile.write(b"x")
                            self.wfile.flush()
                        except OSError:
                            return
                    return
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                connection, address = super().get_request()
                owner.connections += 1
                if tls is not None:
                    connection = tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
                return connection, address

            def handle_error(self, request, client_address):
                pass  # a refused TLS handshake is what some tests want

        self._serve(Server(("127.0.0.1", 0), Handler))


class ScriptedResolver:
    """A name server under the test's control: answers each lookup with the next of `answers`."""

    def __init__(self, *answers: list[str]) -> None:
        self._answers = list(answers)
        self.lookups = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups += 1
        return self._answers[min(self.lookups, len(self._answers)) - 1]


# --- which addresses are public ------------------------------------------------------------------------

@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.255.254",  # loopback
    "10.0.0.1", "172.16.0.1", "192.168.1.1",  # RFC 1918
    "169.254.169.254", "169.254.170.2",  # link-local: instance metadata, container credentials
    "100.64.0.1", "100.127.255.254",  # shared address space (CGNAT)
    "0.0.0.0", "0.1.2.3",  # unspecified, "this network"
    "224.0.0.1", "239.255.255.250",  # multicast
    "240.0.0.1", "255.255.255.255",  # reserved, broadcast
    "192.0.2.1", "198.18.0.1",  # documentation, benchmarking
    "::1", "::",  # loopback, unspecified
    "fe80::1", "fc00::1", "fd00:ec2::254",  # link-local, unique local (the EC2 IPv6 metadata endpoint)
    "fec0::1", "ff02::1", "2001:db8::1", "100::1",  # site-local, multicast, documentation, discard
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1",  # IPv4-mapped
    "::127.0.0.1", "::169.254.169.254",  # IPv4-compatible
    "2002:7f00:1::", "2002:a9fe:a9fe::",  # 6to4 of 127.0.0.1 and 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
])
def test_non_public_addresses(address):
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8",
                                     "2002:808:808::"])
def test_public_addresses(address):
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://localhost/", "http://2130706433/", "http://0x7f.1/", "http://017700000001/",
    "http://127.1/", "http://0/", "http://[::1]/", "http://[::ffff:7f00:1]/", "http://169.254.169.254/latest/",
    "http://[fd00:ec2::254]/latest/", "https://10.0.0.1:8443/x", "http://100.64.0.1/",
])
def test_urls_to_internal_addresses_are_refused_whatever_the_spelling(url):
    # the system resolver turns odd spellings into the address they mean
    with pytest.raises(NotPublicAddress) as refused:
        OutboundGuard().check(url)
    # the message names the host as given, never what it resolved to
    assert str(refused.value) == f"the host {urlsplit(url).hostname!r} is not a public address"


def test_a_name_with_one_internal_address_among_public_ones_is_refused():
    guard = OutboundGuard(resolver=ScriptedResolver(["93.184.215.14", "10.0.0.7"]))
    with pytest.raises(NotPublicAddress):
        guard.check("https://hooks.example.com/x")


def test_a_public_target_keeps_its_name_for_host_header_and_tls():
    guard = OutboundGuard(resolver=ScriptedResolver(["93.184.215.14", "2606:4700:4700::1111"]))
    target = guard.check("https://hooks.example.com:8443/in?x=1")
    assert (target.host, target.port, target.path) == ("hooks.example.com", 8443, "/in?x=1")
    assert target.addresses == ("93.184.215.14", "2606:4700:4700::1111")
    assert target.host_header == "hooks.example.com:8443"


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost",
                                 "http://user:pw@example.com/", "http://example.com:99999/", "gopher://x/"])
def test_only_plain_http_urls(url):
    with pytest.raises(UnsupportedUrl):
        OutboundGuard(resolver=ScriptedResolver(["93.184.215.14"])).check(url)


def test_unresolvable_hosts_are_refused():
    with pytest.raises(HostNotResolved):
        OutboundGuard().check("http://no-such-host.invalid/")


# --- the operator's allow-list --------------------------------------------------------------------------

def test_the_allow_list_lets_through_exactly_its_hosts_and_networks():
    allow = AllowList.parse(" hooks.internal , 10.1.0.0/16,127.0.0.2,,")
    resolver = ScriptedResolver(["10.9.9.9"])
    guard = OutboundGuard(allow, resolver=resolver)
    assert guard.check("http://HOOKS.internal./x").addresses == ("10.9.9.9",)  # a listed name, any address
    assert OutboundGuard(allow).check("http://10.1.200.3/").addresses == ("10.1.200.3",)  # a listed network
    assert OutboundGuard(allow).check("http://127.0.0.2/").addresses == ("127.0.0.2",)
    for url in ("http://10.2.0.1/", "http://127.0.0.1/", "http://169.254.169.254/", "http://other.internal/"):
        with pytest.raises(NotPublicAddress):
            OutboundGuard(allow, resolver=ScriptedResolver(["10.9.9.9"])).check(url)


def test_the_allow_list_is_empty_by_default():
    assert AllowList.parse("") == AllowList() == AllowList.parse(None)
    with pytest.raises(NotPublicAddress):
        OutboundGuard(AllowList.parse("")).check("http://127.0.0.1/")


# --- pinning: the connection goes to the address that was checked ---------------------------------------

def test_a_name_that_rebinds_to_loopback_after_the_check_never_reaches_loopback():
    # Given a name server that answers a public address first and 127.0.0.1 on any later lookup
    resolver = ScriptedResolver(["93.184.215.14"], ["127.0.0.1"])
    guard = OutboundGuard(resolver=resolver)
    with RecordingServer() as internal:
        # When a request is made to that name on the internal server's port
        try:
            guard.request("GET", f"http://rebind.example.com:{internal.port}/",
                          timeouts=Timeouts(connect_s=0.5, read_s=0.5, budget_s=1.0))
        except OutboundFailed:
            pass  # whether the public address answers depends on the network the tests run in
    # Then the name was looked up once, and the internal server never saw a connection
    assert resolver.lookups == 1
    assert internal.connections == 0


def test_an_allowed_name_is_connected_to_at_its_checked_address_with_its_own_host_header():
    # the counterpart of the test above: the recording server does see connections made to it
    resolver = ScriptedResolver(["127.0.0.1"], ["10.0.0.1"])
    guard = OutboundGuard(AllowList.parse("127.0.0.0/8"), resolver=resolver)
    with RecordingServer() as receiver:
        response = guard.request("GET", f"http://hooks.example.com:{receiver.port}/x", timeouts=SHORT)
    assert response.status == 200 and response.body == b"ok"
    assert resolver.lookups == 1 and receiver.connections == 1
    assert receiver.hosts == [f"hooks.example.com:{receiver.port}"]


def test_the_next_checked_address_is_tried_when_one_does_not_connect():
    with socket.create_server(("127.0.0.1", 0)) as closed:
        dead_port = closed.getsockname()[1]
    with RecordingServer() as receiver:
        # ::1 answers nothing on the receiver's port (the receiver listens on 127.0.0.1 only)
        guard = OutboundGuard(AllowList.everything(), resolver=ScriptedResolver(["::1", "127.0.0.1"]))
        assert guard.request("GET", f"http://twice.example.com:{receiver.port}/", timeouts=SHORT).status == 200
    with pytest.raises(OutboundFailed) as failed:
        OutboundGuard(AllowList.everything()).request("GET", f"http://127.0.0.1:{dead_port}/", timeouts=SHORT)
    assert not failed.value.timed_out


def test_redirects_are_returned_not_followed():
    with RecordingServer(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}) as receiver:
        response = OutboundGuard(AllowList.parse("127.0.0.1")).request("GET", f"http://127.0.0.1:{receiver.port}/",
                                                                       timeouts=SHORT)
    assert response.status == 302 and receiver.connections == 1


def test_the_time_budget_ends_a_receiver_that_keeps_dripping():
    # every read gets a byte within the read timeout, so only the overall budget can end the request early
    # (without it, the body would break off after 3 s: a failure, but not a timeout)
    with RecordingServer(drip=True) as receiver:
        with pytest.raises(OutboundFailed) as failed:
            OutboundGuard(AllowList.parse("127.0.0.1")).request(
                "GET", f"http://127.0.0.1:{receiver.port}/", timeouts=Timeouts(connect_s=1, read_s=2, budget_s=0.5))
    assert failed.value.timed_out


# --- TLS: the certificate is checked against the URL's host name, not the pinned address ----------------

@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.example.com").configure_cert(server_context)
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return server_context, str(bundle)


def test_https_to_a_pinned_address_verifies_the_certificate_of_the_host_name(tls):
    server_context, ca_bundle = tls
    with RecordingServer(tls=server_context) as receiver:
        guard = OutboundGuard(AllowList.parse("127.0.0.1"), resolver=ScriptedResolver(["127.0.0.1"]),
                              ca_certs=ca_bundle)
        response = guard.request("POST", f"https://hooks.example.com:{receiver.port}/in", body=b"{}",
                                 timeouts=SHORT)
        assert response.status == 200 and receiver.hosts == [f"hooks.example.com:{receiver.port}"]
        # a name the certificate is not for, pinned to the same address, fails the check
        with pytest.raises(OutboundFailed):
            guard.request("POST", f"https://other.example.com:{receiver.port}/in", body=b"{}", timeouts=SHORT)
    assert receiver.hosts == [f"hooks.example.com:{receiver.port}"]
