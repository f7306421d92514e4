"""Optional layers attached to a deployment, in one place, by lazy import.

The backend never imports the notebook layer (pandas, widgets) or the server; a deployment
still offers ``app.df(...)``, ``app.live(...)`` and ``app.serve(...)`` the way pandas offers
``DataFrame.to_sql``: the method imports its layer when called. This module is the only one
under ``backend/`` allowed to (tests/test_layering.py), and both the embedded ``Backend`` and
the remote client take these methods from :class:`NotebookMethods`: written once against the
deployment contract.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["NotebookMethods", "auth_providers", "export_snapshot", "export_table", "import_snapshot",
           "import_table", "remote_client", "serve"]


class NotebookMethods:
    """``df``, ``import_dataframe`` and ``live`` of any deployment (see the contract)."""

    def df(self, source: Any, args: dict | None = None, *, index: str | None = None, at: Any = None) -> Any:
        """A DataFrame of a table (``app.df("tasks")``, in ``_creationTime`` order), of a
        query's result (``app.df("tasks:list", {...})``) or of documents (a list, a page);
        ``at`` reads the table or query as it was then (see ``query(..., at=)``)."""
        from ..notebook.dataframes import dataframe

        return dataframe(self, source, args, index=index, at=at)  # type: ignore[arg-type]

    def import_dataframe(self, table: str, df: Any, mode: str = "insert", **options: Any) -> int:
        """Write a DataFrame's rows as documents of ``table``; ``mode``: "insert" (the table
        must be empty), "append" or "replace". Options: ``batch_size``, ``atomic``,
        ``keep_ids``, ``nan``, ``progress`` (see ``notebook.dataframes.import_dataframe``)."""
        from ..notebook.dataframes import import_dataframe

        return import_dataframe(self, table, df, mode=mode, **options)  # type: ignore[arg-type]

    def live(self, target: Any, args: dict | None = None, **options: Any) -> Any:
        """A live table of a query's result (a ``LiveQuery`` widget; needs the notebook extras):
        re-renders on every change, with ``.value``, ``.df``, ``.status``, ``.wait_for()``."""
        from ..notebook.widgets import live

        return live(self, target, args, **options)


def infer_schema(frame: Any, id_table: Any) -> Any:
    from ..notebook.dataframes import infer_schema as infer

    return infer(frame, id_table=id_table)


# -- the embedded backend's file formats (convex_notebook.io) and serving (convex_notebook.server) --
def export_snapshot(app: Any, path: str | os.PathLike[str], **options: Any) -> str:
    from ..io import export_snapshot as export

    return export(app, path, **options)


def import_snapshot(app: Any, path: str | os.PathLike[str], **options: Any) -> dict[str, int]:
    from ..io import import_snapshot as load

    return load(app, path, **options)


def import_table(app: Any, table: str, path: str | os.PathLike[str], **options: Any) -> int:
    from ..io import import_table as load

    return load(app, table, path, **options)


def export_table(app: Any, table: str, path: str | os.PathLike[str], **options: Any) -> int:
    from ..io import export_table as export

    return export(app, table, path, **options)


def serve(app: Any, **options: Any) -> Any:
    from ..server.serve import serve as serve_app

    return serve_app(app, **options)


def auth_providers(config: Any) -> Any:
    from ..server.auth_providers import AuthProviders

    return AuthProviders(config)


def remote_client(url: str, **options: Any) -> Any:
    from ..server.client import DeploymentClient

    return DeploymentClient(url, **options)
