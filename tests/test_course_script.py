"""The README states the test command; course.py runs it. Keep the two the same."""

import importlib.util
import json
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
    command = f"{env} .venv/bin/python " + " ".join(course.PYTEST)
    for name in ("README.md", "CONTRIBUTING.md", "lessons/README.md"):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert command in text, f"{name} does not show the test command course.py runs: {command}"
        stale = [line for line in text.splitlines() if "-m pytest --nbval" in line and command not in line]
        assert not stale, f"{name} shows another test command: {stale}"


def test_torch_is_pinned_and_conda_uses_the_same_pins():
    requirements = (ROOT / "requirements.txt").read_text().splitlines()
    assert "torch==2.13.0" in requirements
    assert load_course().torch_pin() == "torch==2.13.0"
    pinned = [r for r in requirements if r and not r.startswith("#")]
    assert all("==" in r for r in pinned), [r for r in pinned if "==" not in r]
    assert "-r requirements.txt" in (ROOT / "environment.yml").read_text()


def test_readme_says_how_to_choose_the_torch_build():
    course = load_course()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for choice in course.TORCH_CHOICES:
        assert f"python3 course.py setup {course.TORCH_OPTION} {choice}" in readme, choice
    assert f"{course.TORCH_ENV}=cpu python3 course.py start" in readme
    assert course.CPU_INDEX in readme


def test_the_conda_cpu_environment_is_environment_yml_with_torch_from_the_cpu_index():
    course = load_course()

    def lines(name):
        return [line for line in (ROOT / name).read_text().splitlines() if line and not line.startswith("#")]

    added = [f"      - --extra-index-url {course.CPU_INDEX}", f"      - {course.torch_pin()}+cpu"]
    cpu = lines("environment-cpu.yml")
    assert all(line in cpu for line in added), cpu
    assert [line for line in cpu if line not in added] == lines("environment.yml")


def test_install_fingerprint_changes_with_the_requirements(tmp_path, monkeypatch):
    course = load_course()
    before = course.install_fingerprint("cpu")
    for name in ("requirements.txt", "pyproject.toml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    monkeypatch.setattr(course, "ROOT", tmp_path)
    assert course.install_fingerprint("cpu") == before
    (tmp_path / "requirements.txt").write_text("torch==2.13.0\nnumpy==2.4.6\n")
    assert course.install_fingerprint("cpu") != before


def test_start_trusts_the_course_notebooks_so_stored_views_show(tmp_path, monkeypatch):
    """JupyterLab sanitizes the stored HTML of untrusted notebooks; `start` signs the course's own."""
    import nbformat
    from nbformat.sign import NotebookNotary

    course = load_course()
    (tmp_path / "notebooks" / "solutions").mkdir(parents=True)
    lesson, solution = tmp_path / "notebooks" / "01_x.ipynb", tmp_path / "notebooks" / "solutions" / "01_x.ipynb"
    for path in (lesson, solution):
        cell = nbformat.v4.new_code_cell("1", execution_count=1, outputs=[nbformat.v4.new_output(
            "display_data", data={"text/html": "<svg><path d='M0 0L1 1'/></svg>"})])
        nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    data_dir = tmp_path / "jupyter-data"  # not the user's trust database
    data_dir.mkdir()
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data_dir))
    monkeypatch.setattr(course, "ROOT", tmp_path)
    notary = NotebookNotary(data_dir=str(data_dir))
    assert not notary.check_signature(nbformat.read(lesson, as_version=4))
    course.trust_notebooks(course.venv_python())
    for path in (lesson, solution):
        assert NotebookNotary(data_dir=str(data_dir)).check_signature(nbformat.read(path, as_version=4)), path


def test_setup_switches_nbgrader_panels_off_for_learners():
    """Set-up writes the files that `jupyter ... extension disable` would: Jupyter must read them so."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "jupyter", "server", "extension", "list"],
                          capture_output=True, text=True, timeout=120)
    listing = done.stdout + done.stderr
    for part in ("formgrader", "validate_assignment", "assignment_list", "course_list"):
        line = next(line for line in listing.splitlines() if f"nbgrader.server_extensions.{part}" in line)
        assert "disabled" in line, line
    labconfig = Path(sys.prefix) / "etc" / "jupyter" / "labconfig" / "page_config.json"
    assert json.loads(labconfig.read_text())["disabledExtensions"]["@jupyter/nbgrader"] is True


def test_jsonschema_compiles_no_grammars_at_import():
    """requirements.txt pins jsonschema below 4.24 (see its comment): from 4.24 on, Jupyter's extra pulls in
    rfc3987-syntax, which every Jupyter and nbgrader command then spends seconds importing."""
    import subprocess
    import sys

    code = "import sys, jsonschema; print('rfc3987_syntax' in sys.modules, 'lark' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"], "jsonschema imported rfc3987_syntax: was jsonschema upgraded?"
