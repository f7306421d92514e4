"""Short errors in a notebook: the user's own frames and the error, not the library's.

``%load_ext convex_notebook`` registers :func:`show_error` with IPython (``set_custom_exc``)
for convex_notebook's exception types only; other errors display as IPython shows them.

* An error a magic raised (marked by the magic) is one line.
* An error from a function called in a cell shows the frames of the user's code (cells and
  functions files) along the whole exception chain, then the error; library, standard
  library and site-packages frames are hidden.
* ``cn.show_full_tracebacks()`` / ``%convex debug on`` switch back to IPython's full
  traceback; ``%tb`` shows the last one in full either way.
"""

from __future__ import annotations

import linecache
import os
import sys
import sysconfig
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["full_tracebacks", "show_error", "show_full_tracebacks", "user_frames"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIBRARY_DIRS = tuple(
    sorted({os.path.abspath(p) + os.sep for p in (
        _PACKAGE_DIR,
        *(sysconfig.get_paths().get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib")),
    ) if p})
)
_settings = {"full": False}
HINT = "(library frames hidden: %convex debug on, or cn.show_full_tracebacks(), shows them)"


def show_full_tracebacks(on: bool = True) -> None:
    """Show convex_notebook's errors with IPython's full tracebacks (``False``: short again)."""
    _settings["full"] = bool(on)


def full_tracebacks() -> bool:
    """Whether errors are shown in full (see :func:`show_full_tracebacks`)."""
    return _settings["full"]


def _is_library(filename: str) -> bool:
    if filename.startswith("<") and not filename.startswith(("<ipython-input", "<convex")):
        return True  # <frozen ...>, <string>
    return os.path.abspath(filename).startswith(_LIBRARY_DIRS)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return seen


def user_frames(exc: BaseException, tb: TracebackType | None = None) -> list[tuple[str, int, str, str]]:
    """``(filename, line, function, source)`` of the user's frames along the chain, in call order."""
    frames: list[tuple[str, int, str, str]] = []
    for index, link in enumerate(_chain(exc)):
        for frame, lineno in traceback.walk_tb(tb if index == 0 and tb is not None else link.__traceback__):
            name = frame.f_code.co_filename
            if _is_library(name):
                continue
            entry = (name, lineno, frame.f_code.co_name, linecache.getline(name, lineno, frame.f_globals).strip())
            if entry not in frames:
                frames.append(entry)
    return frames


def _where(shell: Any, filename: str, lineno: int, function: str) -> str:
    label = None
    compiler = getattr(shell, "compile", None)
    if compiler is not None and hasattr(compiler, "format_code_name"):
        named = compiler.format_code_name(filename)
        if named:
            label = f"{named[0]} {named[1]}"
    where = f"{label or filename}, line {lineno}"
    return where if function in ("<module>", "<cell line: 0>") else f"{where}, in {function}"


def short_traceback(shell: Any, exc: BaseException, tb: TracebackType | None) -> list[str]:
    """The lines shown for ``exc``: the error, then the user's frames."""
    from .display import short_error

    frames = user_frames(exc, tb)
    places = [(_where(shell, f, n, fn), src) for f, n, fn, src in frames]
    width = max((len(p) for p, _ in places), default=0)
    lines = [short_error(exc)]
    lines += [f"    {p + ':':<{width + 1}} {src}" for p, src in places]
    return lines


def show_error(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> list[str]:
    """IPython's custom exception handler for convex_notebook's errors (see module doc)."""
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb  # for %tb
    if full_tracebacks() or not _short_enabled(shell):
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return []
    colored = str(getattr(shell, "colors", "nocolor")).lower() != "nocolor"
    red, dim, reset = ("\x1b[0;31m", "\x1b[2m", "\x1b[0m") if colored else ("", "", "")
    if getattr(value, "_convex_short", False):
        from .display import short_error

        stb = [f"{red}{short_error(value)}{reset}  {dim}(full traceback: %tb){reset}"]
    else:
        lines = short_traceback(shell, value, tb)
        stb = [f"{red}{lines[0]}{reset}", *lines[1:], f"{dim}{HINT}{reset}"]
    shell._showtraceback(etype, value, stb)
    return stb


# Per shell (id): whether errors are short (the loaded magics' ``short_errors`` setting).
_short_errors: dict[int, Callable[[], bool]] = {}


def register_short_errors(shell: Any, setting: Callable[[], bool] | None) -> None:
    """Where ``shell``'s ``short_errors`` setting is read (None: forget it); registered by
    ``%load_ext convex_notebook``."""
    if setting is None:
        _short_errors.pop(id(shell), None)
    else:
        _short_errors[id(shell)] = setting


def _short_enabled(shell: Any) -> bool:
    setting = _short_errors.get(id(shell))
    return setting is None or setting()
