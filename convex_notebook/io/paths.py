"""Where an export writes: a file whose folder must exist, or a folder ending in ``/``."""

from __future__ import annotations

import os

__all__ = ["snapshot_target", "table_target"]


def snapshot_target(path: str | os.PathLike[str], default_name: str) -> str:
    """The ZIP file to write for ``path``: a directory (created when the path ends with ``/``,
    as ``--path backups/`` reads) gets ``default_name``; a file's folder must exist."""
    target = os.fspath(path)
    if target.endswith(("/", os.sep)) and not os.path.exists(target):
        os.makedirs(target)
    if os.path.isdir(target):
        return os.path.join(target, default_name)
    _folder_exists(target)
    return target


def table_target(path: str | os.PathLike[str]) -> str:
    """A table file to write: its folder must exist (a clear error names it otherwise)."""
    target = os.fspath(path)
    if target.endswith(("/", os.sep)) or os.path.isdir(target):
        raise IsADirectoryError(f"{target} is a folder: name the file to write, e.g. {os.path.join(target, 'table.jsonl')}")
    _folder_exists(target)
    return target


def _folder_exists(target: str) -> None:
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        shown = os.path.dirname(target) or folder
        raise FileNotFoundError(
            f"the folder {shown}/ does not exist: create it (mkdir -p {shown}) or write elsewhere"
        )
