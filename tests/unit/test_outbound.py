"""The outbound guard (`stratus.outbound`): resolve once, refuse non-public addresses, connect only to the
checked address. Real sockets on loopback stand in for receivers; the resolver is the seam a DNS server is."""

from __future__ import annotations

import socket
import threading

import pytest

from stratus.outbound import AllowList, NotPublicAddress, OutboundFailed, OutboundGuard, Timeouts, is_public_address
import ipaddress


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "::1", "fe80::1",
                                     "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"])
def test_addresses_that_are_not_public(address):
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses(address):
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://2130706433/", "http://0x7f.1/", "http://127.1/",
                                 "http://localhost/", "http://[::1]/", "http://169.254.169.254/latest/meta-data/"])
def test_private_targets_are_refused_with_the_system_resolver(url):
    with pytest.raises(NotPublicAddress):
        OutboundGuard().check(url)


class Listener:
    """A TCP server on loopback that records every connection it accepts."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen()
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            conn.close()


def test_a_name_that_rebinds_to_loopback_never_reaches_it():
    listener = Listener()
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # public to the check, loopback to any second lookup
    guard = OutboundGuard(resolver=lambda host, port: next(answers))
    with pytest.raises(OutboundFailed):  # the pinned public address is unreachable from here
        guard.request("POST", f"http://rebind.example:{listener.port}/hook", body=b"{}",
                      timeouts=Timeouts(connect_s=0.5, read_s=0.5, budget_s=1.0))
    assert listener.connections == 0


def test_a_name_answering_one_private_address_among_public_ones_is_refused():
    listener = Listener()
    guard = OutboundGuard(resolver=lambda host, port: ["93.184.216.34", "127.0.0.1"])
    with pytest.raises(NotPublicAddress):
        guard.request("POST", f"http://mixed.example:{listener.port}/", body=b"{}")
    assert listener.connections == 0


def test_allow_listed_receivers_are_reached_at_the_checked_address():
    listener = Listener()
    guard = OutboundGuard(allow=AllowList.parse("127.0.0.0/8"), resolver=lambda host, port: ["127.0.0.1"])
    response = guard.request("POST", f"http://receiver.internal:{listener.port}/hook", body=b"{}")
    assert response.status == 204 and listener.connections == 1
