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


def test_parallel_units_keep_notebooks_whole():
    """conftest.scope_of: a notebook's cells stay together; 06, 07 and 09 share one unit."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("root_conftest", Path(__file__).parents[1] / "conftest.py")
    root = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root)
    scope = root.scope_of
    assert scope("notebooks/03_attention.ipynb::Cell 0") == scope("notebooks/03_attention.ipynb::Cell 9")
    assert scope("notebooks/06_training_gpt.ipynb::Cell 2") == scope("notebooks/09_reading_attention.ipynb::Cell 5")
    solution, lesson = "notebooks/solutions/06_training_gpt.ipynb::Cell 2", "notebooks/06_training_gpt.ipynb::Cell 2"
    assert scope(solution) != scope(lesson)
    assert scope("tests/test_browser.py::test_a[x]") == scope("tests/test_browser.py::test_b")
    assert scope("tests/test_nbgrader.py::test_a[x]") == scope("tests/test_nbgrader.py::test_b")
    assert scope("tests/test_gpt.py::test_a") != scope("tests/test_gpt.py::test_b")
