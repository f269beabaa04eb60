"""The course in a real browser: JupyterLab on 127.0.0.1, driven by headless Chromium, with every
request to anywhere else blocked (a classroom without internet).

For the notebooks that show attention, the test checks in the page itself that the offline views
drew their SVG lines, that choosing another layer redraws them, and that hovering a token focuses
its lines; for widgets, that they render and respond. Screenshots go to test-artifacts/ for a
person to look at. Needs Debian's `chromium` (.ci/run installs it) and the Python `playwright`
package; never `playwright install`, which downloads a browser.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail("CI needs Debian's chromium for the browser tests (.ci/run installs it)", pytrace=False)
    pytest.skip("chromium is not installed (apt-get install chromium); browser tests skipped", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a copy of notebooks/ (running them must not touch the repository's files)."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # Keep every cell in the page (JupyterLab otherwise drops cells scrolled out of view).
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = free_port(), "course-browser-test"
    # A data dir of its own, so the trust database the test writes is not the user's.
    env = dict(os.environ, LLM_COURSE_QUICK="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               JUPYTER_DATA_DIR=str(root / "data"))
    # As `course.py start` does: the course's own notebooks are trusted, so their stored outputs
    # (the views' SVG and script) show when a notebook is opened before anything is run.
    subprocess.run([sys.executable, "-m", "jupyter", "trust", *map(str, sorted(root.glob("notebooks/**/*.ipynb")))],
                   env=env, check=True, capture_output=True)
    log = open(root / "jupyter.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         f"--LabApp.user_settings_dir={root / 'settings'}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
         "--allow-root"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail(f"JupyterLab did not start; see {root / 'jupyter.log'}")
    yield {"url": url, "token": token, "root": root, "env": env}
    server.terminate()
    server.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_notebook(browser, lab, path: str):
    """A page with the notebook open and its kernel ready; requests off 127.0.0.1 are blocked."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    blocked = []

    def only_local(route):
        if route.request.url.startswith(lab["url"]) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.set_default_timeout(600_000)
    # A fresh workspace per page, so JupyterLab does not restore the tabs of an earlier test.
    workspace = Path(path).stem.replace("_", "-")
    page.goto(f"{lab['url']}/lab/workspaces/{workspace}/tree/{path}?reset&token={lab['token']}")
    page.wait_for_function("""() => {
        const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        return w && w.sessionContext && w.content && w.content.model && w.context && w.context.isReady; }""")
    page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.ready; }")
    page.blocked = blocked
    return page


