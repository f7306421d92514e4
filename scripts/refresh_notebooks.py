#!/usr/bin/env python3
"""Re-run the tutorial notebooks and save their outputs in a stable form.

    .venv/bin/python scripts/refresh_notebooks.py [notebooks/01-quickstart.ipynb ...]

Each notebook runs top to bottom in a fresh kernel (as ``pytest --nbval-lax`` does in CI).
Saved outputs are made reproducible: widget views keep their text form and their static HTML
snapshot (a real table, what GitHub and nbviewer show) but not the widget view itself (its
model id is random); execution timings and widget state are dropped. ``--check`` fails when an
output holds something that changes between runs (a document id, a timestamp, an address).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
UNSTABLE = [
    (re.compile(r"\b[0-9a-z]{31,37}\b"), "a document id"),
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d"), "a timestamp"),
    (re.compile(r"0x[0-9a-f]{6,}"), "a memory address"),
    (re.compile(r"/tmp/\w+"), "a temporary path"),
    (re.compile(r"[0-9a-f]{40,}"), "a key or hash"),
    (re.compile(r"(127\.0\.0\.1|localhost):\d+"), "a server address"),
]


def normalize(nb: nbformat.NotebookNode) -> None:
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data and WIDGET_VIEW in data:
                del data[WIDGET_VIEW]
            output.get("metadata", {}).pop(WIDGET_VIEW, None)


def unstable_outputs(nb: nbformat.NotebookNode) -> list[str]:
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            texts = [output.get("text", "")]
            texts += [v for k, v in output.get("data", {}).items() if isinstance(v, str) and k.startswith("text/")]
            if output.get("output_type") == "error":
                continue  # tracebacks are not compared
            for text in texts:
                for pattern, what in UNSTABLE:
                    found = pattern.search(text)
                    if found:
                        problems.append(f"cell {index}: {what}: {found.group(0)!r}")
    return problems


def refresh(path: Path, timeout: int) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
        allow_error_names=[], allow_errors=False, store_widget_state=False,
    )
    client.allow_errors = True  # cells tagged raises-exception are expected to fail
    client.execute()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        failed = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
        expected = "raises-exception" in cell.metadata.get("tags", [])
        if failed != expected:
            raise SystemExit(f"{path.name} cell {index}: {'unexpected error' if failed else 'expected an error'}")
    normalize(nb)
    return nb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true", help="only check saved outputs for unstable values")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per cell")
    args = parser.parse_args()
    paths = args.paths or sorted((ROOT / "notebooks").glob("*.ipynb"))
    status = 0
    for path in paths:
        if args.check:
            nb = nbformat.read(path, as_version=4)
        else:
            nb = refresh(path, args.timeout)
            nbformat.write(nb, path)
            print(f"refreshed {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        for problem in unstable_outputs(nb):
            print(f"{path.name}: {problem}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
