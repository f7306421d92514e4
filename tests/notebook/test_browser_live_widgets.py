"""JupyterLab in headless Chromium: the live-widgets tutorial's table updates in place.

Real parts only: ``jupyter lab`` from this environment, the system Chromium (``/usr/bin/chromium``;
``scripts/test`` installs it with apt when missing, Playwright never downloads a browser),
the tutorial notebook as shipped. The test runs the notebook cell by cell like a reader:

1. the chat cell renders a live table with the two seeded messages;
2. a *later* cell sends a message: the already rendered table (the same DOM node, its cell
   not re-run) gains a row, highlighted as changed;
3. a cell starts a background thread that posts three messages after the cell finished:
   the table follows while the kernel is idle;
4. the rest of the notebook runs (await, DataFrame, dashboard).

A screenshot is saved in the test's output directory (``tmp_path``).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "03-live-widgets.ipynb"
CHROMIUM = os.environ.get("CN_CHROMIUM", "/usr/bin/chromium")
TIMEOUT_MS = 60_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyter_lab(root: Path) -> Iterator[str]:
    """A JupyterLab server on ``root`` (no token, no news or update checks), stopped after."""
    settings = root / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    port = _free_port()
    log = open(root / "jupyter.log", "w")
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "config"), JUPYTER_RUNTIME_DIR=str(root / "runtime"))
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
            f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0",
            "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={root / 'settings'}",
            f"--LabApp.workspaces_dir={root / 'workspaces'}",
        ],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError("jupyter lab did not start:\n" + (root / "jupyter.log").read_text()[-3000:])
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JupyterLab server on a copy of the tutorial (outputs cleared, as a reader finds it)."""
    root = tmp_path_factory.mktemp("lab")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(nb, root / NOTEBOOK.name)
    with jupyter_lab(root) as url:
        yield url


@pytest.fixture
def page(lab: str, tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs it (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        pg = context.new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        pg.console_errors = []  # type: ignore[attr-defined]
        pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))  # type: ignore[attr-defined]
        try:
            yield pg
        finally:
            try:
                pg.screenshot(path=str(tmp_path / "live-widgets.png"), full_page=True)
            finally:
                browser.close()


