"""Binder (repo2docker) builds from binder/: checked statically, as repo2docker reads it.

repo2docker ignores pyproject's ``requires-python`` once a ``binder/`` folder exists: the
Python version comes from ``binder/runtime.txt`` only (else its default, too old for us).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement_name(line: str) -> str:
    return re.split(r"[<>=!~\[ ;]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_runtime_pins_a_python_the_package_accepts() -> None:
    runtime = (BINDER / "runtime.txt").read_text().strip()
    found = re.fullmatch(r"python-(\d+)\.(\d+)", runtime)
    assert found, f"binder/runtime.txt must read python-X.Y (repo2docker's format), got {runtime!r}"
    wanted = re.fullmatch(r">=(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert wanted, "requires-python is expected as >=X.Y"
    assert tuple(map(int, found.groups())) >= tuple(map(int, wanted.groups()))


def test_post_build_installs_this_repository() -> None:
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "repo2docker runs postBuild only when it is executable"
    text = post.read_text()
    assert text.startswith("#!/bin/bash") and "set -euo pipefail" in text
    assert re.search(r"pip install [^\n]*\s\.\s*$", text, re.M), "postBuild installs the package (pip install .)"
    for path in re.findall(r"\b(scripts/[\w.-]+|notebooks/[\w.-]+)", text):
        assert (ROOT / path).exists(), f"postBuild names {path}, which does not exist"


def test_requirements_agree_with_pyproject() -> None:
    declared = {_requirement_name(d): d for d in PYPROJECT["project"]["dependencies"]}
    lines = [ln for ln in (BINDER / "requirements.txt").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines
    for line in lines:
        name = _requirement_name(line)
        assert name in declared, f"binder/requirements.txt installs {name}, which pyproject does not depend on"
        assert line.replace(" ", "") == declared[name].replace(" ", ""), f"{line!r} differs from pyproject's {declared[name]!r}"
    assert "jupyterlab" in {_requirement_name(x) for x in lines}


def test_news_popup_is_switched_off_by_a_settings_override() -> None:
    overrides = json.loads((ROOT / "scripts" / "jupyterlab-overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert "scripts/jupyterlab-overrides.json" in (BINDER / "postBuild").read_text()
    assert "scripts/jupyterlab-overrides.json" in (ROOT / "scripts" / "lab").read_text()


def test_readme_badge_opens_the_quickstart() -> None:
    readme = (ROOT / "README.md").read_text()
    badge = re.search(r"\[!\[Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]\((https://mybinder\.org/v2/gh/[^)]+)\)", readme)
    assert badge, "the README has a Binder badge"
    url = badge.group(1)
    found = re.fullmatch(r"https://mybinder\.org/v2/gh/([\w.-]+)/([\w.-]+)/([\w.-]+)\?urlpath=lab/tree/(notebooks/[\w.-]+\.ipynb)", url)
    assert found, url
    assert (ROOT / found.group(4)).name == "01-quickstart.ipynb" and (ROOT / found.group(4)).exists()
