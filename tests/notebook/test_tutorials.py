"""The tutorials as shipped: stable saved outputs, checked cells, the main-job script.

nbval (pytest's settings include notebooks/) runs every tutorial top to bottom and compares
the cells tagged ``nbval-check-output``; this file checks what nbval does not look at.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _refresh_module():  # scripts/refresh_notebooks.py, loaded by path
    spec = importlib.util.spec_from_file_location("refresh_notebooks", ROOT / "scripts" / "refresh_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_the_tutorials_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01-quickstart.ipynb",
        "02-data-modelling.ipynb",
        "03-live-widgets.ipynb",
        "04-dataframes.ipynb",
        "05-serving.ipynb",
        "06-background-search-files.ipynb",
        "07-auth-and-actions.ipynb",
        "08-env-limits-components.ipynb",
        "09-concurrency-and-time-travel.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_saved_outputs_are_stable(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    refresh = _refresh_module()
    assert refresh.unstable_outputs(nb) == []  # no ids, timestamps, addresses, ports, keys
    code = [c for c in nb.cells if c.cell_type == "code"]
    checked = [c for c in code if "nbval-check-output" in c.metadata.get("tags", [])]
    assert len(checked) >= 4, "each tutorial pins its teaching outputs"
    assert all(c.outputs for c in checked), "a checked cell needs a saved output to compare with"
    for cell in code:
        for output in cell.outputs:
            assert refresh.WIDGET_VIEW not in output.get("data", {}), "widget model ids change every run"
            if output.get("output_type") == "error":
                assert "raises-exception" in cell.metadata.get("tags", []), cell.source
    assert "widgets" not in nb.metadata
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_main_job_script_sets_up_jupyterlab() -> None:
    out = subprocess.run([str(ROOT / "scripts" / "lab"), "--check"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "anywidget" in out.stdout and "jupyterlab-manager" in out.stdout
    assert "ready: .venv/bin/jupyter lab" in out.stdout and "01-quickstart.ipynb" in out.stdout
    # no news pop-up: the settings override sits where JupyterLab reads it (its app settings dir)
    where = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c",
         "import os; from jupyterlab.commands import get_app_dir; print(os.path.join(get_app_dir(), 'settings'))"],
        capture_output=True, text=True, timeout=120,
    )
    overrides = Path(where.stdout.strip()) / "overrides.json"
    assert overrides.read_text() == (ROOT / "scripts" / "jupyterlab-overrides.json").read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_saved_widgets_show_a_table_without_a_widget_front_end(path: Path) -> None:
    """GitHub and nbviewer render text/html: every saved live table and dashboard has one."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data", {})
            if data.get("text/plain", "").startswith(("LiveQuery(", "Dashboard(")):
                assert "<table" in data.get("text/html", "") and "a snapshot" in data["text/html"], cell.source


def test_readme_picture_is_a_png() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "](docs/images/live-table.png)" in readme
    picture = (ROOT / "docs" / "images" / "live-table.png").read_bytes()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n" and len(picture) > 5000


def test_quickstart_links_every_tutorial() -> None:
    nb = nbformat.read(ROOT / "notebooks" / "01-quickstart.ipynb", as_version=4)
    last = nb.cells[-1].source
    for path in NOTEBOOKS[1:]:
        assert f"]({path.name})" in last, f"the quickstart's next list misses {path.name}"
    assert "typescript-to-python.md" in last
