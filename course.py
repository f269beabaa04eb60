#!/usr/bin/env python3
"""Set up, start and test the course with one command each.

    python3 course.py start     # set up if needed, then open JupyterLab at the first notebook
    python3 course.py test      # set up if needed, then lint + unit tests + strict nbval (quick mode)
    python3 course.py setup     # only create/update .venv (safe to run again)

Each takes --torch cpu|cuda|default (or LLM_COURSE_TORCH=...): which PyTorch build set-up installs.
default: the CPU build from PyTorch's CPU index on Linux without an NVIDIA GPU, otherwise the package
index's build (CUDA on Linux, the CPU build on Windows, CPU and the Apple GPU on macOS).

Uses only the standard library, so it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".course-installed"
KERNEL_NAME = "llm-course"
FIRST_NOTEBOOK = "notebooks/00_start_here.ipynb"
# The exact checks CI runs; the README shows the same lines.
LINT = ["-m", "ruff", "check", "course.py", "utils", "tests", "benchmarks", "notebooks"]
# Two workers, one per core; each notebook's cells stay together in one kernel (conftest.py's units).
PYTEST = ["-m", "pytest", "--nbval", "-n", "2", "tests", "notebooks"]
TEST_ENV = {
    "LLM_COURSE_QUICK": "1",  # every long step shrinks (utils.course.mode.quick_mode)
    "HF_HUB_OFFLINE": "1",  # nothing may reach the network (conftest.py also blocks it)
    "TRANSFORMERS_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",  # one torch thread per worker: two workers on two cores, none waiting
}
# Which PyTorch build set-up installs (see torch_source). The option beats the variable.
TORCH_OPTION = "--torch"
TORCH_ENV = "LLM_COURSE_TORCH"
TORCH_CHOICES = ("cpu", "cuda", "default")
# PyTorch's own index of CPU-only wheels: on Linux the package index's torch is the CUDA build, which
# pulls several GB of NVIDIA libraries that a laptop without an NVIDIA GPU can never use.
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PROBE_TIMEOUT_S = 10


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def say(msg: str) -> None:
    print(f"[course] {msg}", flush=True)


def run(cmd: list[str], env: dict | None = None) -> None:
    full_env = dict(os.environ, **(env or {}))
    result = subprocess.run(cmd, cwd=ROOT, env=full_env)
    if result.returncode != 0:
        raise SystemExit(result.returncode)


def install_fingerprint(source: str) -> str:
    """Changes whenever what setup installs changes, so a second run can skip pip.

    `source` is the torch build asked for (torch_source), not the one a fall-back installed: a set-up
    that fell back offline must not retry, and fail, on every `start`.
    """
    h = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    h.update(sys.version.encode())
    h.update(source.encode())
    return h.hexdigest()


def torch_source(choice: str, system: str, nvidia_gpu: bool) -> str:
    """Where set-up takes torch from: "cpu" (PyTorch's CPU index), "index" (the package index, as
    requirements.txt says) or "cuda" (the package index, replacing a CPU build already installed).

    `system` is platform.system(). Only on Linux do the two indexes differ: the package index's torch
    is the CPU build on Windows, and the CPU-and-Apple-GPU build on macOS.
    """
    _check_torch_choice(choice, TORCH_OPTION)
    if system != "Linux":
        _check_cuda_possible(choice, system)
        return "index"
    if choice == "default":
        return "index" if nvidia_gpu else "cpu"
    return choice


def pip_commands(py: Path | str, source: str, torch_pin: str, installed_torch: str | None,
                 cpu_index: str = CPU_INDEX) -> list[list[str]]:
    """The pip commands that install requirements.txt with torch from `source` (torch_source).

    `torch_pin` is requirements.txt's line (torch==X.Y.Z); `installed_torch` the version in .venv now.
    """
    pip = [str(py), "-m", "pip"]
    install = [*pip, "install", "--disable-pip-version-check", "-q", "--no-compile"]
    requirements = [*install, "-r", "requirements.txt"]
    if source == "cpu":
        # Only torch comes from PyTorch's index (--no-deps); its dependencies and everything else come
        # from the package index in the second command, which finds the pin already met. "+cpu" names
        # the CPU build, so a CUDA build already installed is replaced.
        return [[*install, "--no-deps", "--index-url", cpu_index, f"{torch_pin}+cpu"], requirements]
    if source == "cuda" and installed_torch is not None and installed_torch.endswith("+cpu"):
        # 2.13.0+cpu meets the pin torch==2.13.0, so without this pip would keep the CPU build.
        return [[*pip, "uninstall", "--disable-pip-version-check", "-q", "-y", "torch"], requirements]
    return [requirements]


def setup(torch_choice: str = "default") -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 - this file runs on the system Python, before set-up
        raise SystemExit(f"Python 3.10 or newer is needed (3.11 recommended); this is {sys.version.split()[0]}.")
    source = torch_source(torch_choice, platform.system(), nvidia_gpu_present())
    py = venv_python()
    if not py.exists():
        say(f"creating the virtual environment in {VENV.name}/")
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = install_fingerprint(source)
    if STAMP.exists() and STAMP.read_text().strip() == fingerprint:
        say("environment is up to date (delete .venv/ to rebuild it)")
        return
    source = fall_back_if_unreachable(source, torch_choice, CPU_INDEX)
    say(f"installing the pinned requirements, {describe(source)} (a few minutes the first time)")
    # pip compiles every installed module to bytecode one file after another (over half of the set-up
    # time); compileall does the same on every core afterwards. It must be done: where
    # PYTHONDONTWRITEBYTECODE is set, Python never caches what it compiles, and every import of torch
    # would compile it again (measured: the test suite ran twice as slowly).
    install_requirements(py, source, torch_choice)
    site_packages = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    # A few packages ship files that are not Python 3 (templates, test data): compileall reports them and
    # goes on, so its exit status is not an error here.
    subprocess.run([str(py), "-m", "compileall", "-q", "-j", "0", site_packages], cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    say("installing the course's utils package (editable)")
    run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps", "-e", "."])
    say(f"registering the Jupyter kernel '{KERNEL_NAME}'")
    run([str(py), "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL_NAME,
         "--display-name", "Python (llm-course)"])
    quiet_jupyterlab(py)
    STAMP.write_text(fingerprint + "\n")
    say("set-up done")


def install_requirements(py: Path, source: str, torch_choice: str) -> None:
    pin = torch_pin()
    commands = pip_commands(py, source, pin, installed_version(py, "torch"))
    if source == "cpu" and torch_choice == "default":
        if succeeds(commands[0]):
            commands = commands[1:]
        else:
            # E.g. a processor for which PyTorch publishes no CPU wheel of this version: set-up then does
            # what it did before it knew about the CPU index, rather than stop.
            say(f"pip could not install {pin}+cpu from PyTorch's CPU index (its message is above): "
                "torch comes from the package index instead")
            commands = pip_commands(py, "index", pin, installed_version(py, "torch"))
    for cmd in commands:
        run(cmd)


def succeeds(cmd: list[str]) -> bool:
    return subprocess.run(cmd, cwd=ROOT).returncode == 0


def describe(source: str) -> str:
    if source == "cpu":
        return "torch's CPU build from PyTorch's CPU index"
    if source == "cuda":
        return "torch's CUDA build from the package index"
    return "torch from the package index"


def fall_back_if_unreachable(source: str, choice: str, cpu_index: str) -> str:
    """`source`, or "index" with a one-line explanation when the CPU index cannot be reached.

    Asked for with --torch cpu, the CPU build is not swapped for a larger one: that is an error.
    """
    if source != "cpu":
        return source
    problem = index_problem(cpu_index)
    if problem is None:
        return source
    if choice == "cpu":
        raise SystemExit(f"[course] {TORCH_OPTION} cpu: PyTorch's CPU index {cpu_index} cannot be reached "
                         f"({problem}). Check the connection, or run set-up with {TORCH_OPTION} default "
                         "to take torch from the package index.")
    say(f"PyTorch's CPU index cannot be reached ({problem}): torch comes from the package index instead "
        "(on Linux usually the CUDA build, several GB; to retry later, delete .venv/ and set up again)")
    return "index"


def index_problem(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None if the package index at `url` answers for torch, else what went wrong, in a few words.

    Asked before pip, with a short time-out: pip would retry an unreachable index for minutes.
    """
    # A GET, as pip sends: the response is closed unread, so only its first bytes travel.
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/torch/", timeout=timeout):
            return None
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return str(getattr(error, "reason", error))


