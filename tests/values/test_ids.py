"""Document ids: Convex's DeveloperDocumentId format."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convex_notebook.errors import InvalidValueError
from convex_notebook.values import decode_id, encode_id, id_table_number, is_id, new_id

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def test_convex_stability_vector() -> None:
    # convex-backend id_v6.rs test_document_id_stability: table 1017, internal[i] = 251^(i+1).
    internal = bytearray([251])
    for _ in range(15):
        internal.append((internal[-1] * 251) % 256)
    s = encode_id(1017, bytes(internal))
    assert s == "z43zp6c3e75gkmz1kfwj6mbbx5sw281h"
    assert decode_id(s) == (1017, bytes(internal))


@pytest.mark.parametrize(
    "s",
    [
        # _id values of real Convex deployments, as published in public code.
        "j975k5n5553rsagnmzqhf0trfx6zx0ff",
        "j973961gev1c4m1md8zfa0n1fs81v18z",
        "j970zbrvzqqb7854m37n3bfa5n70cwwm",
        "j97espnfdkns0r0vbc2zknq8yx8a1ddh",
    ],
)
def test_real_convex_ids_decode(s: str) -> None:
    assert id_table_number(s) == 10002  # Convex numbers user tables from 10001
    table, internal = decode_id(s)  # type: ignore[misc]
    assert encode_id(table, internal) == s


def test_docs_storage_example_fails_its_checksum() -> None:
    # The example `_id` in the file-storage docs does not carry a valid footer, so Convex's
    # own decoder would refuse it as well.
    assert decode_id("3k7ty84apk2zy00ay4st1n5p9kh7tf8") is None


@pytest.mark.parametrize(
    "table, length",
    [(1, 31), (127, 31), (128, 32), (10001, 32), (16383, 32), (16384, 34), (2**32 - 1, 37)],
)
def test_id_lengths(table: int, length: int) -> None:
    s = new_id(table)
    assert len(s) == length
    assert set(s) <= set(ALPHABET)
    assert id_table_number(s) == table


def test_new_ids_are_random() -> None:
    ids = {new_id(10001) for _ in range(1000)}
    assert len(ids) == 1000


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=2**32 - 1), st.binary(min_size=16, max_size=16))
def test_round_trip(table: int, internal: bytes) -> None:
    s = encode_id(table, internal)
    assert decode_id(s) == (table, internal)
    assert is_id(s)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=2**21), st.binary(min_size=16, max_size=16))
def test_any_one_character_change_is_detected(table: int, internal: bytes) -> None:
    s = encode_id(table, internal)
    for i, c in enumerate(s):
        for replacement in ALPHABET:
            if replacement != c:
                changed = s[:i] + replacement + s[i + 1 :]
                assert decode_id(changed) is None, (s, changed)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "Not an ID",
        "z43zp6c3e75gkmz1kfwj6mbbx5sw281",  # truncated
        "z43zp6c3e75gkmz1kfwj6mbbx5sw281hh",  # extended
        "Z43ZP6C3E75GKMZ1KFWJ6MBBX5SW281H",  # upper case
        "z43zp6c3e75gkmz1kfwj6mbbx5sw28ih",  # 'i' is not in the alphabet
        "00000000000000000000000000000000",  # table number 0
        "_" * 32,
        None,
        12345,
    ],
)
def test_invalid_ids(bad: object) -> None:
    assert decode_id(bad) is None  # type: ignore[arg-type]
    assert id_table_number(bad) is None  # type: ignore[arg-type]
    assert not is_id(bad)


def test_encode_id_arguments() -> None:
    with pytest.raises(InvalidValueError):
        encode_id(0, bytes(16))
    with pytest.raises(InvalidValueError):
        encode_id(2**32, bytes(16))
    with pytest.raises(InvalidValueError):
        encode_id(5, bytes(15))
    with pytest.raises(InvalidValueError):
        new_id(0)
