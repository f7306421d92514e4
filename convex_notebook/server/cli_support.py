"""What the ``convex-notebook`` commands share (``cli``, ``cli_data``, ``dev``): opening a
database, loading functions files and auth configs, printing what a deployment serves."""

from __future__ import annotations

import json
import os
import runpy
import signal
import sqlite3
from pathlib import Path
from typing import Any

from ..backend.project import DeployError, FunctionsFolder

__all__ = ["load_auth_config", "load_functions", "open_database", "print_auth", "print_functions", "stop_on_sigterm"]


def load_functions(app: Any, path: str | os.PathLike[str]) -> FunctionsFolder:
    """Deploy one functions file into ``app`` (module named from its path); returns the
    :class:`FunctionsFolder` that can redeploy it. Errors: :class:`DeployError`, one line."""
    project = FunctionsFolder(app)
    project.deploy([path])
    return project


def load_auth_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The auth config in a file: ``auth.config.py`` (top-level ``providers`` or ``auth``) or
    JSON (``{"providers": [...]}``)."""
    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"No auth config file at {file}")
    if file.suffix == ".json":
        try:
            return json.loads(file.read_text())
        except ValueError as exc:
            raise ValueError(f"{file} is not valid JSON: {exc}") from None
    namespace = runpy.run_path(str(file), run_name="convex_auth_config")
    if isinstance(namespace.get("auth"), dict):
        return namespace["auth"]
    if "providers" in namespace:
        return {"providers": namespace["providers"]}
    raise ValueError(f"{file} defines neither `providers = [...]` nor `auth = {{\"providers\": [...]}}`")


def open_database(path: str, **options: Any) -> Any:
    """``cn.Backend(path)``, creating the file's folder when it does not exist yet."""
    import convex_notebook as cn

    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise DeployError(f"--db {path}: {os.path.dirname(path)} is a file, not a folder")
    os.makedirs(folder, exist_ok=True)
    if os.path.isdir(path):
        raise DeployError(f"--db {path} is a folder: name the SQLite file, e.g. {os.path.join(path, 'app.sqlite3')}")
    try:
        return cn.Backend(path, **options)
    except sqlite3.Error as exc:
        raise DeployError(f"--db {path} cannot be opened as a SQLite database ({exc})") from None


def print_functions(app: Any) -> None:
    names = [f"{d.path} ({'internal ' if d.internal else ''}{d.kind})" for d in app.functions()]
    count = f"{len(names)} function{'' if len(names) == 1 else 's'}"
    print(f"convex_notebook: {count}" + (": " + ", ".join(names) if names else ""), flush=True)


def stop_on_sigterm() -> None:
    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # stop cleanly: connections closed, the database saved

    signal.signal(signal.SIGTERM, terminate)


def print_auth(app: Any, dev_tokens: bool) -> None:
    providers = getattr(app, "auth_providers", None)
    if providers:
        print(f"convex_notebook: auth providers: {', '.join(p.describe() for p in providers.providers)}", flush=True)
    elif not dev_tokens:
        print("convex_notebook: no auth providers (--auth-config): user tokens are refused", flush=True)