def run_all(page) -> list[str]:
    """Run every cell in the browser; return a description of each error output."""
    page.evaluate("async () => { await window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    # Done when every code cell has an execution count (or an error stopped the run) and the kernel is idle.
    page.wait_for_function("""() => {
        const w = window.jupyterapp.shell.currentWidget, cells = w.content.model.cells;
        if (w.sessionContext.session.kernel.status !== 'idle') return false;
        for (let i = 0; i < cells.length; i++) {
            const c = cells.get(i);
            if (c.type !== 'code') continue;
            for (let j = 0; j < c.outputs.length; j++) { if (c.outputs.get(j).type === 'error') return true; }
            if (c.executionCount === null && c.sharedModel.getSource().trim()) return false;
        }
        return true; }""", polling=500)
    page.wait_for_timeout(1000)  # let the last outputs render
    return page.evaluate("""() => {
        const cells = window.jupyterapp.shell.currentWidget.content.model.cells, errors = [];
        for (let i = 0; i < cells.length; i++) {
            const c = cells.get(i);
            if (c.type !== 'code') continue;
            for (let j = 0; j < c.outputs.length; j++) {
                const o = c.outputs.get(j);
                if (o.type === 'error') errors.push(`cell ${i}: ${JSON.stringify(o.toJSON()).slice(0, 300)}`);
            }
        }
        return errors; }""")


def check_head_views(page, name: str) -> int:
    """Every offline head view has lines; another layer redraws them; hovering a token focuses them."""
    views = page.locator(".llm-attention-view.head-view")
    count = views.count()
    assert count > 0, f"{name}: no offline head view in the page"
    for i in range(count):
        view = views.nth(i)
        view.scroll_into_view_if_needed()
        lines = view.locator(".av-lines path")
        assert lines.count() > 0, f"{name}: head view {i} drew no lines"
        before = lines.evaluate_all("ps => ps.map(p => p.getAttribute('d') + p.getAttribute('stroke-width'))")
        layer = view.locator("select.av-layer")
        options = layer.locator("option").all_inner_texts()
        if len(options) > 1:
            other = options[-1] if layer.input_value() != options[-1] else options[0]
            layer.select_option(other)
            page.wait_for_timeout(200)
            after = lines.evaluate_all("ps => ps.map(p => p.getAttribute('d') + p.getAttribute('stroke-width'))")
            assert after and after != before, f"{name}: choosing layer {other} did not change head view {i}"
        # Hover over the last query token: a query's weights sum to 1, so it always has lines (a key
        # token, such as [SEP] in a previous-token head, may receive none).
        view.locator('.av-tokens text[data-side="q"]').last.hover()
        hidden = lines.evaluate_all("ps => ps.filter(p => p.style.display === 'none').length")
        visible = lines.count() - hidden
        assert hidden > 0 and visible > 0, f"{name}: hovering a token did not focus its lines in view {i}"
        page.mouse.move(1, 1)
        view.screenshot(path=str(ARTIFACTS / f"{name}_head_view_{i}.png"))
    return count


def check_model_views(page, name: str) -> int:
    views = page.locator(".llm-attention-view.model-view")
    for i in range(views.count()):
        paths = views.nth(i).locator("path").count()
        assert paths > 0, f"{name}: model view {i} drew no lines"
        views.nth(i).scroll_into_view_if_needed()
        views.nth(i).screenshot(path=str(ARTIFACTS / f"{name}_model_view_{i}.png"))
    return views.count()


def check_widgets(page, name: str) -> int:
    """Widgets rendered as live controls (not as their text repr), and a dropdown changes the output."""
    widgets = page.locator(".jupyter-widgets.widget-dropdown select")
    count = widgets.count()
    for i in range(count):
        box = page.locator(".jupyter-widgets.widget-vbox").filter(has=widgets.nth(i)).last
        box.scroll_into_view_if_needed()
        before = box.inner_html()
        options = widgets.nth(i).locator("option").all_inner_texts()
        if len(options) < 2:
            continue
        current = widgets.nth(i).evaluate("s => s.selectedIndex")
        widgets.nth(i).select_option(index=1 if current == 0 else 0)
        for _ in range(40):  # the kernel redraws the picture; give it up to 20 s on a busy machine
            page.wait_for_timeout(500)
            if box.inner_html() != before:
                break
        assert box.inner_html() != before, f"{name}: changing dropdown {i} did not change the widget's output"
        box.screenshot(path=str(ARTIFACTS / f"{name}_widget_{i}.png"))
    return count


def check_chat_box(page, name: str) -> int:
    """A chat box answers what is typed, says when earlier turns leave the context, and explains an empty
    message instead of sending it."""
    boxes = page.locator(".chat-box")
    if not boxes.count():
        return 0
    box = boxes.first
    box.scroll_into_view_if_needed()
    field, send = box.locator("input[type=text]"), box.locator("button", has_text="Send")

    answered = "() => document.querySelectorAll('.chat-box .chat-assistant').length >= {}"
    kernel_busy = "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status !== 'idle'"

    def say(text: str, replies: int) -> None:
        field.fill(text)
        for _ in range(3):
            send.click()
            try:
                page.wait_for_function(answered.format(replies), polling=200, timeout=20_000)
                return
            except playwright_api.TimeoutError:
                # On a loaded machine a click can reach the page before the widget's link to the kernel is up,
                # and is lost. The kernel clears the field once it has the message, so click again only when
                # the text is still there and the kernel is idle (a slow reply is waited for, never resent).
                if field.input_value() != text or page.evaluate(kernel_busy):
                    page.wait_for_function(answered.format(replies), polling=200, timeout=60_000)
                    return
        raise AssertionError(f"{name}: the chat box did not answer {text!r} after three clicks")

    for turn in range(1, 5):
        say(f"What is {turn} + {turn}?", turn)
    assert box.locator(".chat-user").count() == 4, f"{name}: the transcript does not show the four messages"
    note = box.locator(".chat-note")
    assert "no longer fit" in note.inner_text(), f"{name}: the box did not say that earlier turns were left out"
    field.fill("   ")
    send.click()
    page.wait_for_function("() => document.querySelector('.chat-box .chat-note').innerText.includes('empty')",
                           polling=200, timeout=60_000)
    assert box.locator(".chat-user").count() == 4, f"{name}: an empty message was sent"
    box.screenshot(path=str(ARTIFACTS / f"{name}_chat_box.png"))
    return 1


def assert_stored_views_show(page, name: str, timeout_ms: int = 30_000) -> None:
    """The views stored in the file draw their lines before any cell has run."""
    # First the stored outputs must have rendered at all (sanitized or not), so that a missing view
    # is seen at once instead of after the whole timeout.
    page.wait_for_selector(".jp-OutputArea-output", state="attached", timeout=timeout_ms)
    try:
        page.wait_for_selector(".llm-attention-view svg path", state="attached", timeout=3_000)
    except playwright_api.TimeoutError:
        pass
    stored = page.locator(".llm-attention-view svg path").count()
    assert stored > 0, (f"{name}: the attention views stored in the notebook do not show when it is opened "
                        "(an untrusted notebook's HTML is sanitized: is it trusted?)")
    page.locator(".llm-attention-view.head-view").first.screenshot(path=str(ARTIFACTS / f"{name}_stored_view.png"))


ATTENTION_NOTEBOOKS = [
    # (notebook, head views expected, model views expected, widgets expected)
    ("notebooks/04_multi_head_attention.ipynb", False, False, True),
    ("notebooks/07_generation.ipynb", True, True, False),
    ("notebooks/09_reading_attention.ipynb", True, True, False),
    ("notebooks/10_translation.ipynb", True, False, False),  # cross-attention: two token lists
    ("notebooks/12_assistant.ipynb", False, False, True),  # the chat box
]


# What a notebook's widget cells need from the cells before them, so that the browser runs only those
# (nbval runs the whole notebook already; what the browser adds is the widget drawn and responding).
WIDGET_PREAMBLE = {
    "notebooks/04_multi_head_attention.ipynb":
        "import utils\nfrom utils import how_many_heads as hx\n\ndevice = utils.setup()\nsteps = 20",
    # an untrained model is enough to see the box answer, trim and refuse (its replies are nonsense)
    "notebooks/12_assistant.ipynb":
        "import utils\nfrom utils.chat_template import ChatTokenizer\nfrom utils.model import GPT, GPTConfig\n"
        "from utils.views.chat_box import chat_box\n\ndevice = utils.setup()\n"
        "tok = ChatTokenizer.train(\"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+?:'\")\n"
        "model = GPT(GPTConfig(vocab_size=tok.vocab_size, context_length=64, n_layer=1, n_head=2, n_embd=16)).eval()",
}
WIDGET_CELLS = {"notebooks/04_multi_head_attention.ipynb": "Explorer(", "notebooks/12_assistant.ipynb": "chat_box("}


def widget_notebook(lab, path: str) -> str:
    """A notebook of the preamble and the cells of `path` that make its widget (WIDGET_CELLS); its path."""
    nb = nbformat.read(ROOT / path, as_version=4)
    widget_cells = [c for c in nb.cells if c.cell_type == "code" and WIDGET_CELLS[path] in c.source]
    assert widget_cells, f"{path}: no cell makes its widget ({WIDGET_CELLS[path]}...)"
    cells = [nbformat.v4.new_code_cell(WIDGET_PREAMBLE[path])] + [nbformat.v4.new_code_cell(c.source)
                                                                 for c in widget_cells]
    name = f"notebooks/{Path(path).stem}_widgets.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata), lab["root"] / name)
    return name


@pytest.mark.parametrize("path, views, model_views, widgets", ATTENTION_NOTEBOOKS,
                         ids=lambda v: Path(str(v)).stem)
def test_attention_notebook_in_the_browser(browser, lab, path, views, model_views, widgets):
    """Views: the ones stored in the notebook (made by its full-mode run, which nbval re-checks) show and
    respond when the notebook is opened, before any cell runs: our views need no kernel, only trust.
    Widgets need a kernel, so the cells that make them are run in the browser, after a preamble of what
    they need (WIDGET_PREAMBLE). (Running every notebook again here would repeat nbval's work;
    test_the_view_check_can_fail draws a view live.)"""
    if not (ROOT / path).exists():
        pytest.skip(f"{path} not written yet")
    ARTIFACTS.mkdir(exist_ok=True)
    name = Path(path).stem
    assert not (widgets and views), "the widget page holds the widget cells only: check views on a page of their own"
    page = open_notebook(browser, lab, widget_notebook(lab, path) if widgets else path)
    if views:
        assert_stored_views_show(page, name)
        assert check_head_views(page, name) >= 1
    if model_views:
        assert check_model_views(page, name) >= 1
    if widgets:
        errors = run_all(page)
        assert not errors, f"{name}: cells failed in the browser: {errors}"
        assert check_widgets(page, name) + check_chat_box(page, name) >= 1
    page.screenshot(path=str(ARTIFACTS / f"{name}_page.png"), full_page=False)
    assert all(not u.startswith(lab["url"]) for u in page.blocked)  # only outside requests were blocked
    page.context.close()


def small_notebook(path: Path, stored: bool = False) -> None:
    """A notebook with one cell that draws a head view; stored=True also stores the cell's output."""
    cells = [nbformat.v4.new_markdown_cell("A notebook for the browser test's own test.")]
    cell = nbformat.v4.new_code_cell(
        "import torch\nfrom utils.views.attention_lines import head_view\n"
        "w = [torch.softmax(torch.randn(1, 2, 4, 4), -1) for _ in range(2)]\n"
        "head_view(w, ['a', 'b', 'c', 'd'])")
    if stored:
        import torch

        from utils.views.attention_lines import head_view_html

        w = [torch.softmax(torch.randn(1, 2, 4, 4), -1) for _ in range(2)]
        cell.outputs = [nbformat.v4.new_output("execute_result", execution_count=1,
                                               data={"text/html": head_view_html(w, list("abcd"))})]
        cell.execution_count = 1
    cells.append(cell)
    kernel = {"name": "llm-course", "display_name": "Python (llm-course)", "language": "python"}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": kernel}), path)


def test_the_view_check_can_fail(browser, lab):
    """Before its cell has run, a notebook shows no view and the check must fail; once the cell has run in
    the browser's kernel (a view drawn live), the same check must pass."""
    ARTIFACTS.mkdir(exist_ok=True)
    small_notebook(lab["root"] / "notebooks" / "with_view.ipynb")
    page = open_notebook(browser, lab, "notebooks/with_view.ipynb")
    with pytest.raises(AssertionError, match="no offline head view"):
        check_head_views(page, "not_run_yet")
    assert run_all(page) == []
    assert check_head_views(page, "with_view") == 1
    page.context.close()


def test_stored_views_need_a_trusted_notebook(browser, lab):
    """An untrusted notebook's stored view is sanitized away (the check fails); trusted, it shows."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = lab["root"] / "notebooks" / "stored_view.ipynb"
    small_notebook(path, stored=True)
    page = open_notebook(browser, lab, "notebooks/stored_view.ipynb")
    with pytest.raises(AssertionError, match="do not show when it is opened"):
        assert_stored_views_show(page, "stored_view_untrusted")
    subprocess.run([sys.executable, "-m", "jupyter", "trust", str(path)], env=lab["env"], check=True,
                   capture_output=True)
    page.reload()  # the notebook is read from the server again, its trust with it (the kernel stays)
    assert_stored_views_show(page, "stored_view_trusted")
    page.context.close()
