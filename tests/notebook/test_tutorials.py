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
        "07-env-limits-components.ipynb",
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
