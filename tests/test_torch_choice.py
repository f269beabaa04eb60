"""Which torch build `course.py setup` installs, and from where (issue 20).

Nothing here installs torch: the pip commands are compared with hand-written ones, and the two
checks that talk to an index talk to a server on 127.0.0.1.
"""

import importlib.util
import json
import subprocess
import sys
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
course = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(course)
PIN = "torch==2.13.0"
UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: nothing listens, the connection is refused at once
INSTALL = ["py", "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-compile"]
REQUIREMENTS = [*INSTALL, "-r", "requirements.txt"]  # what set-up ran before issue 20, everywhere
CPU_TORCH = [*INSTALL, "--no-deps", "--index-url", "https://download.pytorch.org/whl/cpu", "torch==2.13.0+cpu"]
UNINSTALL_TORCH = ["py", "-m", "pip", "uninstall", "--disable-pip-version-check", "-q", "-y", "torch"]


@pytest.mark.parametrize(("choice", "system", "gpu", "installed", "commands"), [
    # automatic: only Linux without an NVIDIA GPU changes
    ("default", "Linux", False, None, [CPU_TORCH, REQUIREMENTS]),
    ("default", "Linux", True, None, [REQUIREMENTS]),
    ("default", "Darwin", False, None, [REQUIREMENTS]),
    ("default", "Windows", False, None, [REQUIREMENTS]),
    ("default", "Windows", True, None, [REQUIREMENTS]),
    # forced CPU: PyTorch's CPU index on Linux, even with a GPU; elsewhere the package index's build is it
    ("cpu", "Linux", True, None, [CPU_TORCH, REQUIREMENTS]),
    ("cpu", "Linux", True, "2.13.0", [CPU_TORCH, REQUIREMENTS]),  # "+cpu" makes pip replace a CUDA build
    ("cpu", "Darwin", False, None, [REQUIREMENTS]),
    ("cpu", "Windows", True, None, [REQUIREMENTS]),
    # forced CUDA on Linux: the package index's build, and a CPU build already there goes first
    ("cuda", "Linux", False, None, [REQUIREMENTS]),
    ("cuda", "Linux", False, "2.13.0", [REQUIREMENTS]),
    ("cuda", "Linux", False, "2.13.0+cpu", [UNINSTALL_TORCH, REQUIREMENTS]),
    # a GPU set up automatically keeps what is installed, as before
    ("default", "Linux", True, "2.13.0+cpu", [REQUIREMENTS]),
])
def test_the_pip_commands_of_each_platform(choice, system, gpu, installed, commands):
    source = course.torch_source(choice, system, gpu)
    assert course.pip_commands("py", source, PIN, installed) == commands


@pytest.mark.parametrize(("system", "says"), [("Darwin", "MPS"), ("Windows", "Using a GPU")])
def test_cuda_where_the_package_index_has_no_cuda_build_is_an_error_that_says_what_to_do(system, says):
    with pytest.raises(SystemExit, match=says):
        course.torch_source("cuda", system, True)


@pytest.mark.parametrize("args", [["--torch", "gpu"], ["--torch=CPU"], ["--torch"]])
def test_a_bad_torch_option_is_a_clear_error(args):
    with pytest.raises(SystemExit) as failure:
        course.take_torch_option(args, {})
    message = str(failure.value)
    assert "--torch must be one of cpu, cuda, default" in message and "--torch cpu" in message, message


def test_a_bad_torch_variable_is_a_clear_error():
    with pytest.raises(SystemExit, match="LLM_COURSE_TORCH must be one of cpu, cuda, default, not 'gpu'"):
        course.take_torch_option([], {"LLM_COURSE_TORCH": "gpu"})


@pytest.mark.parametrize(("args", "environ", "expected"), [
    ([], {}, ("default", [])),
    (["--no-browser", "--port", "8890"], {}, ("default", ["--no-browser", "--port", "8890"])),
    (["--torch", "cpu", "-x", "-k", "torch"], {}, ("cpu", ["-x", "-k", "torch"])),
    (["-x", "--torch=cuda"], {}, ("cuda", ["-x"])),
    ([], {"LLM_COURSE_TORCH": "cpu"}, ("cpu", [])),
    (["--torch", "default"], {"LLM_COURSE_TORCH": "cpu"}, ("default", [])),  # the option wins
])
def test_the_torch_option_is_taken_out_and_the_rest_goes_on(args, environ, expected):
    assert course.take_torch_option(args, environ) == expected


def test_every_command_passes_the_choice_to_setup(monkeypatch):
    calls = []
    monkeypatch.setattr(course, "setup", lambda choice: calls.append(("setup", choice)))
    monkeypatch.setattr(course, "start", lambda extra, choice: calls.append(("start", extra, choice)))
    monkeypatch.setattr(course, "test", lambda extra, choice: calls.append(("test", extra, choice)))
    monkeypatch.setenv("LLM_COURSE_TORCH", "cuda")
    course.main(["setup", "--torch", "cpu"])
    course.main(["start", "--no-browser"])
    course.main(["test", "--torch=default", "-x"])
    assert calls == [("setup", "cpu"), ("start", ["--no-browser"], "cuda"), ("test", ["-x"], "default")]


