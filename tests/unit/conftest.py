"""Unit tests run without a network: an INET/INET6 connection, or the name lookup of a host that is not local, fails
the test that attempts it, naming the test and the address.

A test that needs a socket belongs in tests/integration (moto's server, the local PagerDuty receiver). A library that
catches the error and carries on does not hide the attempt: the test still fails, at teardown.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

INET = (socket.AF_INET, socket.AF_INET6)
LOCAL_NAMES = {None, "", "localhost", "127.0.0.1", "::1"}

# Tests allowed to connect to 127.0.0.1 (only). Empty: a test that needs a socket belongs in tests/integration.
LOOPBACK_ALLOWED: set[str] = set()


class NetworkBannedError(RuntimeError):
    """A network attempt in a unit test (not an OSError, so that no caller takes it for a refused connection)."""


def _is_loopback(address: Any) -> bool:
    try:
        return ipaddress.ip_address(address[0]).is_loopback
    except (TypeError, ValueError, IndexError):
        return False


@pytest.fixture(autouse=True)
def no_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The network attempts the test made (each also raised NetworkBannedError); any left fail the test."""
    attempts: list[str] = []
    loopback_allowed = request.node.nodeid.split("[")[0] in LOOPBACK_ALLOWED
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
    create_connection, getaddrinfo = socket.create_connection, socket.getaddrinfo

    def check(what: str, family: int, address: Any) -> None:
        if family in INET and not (loopback_allowed and _is_loopback(address)):
            attempts.append(f"{what} {address!r}")
            raise NetworkBannedError(
                f"{request.node.nodeid}: unit tests may not use the network ({what} {address!r}); "
                "fake the boundary, or move the test to tests/integration"
            )

    def guarded_connect(self: socket.socket, address: Any) -> None:
        check("connect", self.family, address)
        return connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        check("connect_ex", self.family, address)
        return connect_ex(self, address)

    def guarded_create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        check("create_connection", socket.AF_INET, address)
        return create_connection(address, *args, **kwargs)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if (host.decode() if isinstance(host, bytes) else host) not in LOCAL_NAMES:
            check("getaddrinfo", socket.AF_INET, (host, *args[:1]))
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "create_connection", guarded_create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    yield attempts
    if attempts:
        pytest.fail(f"{request.node.nodeid} tried to use the network: {'; '.join(attempts)}", pytrace=False)