def nvidia_gpu_present(root: Path = Path("/"), which=shutil.which) -> bool:
    """Whether this Linux machine has a working NVIDIA driver, asked without torch (not yet installed).

    /proc/driver/nvidia/version exists once the NVIDIA kernel driver is loaded, natively and in a
    container given the GPU; /dev/nvidia0 is the device node it creates; WSL 2 has neither (the driver
    lives in Windows) but puts nvidia-smi on PATH. Running nvidia-smi or lspci would be slower and
    could hang or be missing; a GPU without its driver cannot run CUDA anyway. A wrong "yes" costs only
    the bigger download of before, a wrong "no" a GPU left idle, so any one sign is enough.
    """
    driver = root / "proc" / "driver" / "nvidia" / "version"
    return driver.exists() or (root / "dev" / "nvidia0").exists() or which("nvidia-smi") is not None


def torch_pin() -> str:
    """requirements.txt's torch line, e.g. torch==2.13.0: the version every build must have."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith("torch=="):
            return line.split("#")[0].strip()
    raise SystemExit("[course] requirements.txt has no torch==X.Y.Z line; restore it with "
                     "`git checkout -- requirements.txt`.")


def installed_version(py: Path, name: str) -> str | None:
    """The version of `name` installed in the environment of `py`, or None."""
    done = subprocess.run([str(py), "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
                          capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def quiet_jupyterlab(py: Path) -> None:
    """Turn off JupyterLab's news and update checks (they need the network and pop up in class),
    and nbgrader's panels, which learners do not need (lessons/README.md says how teachers turn
    them back on)."""
    # The files `jupyter labextension disable --level=sys_prefix @jupyter/nbgrader` and `jupyter server
    # extension disable --sys-prefix nbgrader.server_extensions.<part>` would write, written directly:
    # the five commands took about half a minute of set-up (each starts Jupyter and imports nbgrader).
    etc = VENV / "etc" / "jupyter"
    page_config = etc / "labconfig" / "page_config.json"
    page_config.parent.mkdir(parents=True, exist_ok=True)
    config = json.loads(page_config.read_text()) if page_config.exists() else {}
    for key in ("disabledExtensions", "lockedExtensions"):
        config.setdefault(key, {})["@jupyter/nbgrader"] = True
    page_config.write_text(json.dumps(config, indent=2) + "\n")
    for part in ("formgrader", "validate_assignment", "assignment_list", "course_list"):
        name = f"nbgrader.server_extensions.{part}"
        # Read after nbgrader.json (which enables all four): the config files of a folder load in name order.
        path = etc / "jupyter_server_config.d" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"ServerApp": {"jpserver_extensions": {name: False}}}, indent=2) + "\n")
    settings = VENV / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    overrides = {
        "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/extensionmanager-extension:plugin": {"enabled": False},
    }
    (settings / "overrides.json").write_text(json.dumps(overrides, indent=2) + "\n")


def trust_notebooks(py: Path) -> None:
    """Mark the course's notebooks as trusted by this user (`jupyter trust`).

    JupyterLab strips the HTML outputs of a notebook it has not seen run (scripts, and the SVG of
    the offline attention views), so without this a lesson opened before running shows empty boxes
    where its stored pictures are. These notebooks come with the course the user installed; a
    notebook from anywhere else stays untrusted until it is run.
    """
    notebooks = [str(p) for p in sorted((ROOT / "notebooks").glob("**/*.ipynb")) if ".ipynb_checkpoints" not in p.parts]
    if notebooks:
        subprocess.run([str(py), "-m", "jupyter", "trust", *notebooks], cwd=ROOT, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start(extra: list[str], torch_choice: str = "default") -> None:
    setup(torch_choice)
    trust_notebooks(venv_python())
    say(f"starting JupyterLab at {FIRST_NOTEBOOK} (stop it with Ctrl+C)")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        extra = [*extra, "--allow-root"]  # containers often run as root; JupyterLab refuses without this
    # The course folder is the root (so lessons/ and data/ are visible and the notebooks' links to
    # ../lessons work); the browser opens on the first notebook.
    run([str(venv_python()), "-m", "jupyter", "lab", f"--ServerApp.root_dir={ROOT}",
         f"--LabApp.default_url=/lab/tree/{FIRST_NOTEBOOK}", *extra])


def test(extra: list[str], torch_choice: str = "default") -> None:
    setup(torch_choice)
    py = str(venv_python())
    say("lint: " + " ".join(["python", *LINT]))
    run([py, *LINT])
    say("tests: " + " ".join([f"{k}={v}" for k, v in TEST_ENV.items()] + ["python", *PYTEST, *extra]))
    run([py, *PYTEST, *extra], env=TEST_ENV)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"setup", "start", "test"}:
        print(__doc__)
        raise SystemExit(0 if argv and argv[0] in {"-h", "--help"} else 2)
    command = argv[0]
    choice, extra = take_torch_option(argv[1:], os.environ)
    if command == "setup":
        setup(choice)
    elif command == "start":
        start(extra, choice)
    else:
        test(extra, choice)


def take_torch_option(args: list[str], environ) -> tuple[str, list[str]]:
    """The torch choice (--torch X or --torch=X, else $LLM_COURSE_TORCH, else default) and the other
    arguments, which go on to JupyterLab or pytest."""
    choice, rest = environ.get(TORCH_ENV) or "default", []
    _check_torch_choice(choice, TORCH_ENV)
    args = iter(args)
    for arg in args:
        if arg == TORCH_OPTION:
            choice = next(args, "")
        elif arg.startswith(TORCH_OPTION + "="):
            choice = arg.split("=", 1)[1]
        else:
            rest.append(arg)
            continue
        _check_torch_choice(choice, TORCH_OPTION)
    return choice, rest


def _check_torch_choice(choice: str, where: str) -> None:
    if choice not in TORCH_CHOICES:
        raise SystemExit(f"[course] {where} must be one of {', '.join(TORCH_CHOICES)}, not {choice!r} "
                         f"(e.g. {TORCH_OPTION} cpu for the CPU build of torch).")


def _check_cuda_possible(choice: str, system: str) -> None:
    if choice != "cuda":
        return
    if system == "Darwin":
        raise SystemExit(f"[course] {TORCH_OPTION} cuda: there is no CUDA build of torch for macOS; the "
                         f"standard one uses an Apple-silicon GPU through MPS: use {TORCH_OPTION} default.")
    raise SystemExit(f"[course] {TORCH_OPTION} cuda: on {system}, torch's CUDA build comes from PyTorch's own "
                     "index, not from the package index: see the README's \"Using a GPU\".")


if __name__ == "__main__":
    main(sys.argv[1:])
