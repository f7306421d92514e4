#!/usr/bin/env python3
"""Take the README's picture of a live table: JupyterLab in headless Chromium.

    .venv/bin/python scripts/readme_screenshot.py [--out docs/images/live-table.png]

Runs ``notebooks/03-live-widgets.ipynb`` (outputs cleared) in a throwaway JupyterLab, up to
the cell that posts a message from a later cell, then saves a screenshot of the chat's live
table (the new row still highlighted). Uses the system Chromium (``/usr/bin/chromium``, or
``$CN_CHROMIUM``); Playwright never downloads a browser.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "03-live-widgets.ipynb"
CHROMIUM = os.environ.get("CN_CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_lab(root: Path) -> tuple[subprocess.Popen, str]:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, root / NOTEBOOK.name)
    settings = root / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "config"), JUPYTER_RUNTIME_DIR=str(root / "runtime"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ServerApp.port={port}",
         "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
         "--ServerApp.password=", f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={root / 'settings'}",
         f"--LabApp.workspaces_dir={root / 'workspaces'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.terminate()
                raise SystemExit("jupyter lab did not start") from None
            time.sleep(0.3)


def _cell_with(text: str) -> int:
    """The index of the notebook's cell containing ``text`` (the page shows cells in order)."""
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    return next(i for i, cell in enumerate(cells) if text in cell.source)


def _run_cells_through(page: object, last: int) -> None:
    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")  # type: ignore[attr-defined]
    cells.first.locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Escape")  # type: ignore[attr-defined]
    for i in range(last + 1):
        page.keyboard.press("Shift+Enter")  # type: ignore[attr-defined]
        if "jp-CodeCell" in (cells.nth(i).get_attribute("class") or ""):
            page.wait_for_function(  # type: ignore[attr-defined]
                "([i]) => { const p = document.querySelectorAll('.jp-NotebookPanel .jp-Cell')[i]"
                ".querySelector('.jp-InputArea-prompt'); return p && /\\[\\d+\\]/.test(p.textContent); }", arg=[i])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "live-table.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _start_lab(Path(tmp))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1400, "height": 1100}, device_scale_factor=2)
                page.set_default_timeout(60_000)
                page.goto(f"{url}/lab/tree/{NOTEBOOK.name}")
                page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']")
                page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for()
                chat = page.locator(".jp-NotebookPanel .jp-Cell").nth(_cell_with('chat = app.live("messages:list"'))
                _run_cells_through(page, _cell_with('"Hello from a later cell"'))
                table = chat.locator(".cn-live")
                page.wait_for_function("() => document.querySelector('.cn-live tbody tr.cn-changed') !== null")
                args.out.parent.mkdir(parents=True, exist_ok=True)
                table.screenshot(path=str(args.out))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(15)
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