class Notebook:
    """Drives the open notebook like a reader: select a cell, Shift+Enter, wait for it."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
        self.next = 0

    def open(self, url: str) -> None:
        self.page.goto(f"{url}/lab/tree/{NOTEBOOK.name}")
        self.cells.first.wait_for()
        # the kernel is up when the toolbar's indicator says idle
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']")
        self.cells.first.locator(".jp-InputArea-prompt").click()
        self.page.keyboard.press("Escape")

    def prompt(self, index: int) -> str:
        return self.cells.nth(index).locator(".jp-InputArea-prompt").inner_text().strip()

    def run_through(self, index: int) -> None:
        """Run cells up to ``index`` (inclusive), each to completion."""
        while self.next <= index:
            i = self.next
            cell = self.cells.nth(i)
            is_code = "jp-CodeCell" in (cell.get_attribute("class") or "")
            self.page.keyboard.press("Shift+Enter")
            if is_code:
                self.page.wait_for_function(
                    "([i]) => { const c = document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')[i];"
                    " const p = c && c.querySelector('.jp-InputArea-prompt');"
                    " return p && /\\[\\d+\\]/.test(p.textContent); }",
                    arg=[i],
                )
                errors = cell.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
                assert "Traceback" not in (errors.all_inner_texts() and "".join(errors.all_inner_texts())), (
                    f"cell {i} failed: {''.join(errors.all_inner_texts())}"
                )
            self.next += 1

    def index_of(self, text: str) -> int:
        for i in range(self.cells.count()):
            if text in self.cells.nth(i).locator(".jp-InputArea-editor").inner_text():
                return i
        raise AssertionError(f"no cell contains {text!r}")


def table_bodies(page: Any, selector: str = ".cn-live[data-marker='chat']") -> list[list[str]]:
    return page.evaluate(
        "(sel) => { const el = document.querySelector(sel); if (!el) return null;"
        " return [...el.querySelectorAll('tbody tr')].map(tr => [...tr.children].map(td => td.textContent)); }",
        selector,
    )


def wait_rows(page: Any, count: int) -> None:
    page.wait_for_function(
        "(n) => { const el = document.querySelector(\".cn-live[data-marker='chat']\");"
        " return el && el.querySelectorAll('tbody tr').length === n; }",
        arg=count,
    )


def test_live_table_updates_in_place(lab: str, page: Any, tmp_path: Path) -> None:
    nb = Notebook(page)
    nb.open(lab)
    chat_cell = nb.index_of('chat = app.live("messages:list"')
    later_cell = nb.index_of('"Hello from a later cell"')
    bot_cell = nb.index_of("threading.Thread(target=bot")

    # 1. The live table renders the seeded messages.
    nb.run_through(chat_cell)
    widget = nb.cells.nth(chat_cell).locator(".cn-live")
    widget.wait_for()
    page.evaluate("el => el.dataset.marker = 'chat'", widget.element_handle())
    wait_rows(page, 2)
    assert table_bodies(page) == [["ada", "Hi all"], ["grace", "Hello, Ada"]]
    assert widget.locator("thead th").all_inner_texts() == ["author", "body"]
    assert widget.locator(".cn-status").inner_text() == "live"
    assert widget.locator(".cn-footer").inner_text() == "showing 2 of 2 rows"
    chat_prompt = nb.prompt(chat_cell)

    # 2. A later cell's mutation: the same table node gains a row, flagged as changed.
    nb.run_through(later_cell)
    wait_rows(page, 3)
    assert table_bodies(page)[-1] == ["you", "Hello from a later cell"]
    last_row = page.locator(".cn-live[data-marker='chat'] tbody tr").last
    assert "cn-changed" in (last_row.get_attribute("class") or "")
    assert page.locator(".cn-live[data-marker='chat'] .cn-footer").inner_text() == "showing 3 of 3 rows"

    # 3. A background thread writes after its cell finished: the table follows (kernel idle).
    nb.run_through(bot_cell)
    wait_rows(page, 6)
    assert [row for row in table_bodies(page)[3:]] == [["bot", "beep"], ["bot", "boop"], ["bot", "done!"]]
    assert nb.prompt(chat_cell) == chat_prompt  # its cell never re-ran
    page.screenshot(path=str(tmp_path / "live-widgets-after-bot.png"), full_page=True)

    # 4. The rest of the tutorial: top-level await, DataFrame, a second table, the dashboard.
    nb.run_through(nb.cells.count() - 1)
    wait_rows(page, 9)
    assert table_bodies(page)[-1] == ["timer", "1..."]
    assert len(page.locator(".cn-live").all()) == 2  # chat and the "random" channel
    assert table_bodies(page, ".cn-live:not([data-marker='chat'])") == [["ada", "off topic"]]
    dashboard = page.locator(".cn-dash")
    dashboard.wait_for()
    assert dashboard.locator(".cn-dash-tables li[data-table='messages'] .cn-count").inner_text() == "10"
    # The dashboard's function runner, driven from the browser: its result comes back.
    dashboard.locator(".cn-tab[data-tab='Functions']").click()
    dashboard.locator(".cn-fn-select").select_option("messages:send")
    dashboard.locator("[data-field='author']").fill("browser")
    dashboard.locator("[data-field='body']").fill("sent from the dashboard")
    dashboard.locator(".cn-fn-run").click()
    page.wait_for_function(
        "() => { const r = document.querySelector('.cn-dash .cn-fn-result'); return r && r.dataset.ok === 'true'; }"
    )
    # ... and the chat table, further up, shows the new message (scroll back to it: the
    # notebook only keeps the cells near the viewport in the page)
    nb.cells.nth(chat_cell).scroll_into_view_if_needed()
    wait_rows(page, 10)
    assert table_bodies(page)[-1] == ["browser", "sent from the dashboard"]
    # The crons and files panels render (this tutorial has neither).
    dashboard.locator(".cn-tab[data-tab='Files']").click()
    assert dashboard.locator(".cn-panel-files .cn-empty").inner_text() == "no stored files"
    dashboard.locator(".cn-tab[data-tab='Crons']").click()
    assert dashboard.locator(".cn-panel-crons .cn-empty").inner_text().startswith("no cron jobs")
    assert not [e for e in page.console_errors if re.search(r"anywidget|cn-|render", e)]  # type: ignore[attr-defined]
    assert not page.locator("text=Error displaying widget").count()
    page.screenshot(path=str(tmp_path / "live-widgets.png"), full_page=True)
    print(f"screenshots in {tmp_path}")
