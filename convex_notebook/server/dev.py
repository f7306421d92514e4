"""``convex-notebook dev [DIR]``: serve a functions folder and redeploy each saved file,
as ``npx convex dev`` pushes ``convex/`` (see ``backend/project.py`` for what a file holds).

    convex-notebook dev convex --db data/app.sqlite3 --port 3210

The server runs on a background thread; this thread watches DIR (watchfiles) and redeploys
the files that changed. A file with an error is reported on one line and the previous
deployment keeps serving.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from ..backend.project import DeployError, DeployReport, FunctionsFolder

__all__ = ["redeploy", "run_dev"]


def redeploy(project: FunctionsFolder) -> DeployReport | None:
    """Deploy what changed and print one line; ``None`` (after printing it) on an error."""
    app = project.app
    reruns = app.reactivity.reruns
    try:
        report = project.deploy()
    except DeployError as exc:
        print(f"convex-notebook dev: not deployed: {exc}", file=sys.stderr, flush=True)
        return None
    if report.changed:
        app.wait_for_callbacks()
        again = app.reactivity.reruns - reruns
        tail = f" (re-ran {again} live quer{'y' if again == 1 else 'ies'})" if again else ""
        print(f"convex-notebook dev: deployed {report.summary()}{tail}", flush=True)
    return report


def run_dev(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Deploy ``args.dir``, serve it and redeploy on every save until Ctrl-C (or ``stop``)."""
    import watchfiles

    import convex_notebook as cn

    from .cli_support import (
        load_auth_config,
        open_database,
        print_auth,
        print_functions,
        stop_on_sigterm,
    )

    app = open_database(args.db) if args.db else cn.Backend()
    try:
        project = FunctionsFolder(app, args.dir)
        report = project.deploy()  # the first deploy must work: nothing is served otherwise
        print(f"convex-notebook dev: deployed {report.summary()}", flush=True)
        if args.once:
            print_functions(app)
            return 0
        print_functions(app)
        if stop is None:
            stop_on_sigterm()
        if getattr(args, "auth_config", None):
            app.set_auth(load_auth_config(args.auth_config))
        print_auth(app, args.dev_tokens)
        handle = app.serve(host=args.host, port=args.port, block=False, admin_key=args.admin_key,
                           log_level=args.log_level, dev_tokens=args.dev_tokens,
                           allow_admin_key_in_url=args.allow_admin_key_in_url)
        print(f"convex-notebook dev: watching {args.dir} for changes (Ctrl-C to stop)", flush=True)
        try:
            assert project.root is not None  # FunctionsFolder(app, args.dir) has one
            for _changes in watchfiles.watch(project.root, stop_event=stop, watch_filter=_python_files,
                                             raise_interrupt=False):
                redeploy(project)
        finally:
            handle.stop()
        return 0
    finally:
        app.close()


def _python_files(change: Any, path: str) -> bool:
    return path.endswith(".py") and "__pycache__" not in path
