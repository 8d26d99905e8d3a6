"""Notebook 06 the way a student runs it: JupyterLab in Chromium, Run All, then the viewer's slider.

The Debian ``chromium`` (``TAGVIS_CHROMIUM`` names another binary) is driven by Playwright from PyPI
pointed at that executable: nothing is downloaded. JupyterLab runs on a free localhost port with a
token, on a copy of notebook 06 whose parameters papermill set to the smoke profile and a temporary
run folder. ``TAGVIS_SCREENSHOT`` names where the viewer's screenshot goes (default: the test's
temporary folder; the README's copy is ``figures/jupyterlab_viewer.png``), ``TAGVIS_BROWSER_PARAMS`` a
JSON object of other notebook parameters (e.g. a trained checkpoint and its data).
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

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "06_qualitative.ipynb"
RUN_ALL_SECONDS = 300
#: JavaScript for the open notebook panel (JupyterLab exposes ``window.jupyterapp`` with expose_app_in_browser).
PANEL = "window.jupyterapp.shell.currentWidget"


def _chromium() -> str | None:
    return os.environ.get("TAGVIS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """(base URL, token, folder) of a JupyterLab server serving a smoke-parameterised copy of notebook 06."""
    if _chromium() is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run installs it)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    import papermill

    work = tmp_path / "lab"
    work.mkdir()
    parameters = {"profile": "smoke", "run_dir": str(tmp_path / "runs" / "smoke"),
                  "figures_dir": str(tmp_path / "figures"), "device": "cpu",
                  **json.loads(os.environ.get("TAGVIS_BROWSER_PARAMS", "{}"))}
    papermill.execute_notebook(str(NOTEBOOK), str(work / "06.ipynb"), prepare_only=True, parameters=parameters,
                               kernel_name="python3")
    port, token = _free_port(), "tagvis-browser-test"
    settings = tmp_path / "lab_settings"
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))  # every cell in the page, not only the visible ones
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))  # no "news?" toast over the screenshot
    env = dict(os.environ, OMP_NUM_THREADS="1", JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter_config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter_runtime"), JUPYTERLAB_SETTINGS_DIR=str(settings),
               PYTHONPATH=str(ROOT))
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.disable_check_xsrf=True", "--allow-root"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.3)
    yield base, token, work
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def test_notebook_06_runs_in_jupyterlab_and_the_slider_moves_the_frame(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token, work = lab
    shot = Path(os.environ.get("TAGVIS_SCREENSHOT") or tmp_path / "jupyterlab_viewer.png")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            _run_and_move(page, base, token, work, shot)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(f"page at the failure: {tmp_path / 'failure.png'}; server log: {tmp_path / 'lab.log'}")
            raise
        finally:
            browser.close()
    saved = json.loads((work / "06.ipynb").read_text())
    error_outputs = [o for c in saved["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not error_outputs, [o.get("ename") for o in error_outputs]
    assert shot.read_bytes()[:4] == b"\x89PNG"


def _run_and_move(page, base, token, work, shot):
    """Open, Run All, check no traceback, move the slider, check the image changes, screenshot, save."""
    page.goto(f"{base}/lab/tree/06.ipynb?token={token}")
    page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell')",
                           timeout=60_000)
    page.wait_for_function(f"({PANEL}) !== null && ({PANEL}).sessionContext.session?.kernel?.status === 'idle'",
                           timeout=90_000)  # the kernel has started and is idle
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(  # the kernel is idle again, and every code cell has run or one has failed
        f"""() => {{
            const panel = {PANEL};
            const cells = [...panel.content.model.cells].filter(c => c.type === 'code');
            const failed = cells.some(c => c.outputs.toJSON().some(o => o.output_type === 'error'));
            const ran = cells.every(c => c.executionCount !== null);
            return (ran || failed) && panel.sessionContext.session.kernel.status === 'idle';
        }}""", timeout=RUN_ALL_SECONDS * 1000)
    failures = page.evaluate(f"""() => [...({PANEL}).content.model.cells].flatMap(c => c.type === 'code' ?
        c.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue) : [])""")
    assert not failures, f"cells failed in JupyterLab: {failures}"
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                          " >> text=Traceback").count()
    image = page.locator(".widget-image").last
    image.wait_for(timeout=30_000)
    image.scroll_into_view_if_needed()
    before = image.get_attribute("src")
    handle = page.locator(".widget-slider .noUi-handle").first
    handle.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("(old) => { const imgs = document.querySelectorAll('.widget-image');"
                           " return imgs[imgs.length - 1].getAttribute('src') !== old; }", arg=before,
                           timeout=20_000)
    after = image.get_attribute("src")
    slider_value = page.locator(".widget-slider .widget-readout").first.text_content()
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.locator(".jp-OutputArea-output:has(.widget-image)").last.screenshot(path=str(shot))
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    time.sleep(2)
    assert errors == 0
    assert after != before and slider_value.strip() == "3"
