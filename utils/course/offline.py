"""Refuse every network connection that leaves this machine: the course must run offline.

The test command turns this on in every Python process it starts (the notebooks' kernels, JupyterLab,
the command lines), through tests/offline/sitecustomize.py; pytest's own process is guarded by
pytest-socket. A connection to this machine (127.0.0.0/8, ::1, "localhost", Unix sockets) still works:
kernels and the browser test talk over it.
"""

from __future__ import annotations

import ipaddress
import socket

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class NetworkBlocked(OSError):
    """Raised instead of connecting to another machine."""


def _is_local(address) -> bool:
    if not isinstance(address, tuple):  # a Unix socket's path
        return True
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:  # a host name other than localhost: it would need the network to resolve
        return False


def _refuse(address) -> None:
    raise NetworkBlocked(f"network blocked: this course runs offline, but something tried to connect to "
                         f"{address!r}. Load models and data from the files that ship with the course.")


def _local_connect(self, address):
    if not _is_local(address):
        _refuse(address)
    return _real_connect(self, address)


def _local_connect_ex(self, address):
    if not _is_local(address):
        _refuse(address)
    return _real_connect_ex(self, address)


def _local_getaddrinfo(host, *args, **kwargs):
    # Looking up a name such as huggingface.co asks a name server on another machine.
    if host is not None and not _is_local((host.decode() if isinstance(host, bytes) else str(host), 0)):
        _refuse(host)
    return _real_getaddrinfo(host, *args, **kwargs)


def block_network() -> None:
    """From now on, this process can only connect to this machine (and look up only its names)."""
    socket.socket.connect = _local_connect
    socket.socket.connect_ex = _local_connect_ex
    socket.getaddrinfo = _local_getaddrinfo


def network_blocked() -> bool:
    return socket.socket.connect is _local_connect
