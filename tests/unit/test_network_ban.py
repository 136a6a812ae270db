"""tests/unit/conftest.py bans the network: every way out raises, names the test, and is recorded."""

from __future__ import annotations

import socket

import pytest

from tests.unit.conftest import NetworkBannedError

TEST_NET = ("192.0.2.1", 443)  # TEST-NET-1 (RFC 5737): never routed


def test_connecting_to_an_outside_address_raises_naming_the_test(no_network: list[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(NetworkBannedError) as raised:
        sock.connect(TEST_NET)
    assert "test_network_ban.py::test_connecting_to_an_outside_address_raises_naming_the_test" in str(raised.value)
    assert "192.0.2.1" in str(raised.value)
    assert no_network == ["connect ('192.0.2.1', 443)"]
    no_network.clear()  # seen; otherwise the ban fails this test at teardown


def test_every_way_out_raises(no_network: list[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(NetworkBannedError):
        sock.connect_ex(TEST_NET)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(NetworkBannedError):
        sock.connect(("127.0.0.1", 9))  # loopback too, outside the listed exceptions
    with pytest.raises(NetworkBannedError):
        socket.create_connection(TEST_NET, timeout=1)
    with pytest.raises(NetworkBannedError):
        socket.getaddrinfo("events.pagerduty.com", 443)
    assert len(no_network) == 4
    no_network.clear()


def test_ipv6_is_banned_too(no_network: list[str]) -> None:
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        pytest.skip("no IPv6 on this machine")
    with sock, pytest.raises(NetworkBannedError):
        sock.connect(("2001:db8::1", 443, 0, 0))  # documentation prefix (RFC 3849)
    assert no_network == ["connect ('2001:db8::1', 443, 0, 0)"]
    no_network.clear()


def test_local_name_lookups_and_unix_sockets_still_work() -> None:
    assert socket.getaddrinfo("127.0.0.1", 9)
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"
