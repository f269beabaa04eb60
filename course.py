#!/usr/bin/env python3
"""Set up, start and test the course with one command each.

    python3 course.py start     # set up if needed, then open JupyterLab at the first notebook
    python3 course.py test      # set up if needed, then lint + unit tests + strict nbval (quick mode)
    python3 course.py setup     # only create/update .venv (safe to run again)

Uses only the standard library, so it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
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


def install_fingerprint() -> str:
    """Changes whenever what setup installs changes, so a second run can skip pip."""
    h = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def setup() -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 - this file runs on the system Python, before set-up
        raise SystemExit(f"Python 3.10 or newer is needed (3.11 recommended); this is {sys.version.split()[0]}.")
    py = venv_python()
    if not py.exists():
        say(f"creating the virtual environment in {VENV.name}/")
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = install_fingerprint()
    if STAMP.exists() and STAMP.read_text().strip() == fingerprint:
        say("environment is up to date (delete .venv/ to rebuild it)")
        return
    say("installing the pinned requirements (a few minutes the first time)")
    # pip compiles every installed module to bytecode one file after another (over half of the set-up
    # time); compileall does the same on every core afterwards. It must be done: where
    # PYTHONDONTWRITEBYTECODE is set, Python never caches what it compiles, and every import of torch
    # would compile it again (measured: the test suite ran twice as slowly).
    run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-compile", "-r",
         "requirements.txt"])
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


def start(extra: list[str]) -> None:
    setup()
    trust_notebooks(venv_python())
    say(f"starting JupyterLab at {FIRST_NOTEBOOK} (stop it with Ctrl+C)")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        extra = [*extra, "--allow-root"]  # containers often run as root; JupyterLab refuses without this
    # The course folder is the root (so lessons/ and data/ are visible and the notebooks' links to
    # ../lessons work); the browser opens on the first notebook.
    run([str(venv_python()), "-m", "jupyter", "lab", f"--ServerApp.root_dir={ROOT}",
         f"--LabApp.default_url=/lab/tree/{FIRST_NOTEBOOK}", *extra])


def test(extra: list[str]) -> None:
    setup()
    py = str(venv_python())
    say("lint: " + " ".join(["python", *LINT]))
    run([py, *LINT])
    say("tests: " + " ".join([f"{k}={v}" for k, v in TEST_ENV.items()] + ["python", *PYTEST, *extra]))
    run([py, *PYTEST, *extra], env=TEST_ENV)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"setup", "start", "test"}:
        print(__doc__)
        raise SystemExit(0 if argv and argv[0] in {"-h", "--help"} else 2)
    command, extra = argv[0], argv[1:]
    if command == "setup":
        setup()
    elif command == "start":
        start(extra)
    else:
        test(extra)


if __name__ == "__main__":
    main(sys.argv[1:])
