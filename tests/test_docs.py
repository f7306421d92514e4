"""The docs' Python is real: each page's ```python blocks run in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def test_the_typescript_guide_exists() -> None:
    assert DOCS / "typescript-to-python.md" in PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_python_blocks_run(page: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    assert blocks, f"{page.name} has no Python to run"
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for number, block in enumerate(blocks, 1):
        code = compile(block, f"{page.name} (python block {number})", "exec")
        exec(code, namespace)  # noqa: S102 - the page's own examples


def test_every_typescript_block_has_its_python() -> None:
    text = (DOCS / "typescript-to-python.md").read_text()
    for section in re.split(r"\n## ", text)[1:]:
        if "```ts" in section:
            assert "```python" in section, section.splitlines()[0]
