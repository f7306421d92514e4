"""Convex value sizes (getConvexSize)."""

from __future__ import annotations

from typing import Any

import pytest

from convex_notebook.values import Int64, document_size, format_size, value_size


@pytest.mark.parametrize(
    "v, size",
    [
        (None, 1),
        (True, 1),
        (False, 1),
        (Int64(5), 9),
        (1.5, 9),
        ("", 2),
        ("abc", 5),
        ("é", 4),  # 2 UTF-8 bytes
        ("😀", 6),  # 4 UTF-8 bytes
        (b"", 2),
        (b"abc", 5),
        ([], 2),
        ([1.0, "a"], 2 + 9 + 3),
        ({}, 2),
        ({"ab": 1.0}, 2 + 2 + 1 + 9),
        ({"a": {"b": [None]}}, 2 + (1 + 1 + (2 + (1 + 1 + (2 + 1))))),
    ],
)
def test_value_size(v: Any, size: int) -> None:
    assert value_size(v) == size


def test_document_size_counts_system_fields() -> None:
    doc = {"_id": "z43zp6c3e75gkmz1kfwj6mbbx5sw281h", "_creationTime": 1.0, "a": "x"}
    assert document_size(doc) == 2 + (3 + 1 + 34) + (13 + 1 + 9) + (1 + 1 + 3)


@pytest.mark.parametrize(
    "n, text",
    [(512, "512 B"), (1024, "1 KiB"), (1536, "1.5 KiB"), (2**20, "1 MiB"), (1_100_063, "1.05 MiB")],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text
