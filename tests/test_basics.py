"""Device choice, seeding, quick mode and the one-line set-up."""

import random
from pathlib import Path

import pytest
import torch

import utils
from utils.course import device as device_module

ROOT_DIR = Path(__file__).resolve().parents[1]


def test_auto_device_is_the_best_available():
    assert utils.get_device().type == device_module.available_devices()[0]
    assert utils.get_device("auto").type == device_module.available_devices()[0]


def test_cpu_override_by_argument_and_environment(monkeypatch):
    assert utils.get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv(device_module.DEVICE_ENV, "cpu")
    assert utils.get_device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_cuda_is_a_clear_error(monkeypatch):
    with pytest.raises(RuntimeError, match=r"device='cuda'.*no CUDA GPU.*device='cpu'"):
        utils.get_device("cuda")
    monkeypatch.setenv(device_module.DEVICE_ENV, "cuda")
    with pytest.raises(RuntimeError, match=r"\$LLM_COURSE_DEVICE=cuda"):
        utils.get_device()


def test_unknown_device_name():
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        utils.get_device("tpu")


def test_seed_makes_python_numpy_and_torch_repeat():
    import numpy as np

    utils.set_seed(3)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    utils.set_seed(3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


@pytest.mark.parametrize("value, quick", [("1", True), ("true", True), ("0", False), ("", False)])
def test_quick_mode(monkeypatch, value, quick):
    monkeypatch.setenv("LLM_COURSE_QUICK", value)
    assert utils.quick_mode() is quick
    assert utils.quick_or_full(1, 2) == (1 if quick else 2)


def test_setup_prints_one_line(capsys, monkeypatch):
    monkeypatch.setenv("LLM_COURSE_QUICK", "1")
    chosen = utils.setup(seed=5, device="cpu")
    lines = capsys.readouterr().out.strip().splitlines()
    assert chosen == torch.device("cpu")
    assert len(lines) == 1
    assert "torch " in lines[0] and "device cpu" in lines[0] and "quick mode" in lines[0]


def test_the_timeline_is_in_order_and_names_only_real_lessons():
    import matplotlib

    matplotlib.use("Agg")
    from utils.views import diagrams

    lessons = {p.name[:2] for p in (ROOT_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    years = [year for year, *_ in diagrams.TIMELINE]
    assert years == sorted(years) and len(diagrams.TIMELINE) >= 12
    assert all(lesson == "" or lesson in lessons for *_, lesson in diagrams.TIMELINE)
    # every built lesson after 00 appears at least once, so the timeline grows with the course
    assert {lesson for *_, lesson in diagrams.TIMELINE} >= lessons - {"00"}
    texts = [t.get_text() for t in diagrams.draw_timeline().axes[0].texts]
    for year, step, *_ in diagrams.TIMELINE:
        assert str(year) in texts and any(t.startswith(step) for t in texts)
    assert sum(t == "not built here" for t in texts) == sum(not lesson for *_, lesson in diagrams.TIMELINE)
    # the eras cover every year without overlapping
    assert all(any(a <= y <= b for a, b, _ in diagrams.ERAS) for y in years)


def test_the_course_map_draws_every_lesson_and_only_real_links():
    import matplotlib

    matplotlib.use("Agg")
    from utils.views import diagrams

    lessons = sorted(p.name[:2] for p in (ROOT_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb") if p.name[:2] != "00")
    assert [number for number, *_ in diagrams.COURSE_MAP] == lessons
    assert all(a < b and {a, b} <= set(lessons) for a, b in diagrams.COURSE_LINKS)  # an arrow points forward
    fig = diagrams.draw_course_map()
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert all(any(t.startswith(f"{n} · ") for t in texts) for n in lessons)
