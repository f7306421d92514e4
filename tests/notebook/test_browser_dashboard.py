"""JupyterLab in headless Chromium: the dashboard's actions, clicked as a user clicks them.

A notebook (written here, outputs empty) builds a small app with a schema and a scheduled job
on a virtual clock, and shows ``cn.Dashboard(app)``. In the browser: edit a document (a
refused edit says why and changes nothing), delete one, clear the table (two clicks), cancel
the scheduled job, and run a function acting as a user. Later cells read the backend from
Python to check that each click really wrote (or did not write).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from test_browser_live_widgets import CHROMIUM, TIMEOUT_MS, Notebook, jupyter_lab

pytestmark = pytest.mark.browser

NAME = "dashboard-actions.ipynb"
CELLS = [
    '''import convex_notebook as cn
from convex_notebook import v

app = cn.Backend(clock=cn.VirtualClock(), echo_logs=False, schema=cn.define_schema({
    "notes": cn.define_table({"text": v.string()}),
}))

@app.query
def whoami(ctx):
    identity = ctx.auth.get_user_identity()
    return identity and identity["subject"]

@app.mutation
def remind(ctx):
    return ctx.scheduler.run_after(60_000, "remind", {})

for text in ("first", "second", "third"):
    app.run(lambda ctx, text=text: ctx.db.insert("notes", {"text": text}))
job = app.mutation("remind", {})''',
    "dash = cn.Dashboard(app)\ndash",
    'print("texts:", sorted(n["text"] for n in app.run(lambda ctx: ctx.db.query("notes").collect())))',
    'print("count:", app.count("notes"), "job:", app.run(lambda ctx: ctx.db.system.get(job))["state"]["kind"])',
    'print("env:", dict(app.env))',
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("lab-dashboard")
    nb = new_notebook(cells=[new_code_cell(source) for source in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / NAME)
    with jupyter_lab(root) as url:
        yield url


@pytest.fixture
def page(lab: str, tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs it (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        pg = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        try:
            yield pg
        finally:
            try:
                pg.screenshot(path=str(tmp_path / "dashboard-actions.png"), full_page=True)
            finally:
                browser.close()


class ActionsNotebook(Notebook):
    def open(self, url: str) -> None:
        self.page.goto(f"{url}/lab/tree/{NAME}")
        self.cells.first.wait_for()
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']")
        # the kernel is connected when the status bar says so (keys pressed before are lost)
        self.page.wait_for_function("() => /\\(ipykernel\\) \\| Idle/.test(document.querySelector('.jp-StatusBar-Widget')?.innerText || '')")
        self.cells.first.locator(".jp-InputArea-prompt").click()
        self.page.keyboard.press("Escape")

    def rerun(self, index: int) -> str:
        """Run one cell again (select it, Shift+Enter); its printed output."""
        cell = self.cells.nth(index)
        before = self.prompt(index)
        cell.locator(".jp-InputArea-prompt").click()
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("Shift+Enter")
        self.page.wait_for_function(
            "([i, before]) => { const p = document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')[i]"
            ".querySelector('.jp-InputArea-prompt'); return p && /\\[\\d+\\]/.test(p.textContent) && p.textContent !== before; }",
            arg=[index, before],
        )
        return cell.locator(".jp-OutputArea-output").last.inner_text().strip()


def _notice(page: Any, seq: int) -> tuple[str, str]:
    page.wait_for_function(f"() => document.querySelector('.cn-dash .cn-dash-notice').dataset.seq === '{seq}'")
    notice = page.locator(".cn-dash .cn-dash-notice")
    return notice.get_attribute("data-ok") or "", notice.inner_text()


def _rows(page: Any) -> list[str]:
    return page.evaluate(
        "() => [...document.querySelectorAll('.cn-dash .cn-panel-data tbody tr')]"
        ".map(tr => [...tr.children].map(td => td.textContent).join('|'))"
    )


def test_dashboard_actions_in_the_browser(lab: str, page: Any) -> None:
    nb = ActionsNotebook(page)
    nb.open(lab)
    nb.run_through(len(CELLS) - 1)
    dash = page.locator(".cn-dash")
    dash.wait_for()
    assert len(_rows(page)) == 3

    # Edit: a refused edit (the schema wants a string) says why and writes nothing.
    first = page.locator(".cn-dash .cn-panel-data tbody tr").filter(has_text="first")
    first.locator(".cn-edit").click()
    editor = dash.locator(".cn-editor textarea")
    assert '"text": "first"' in editor.input_value()
    editor.fill('{"text": 42}')
    dash.locator(".cn-edit-save").click()
    ok, text = _notice(page, 1)
    assert ok == "false" and "does not match the schema" in text
    first.locator(".cn-edit").click()
    dash.locator(".cn-editor textarea").fill('{"text": "first, edited in the browser"}')
    dash.locator(".cn-edit-save").click()
    ok, text = _notice(page, 2)
    assert ok == "true" and text.startswith("saved ")
    assert any("first, edited in the browser" in r for r in _rows(page))
    assert "first, edited in the browser" in nb.rerun(2)  # the kernel's backend has it

    # Delete one row.
    page.locator(".cn-dash .cn-panel-data tbody tr").filter(has_text="second").locator(".cn-delete").click()
    ok, text = _notice(page, 3)
    assert (ok, text) == ("true", "deleted 1 document") and len(_rows(page)) == 2

    # Clear the table: the first click asks, the second deletes.
    dash.locator(".cn-clear").click()
    assert dash.locator(".cn-clear").inner_text() == "really delete every notes document?"
    assert len(_rows(page)) == 2
    dash.locator(".cn-clear").click()
    ok, text = _notice(page, 4)
    assert (ok, text) == ("true", "cleared notes: deleted 2 documents") and _rows(page) == []

    # Cancel the scheduled job.
    dash.locator(".cn-tab[data-tab='Schedules']").click()
    dash.locator(".cn-panel-schedules .cn-cancel").click()
    ok, _ = _notice(page, 5)
    assert ok == "true"
    page.wait_for_function(
        "() => [...document.querySelectorAll('.cn-dash .cn-panel-schedules tbody td')].some(td => td.textContent === 'canceled')"
    )
    assert nb.rerun(3) == "count: 0 job: canceled"

    # Run a function acting as a user.
    dash.locator(".cn-tab[data-tab='Functions']").click()
    dash.locator(".cn-fn-select").select_option("whoami")
    dash.locator(".cn-fn-identity").fill('{"subject": "ada", "name": "Ada"}')
    dash.locator(".cn-fn-run").click()
    page.wait_for_function(
        "() => { const r = document.querySelector('.cn-dash .cn-fn-result'); return r && r.dataset.ok === 'true'; }"
    )
    assert dash.locator(".cn-fn-result-head").inner_text() == "whoami as ada: ok"
    assert dash.locator(".cn-fn-value").inner_text() == '"ada"'

    # Environment variables: set two, remove one.
    dash.locator(".cn-tab[data-tab='Environment']").click()
    for seq, (name, value) in enumerate((("API_URL", "https://example.com"), ("TOKEN", "secret")), start=6):
        dash.locator(".cn-env-name").fill(name)
        dash.locator(".cn-env-value").fill(value)
        dash.locator(".cn-env-set").click()
        assert _notice(page, seq) == ("true", f"set {name}")
    rows = page.evaluate(
        "() => [...document.querySelectorAll('.cn-dash .cn-panel-env tbody tr')].map(tr => tr.textContent)"
    )
    assert any(r.startswith("TOKEN") for r in rows) and not any("secret" in r for r in rows), rows  # names only
    dash.locator(".cn-env-name").fill("TOKEN")
    dash.locator(".cn-env-remove").click()
    assert _notice(page, 8) == ("true", "removed TOKEN")
    assert nb.rerun(4) == "env: {'API_URL': 'https://example.com'}"
