"""The error of a rejected import file."""

from __future__ import annotations

from ..engine.transaction import DatabaseError

__all__ = ["ImportFileError"]


class ImportFileError(DatabaseError):
    """An import file is malformed or its data is rejected: ``file`` and ``line`` say where
    (``line`` is 1-based, None when the problem is not on one line). Nothing was written."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        where = f"{file}, line {line}" if line is not None else file
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line
        self.reason = message
