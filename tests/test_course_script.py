"""The README states the test command; course.py runs it. Keep the two the same."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_course():
    spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_shows_the_commands_that_course_py_runs():
    course = load_course()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python3 course.py start" in readme and "python3 course.py test" in readme
    assert ".venv/bin/python " + " ".join(course.LINT) in readme
    env = " ".join(f"{k}={v}" for k, v in course.TEST_ENV.items())
    assert f"{env} .venv/bin/python " + " ".join(course.PYTEST) in readme


def test_torch_is_pinned_to_the_cpu_wheel_and_conda_uses_the_same_pins():
    requirements = (ROOT / "requirements.txt").read_text().splitlines()
    assert "torch==2.13.0" in requirements
    pinned = [r for r in requirements if r and not r.startswith("#")]
    assert all("==" in r for r in pinned), [r for r in pinned if "==" not in r]
    assert "-r requirements.txt" in (ROOT / "environment.yml").read_text()


def test_install_fingerprint_changes_with_the_requirements(tmp_path, monkeypatch):
    course = load_course()
    before = course.install_fingerprint()
    for name in ("requirements.txt", "pyproject.toml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    monkeypatch.setattr(course, "ROOT", tmp_path)
    assert course.install_fingerprint() == before
    (tmp_path / "requirements.txt").write_text("torch==2.13.0\nnumpy==2.4.6\n")
    assert course.install_fingerprint() != before
