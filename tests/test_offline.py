"""The test suite runs offline: nothing it starts can connect to another machine.

The guard (utils/course/offline.py) is switched on by the root conftest.py, in this process and, via
tests/offline/sitecustomize.py, in every Python process started from it. Each test checks that the
guard is in place BEFORE it tries an outside address, so a missing guard fails the test without any
packet leaving the machine. 192.0.2.1 is TEST-NET-1, an address reserved for documentation.
"""

import socket
import subprocess
import sys

import pytest

from utils.course.offline import NetworkBlocked, network_blocked

OUTSIDE = ("192.0.2.1", 9)


def test_this_process_cannot_reach_out():
    assert network_blocked(), "the network guard is not on: is the root conftest.py in use?"
    with pytest.raises(NetworkBlocked, match="runs offline"):
        socket.create_connection(OUTSIDE, timeout=1)
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("huggingface.co", 443)  # even the name lookup would leave the machine


def test_loopback_still_works():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            conn, _ = server.accept()
            conn.close()


CHILD = f"""
import socket, sys
if socket.socket.connect.__name__ != "_local_connect":
    sys.exit(3)  # no guard: stop before trying anything
try:
    socket.create_connection({OUTSIDE!r}, timeout=1)
except OSError as e:
    sys.exit(0 if type(e).__name__ == "NetworkBlocked" else 4)
sys.exit(5)
"""


def test_a_child_python_process_cannot_reach_out():
    """Notebook kernels are such child processes."""
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, {3: "the child process has no network guard", 4: "another error than the guard's",
                                  5: "the child connected to another machine"}.get(done.returncode, done.stderr)