def test_an_nvidia_gpu_is_seen_by_its_driver_or_by_nvidia_smi(tmp_path):
    nothing = partial(course.nvidia_gpu_present, tmp_path, lambda name: None)
    assert not nothing()
    assert course.nvidia_gpu_present(tmp_path, lambda name: f"/usr/lib/wsl/lib/{name}")  # WSL 2
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "nvidia0").touch()
    assert nothing()
    (tmp_path / "dev" / "nvidia0").unlink()
    driver = tmp_path / "proc" / "driver" / "nvidia" / "version"
    driver.parent.mkdir(parents=True)
    driver.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14\n")
    assert nothing()


@pytest.mark.parametrize(("choice", "cpu_wheel_found", "ran", "says"), [
    ("default", True, ["try cpu torch", "requirements"], ""),
    ("default", False, ["try cpu torch", "requirements"], "could not install torch==2.13.0+cpu"),
    ("cpu", None, ["cpu torch", "requirements"], ""),  # asked for by name: a failure stops set-up
])
def test_pip_failing_on_the_cpu_index_falls_back_only_when_the_choice_was_automatic(
        monkeypatch, capsys, choice, cpu_wheel_found, ran, says):
    names = {tuple(CPU_TORCH): "cpu torch", tuple(REQUIREMENTS): "requirements"}
    calls = []

    def succeeds(cmd):
        calls.append("try " + names[tuple(cmd)])
        return cpu_wheel_found

    monkeypatch.setattr(course, "succeeds", succeeds)
    monkeypatch.setattr(course, "run", lambda cmd: calls.append(names[tuple(cmd)]))
    monkeypatch.setattr(course, "installed_version", lambda py, name: None)
    course.install_requirements("py", "cpu", choice)
    assert calls == ran
    out = capsys.readouterr().out
    assert (says in out and len(out.splitlines()) == 1) if says else out == "", out


def test_the_torch_choice_is_part_of_the_install_fingerprint():
    assert course.install_fingerprint("cpu") != course.install_fingerprint("index")


def test_an_unreachable_cpu_index_falls_back_to_the_package_index_in_one_line(capsys):
    assert course.fall_back_if_unreachable("cpu", "default", UNREACHABLE) == "index"
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("[course] PyTorch's CPU index cannot be reached (") and "package index" in lines[0]


def test_an_unreachable_cpu_index_asked_for_by_name_is_an_error_not_a_bigger_download(capsys):
    with pytest.raises(SystemExit) as failure:
        course.fall_back_if_unreachable("cpu", "cpu", UNREACHABLE)
    assert UNREACHABLE in str(failure.value) and "--torch default" in str(failure.value)
    assert capsys.readouterr().out == ""


def test_only_the_cpu_source_probes_the_cpu_index(capsys):
    for source in ("index", "cuda"):
        assert course.fall_back_if_unreachable(source, "default", UNREACHABLE) == source
    assert capsys.readouterr().out == ""


@pytest.fixture
def local_index(tmp_path):
    """A PEP 503 index on 127.0.0.1 laid out as PyTorch's CPU index: /torch/ lists torch-2.13.0+cpu.

    The fake wheel needs a package that exists nowhere, so only a command with --no-deps installs it.
    """
    wheel = "torch-2.13.0+cpu-py3-none-any.whl"
    (tmp_path / "torch").mkdir()
    with zipfile.ZipFile(tmp_path / "torch" / wheel, "w") as archive:
        info = "torch-2.13.0+cpu.dist-info"
        archive.writestr("torch/__init__.py", "")
        archive.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0+cpu\n"
                                             "Requires-Dist: no-such-package-for-this-test\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                          "Tag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    (tmp_path / "torch" / "index.html").write_text(f'<a href="{wheel.replace("+", "%2B")}">{wheel}</a>\n')
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_reachable_cpu_index_is_used_silently_and_one_without_torch_is_not(local_index, capsys):
    assert course.index_problem(local_index) is None
    assert course.fall_back_if_unreachable("cpu", "default", local_index) == "cpu"
    assert capsys.readouterr().out == ""
    assert course.index_problem(local_index + "elsewhere/") == "HTTP 404"


def test_pip_takes_the_cpu_build_alone_from_the_cpu_index(local_index):
    """pip itself (a dry run, ignoring this machine's pip settings) resolves set-up's first command."""
    command = course.pip_commands(sys.executable, "cpu", PIN, None, cpu_index=local_index)[0]
    done = subprocess.run([*command, "--isolated", "--dry-run", "--ignore-installed", "--report", "-"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    installs = json.loads(done.stdout)["install"]
    assert [item["metadata"]["version"] for item in installs] == ["2.13.0+cpu"]
    assert installs[0]["download_info"]["url"].startswith(local_index)
