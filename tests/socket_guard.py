"""No outbound network, ever: connections to anything but the loopback interface (the local tile
server, a notebook kernel's channels) raise. Installed by ``conftest.py`` in the test process and
by the first cell the notebook tests run in each kernel."""

from __future__ import annotations

import socket
from typing import Any

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_create_connection = socket.create_connection


def _is_local(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return True
    host = str(address[0]) if isinstance(address, tuple) and address else ""
    return host in ("localhost", "::1") or host.startswith("127.")


class OutboundConnectionError(RuntimeError):
    """A test tried to open a network connection to the outside."""


def _refuse(address: Any) -> None:
    if not _is_local(address):
        raise OutboundConnectionError(f"Test tried to connect to {address!r}: no network in tests.")


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    _refuse(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    _refuse(address)
    return _real_connect_ex(self, address)


def _guarded_create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
    _refuse(address)
    return _real_create_connection(address, *args, **kwargs)


def install_socket_guard() -> None:
    """Refuse every connection to a non-loopback address in this process."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.create_connection = _guarded_create_connection  # type: ignore[assignment]
