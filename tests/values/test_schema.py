"""Tests for convex_notebook.values.schema (define_schema / define_table / indexes)."""

from __future__ import annotations

import json

import pytest

from convex_notebook.errors import ValidationError
from convex_notebook.values._ids import id_table_number, new_id
from convex_notebook.values._model import MISSING, Int64
from convex_notebook.values.schema import (
    IndexDefinition,
    SchemaDefinition,
    SchemaDefinitionError,
    SearchIndexDefinition,
    TableDefinition,
    VectorIndexDefinition,
    define_schema,
    define_table,
)
from convex_notebook.values.validators import v

TABLES = {1: "lists", 2: "users", 3: "tasks"}


def id_table(s: str) -> str | None:
    n = id_table_number(s)
    return None if n is None else TABLES.get(n)


LIST_ID = new_id(1)
USER_ID = new_id(2)
TASK_ID = new_id(3)


def tasks_table() -> TableDefinition:
    return (
        define_table({"text": v.string(), "done": v.boolean(), "list": v.id("lists"),
                      "embedding": v.optional(v.array(v.float64()))})
        .index("by_list", ["list", "done"])
        .search_index("search_text", search_field="text", filter_fields=["list"])
        .vector_index("by_embedding", vector_field="embedding", dimensions=768, filter_fields=["list"])
    )


def full_schema() -> SchemaDefinition:
    return define_schema(
        {
            "tasks": tasks_table(),
            "lists": define_table(v.object({"name": v.string(), "meta": v.optional(v.record(v.string(), v.any()))}))
            .index("by_name", {"fields": ["name"], "staged": True}),
            "docs": define_table(
                v.union(
                    v.object({"kind": v.literal("s"), "value": v.string()}),
                    v.object({"kind": v.literal("n"), "value": v.number(), "big": v.optional(v.int64())}),
                )
            ),
            "blobs": define_table(v.any()),
        },
        schema_validation=False,
        strict_table_name_types=False,
    )


# --------------------------------------------------------------------------------------
# define_table
# --------------------------------------------------------------------------------------


def test_define_table_forms():
    fields = {"text": v.string()}
    assert define_table(fields).document_validator == v.object(fields)
    assert define_table(v.object(fields)).document_validator == v.object(fields)
    u = v.union(v.object({"a": v.string()}), v.object({"b": v.string()}))
    assert define_table(u).document_validator == u
    assert define_table(v.any()).document_validator == v.any()


@pytest.mark.parametrize(
    "bad",
    [
        v.string(),
        v.array(v.object({})),
        v.record(v.string(), v.any()),
        v.union(v.object({}), v.string()),
        v.union(),
        v.optional(v.object({})),
        v.nullable(v.object({})),
    ],
)
def test_define_table_rejects_non_object_validators(bad):
    with pytest.raises(SchemaDefinitionError):
        define_table(bad)


def test_define_table_rejects_non_validators():
    with pytest.raises(TypeError):
        define_table("text")  # type: ignore[arg-type]


def test_user_field_starting_with_underscore_is_rejected():
    with pytest.raises(SchemaDefinitionError, match="_a"):
        define_table({"_a": v.string()})


def test_system_fields_may_be_declared():
    t = define_table({"_id": v.id("tasks"), "_creationTime": v.number(), "text": v.string()})
    assert set(t.document_validator.fields) == {"_id", "_creationTime", "text"}


def test_field_names_inside_union_members_are_checked():
    with pytest.raises(SchemaDefinitionError, match="_b"):
        define_table(v.union(v.object({"a": v.string()}), v.object({"_b": v.string()})))
    with pytest.raises(SchemaDefinitionError):
        define_table(v.union(v.object({"a": v.string()}), v.object({"a-b": v.string()})))


def test_nested_underscore_fields_are_allowed():
    define_table({"a": v.object({"_private": v.string()})})


# --------------------------------------------------------------------------------------
# Indexes
# --------------------------------------------------------------------------------------


def test_index_definitions_are_recorded_without_creation_time():
    t = tasks_table()
    assert t.indexes == [IndexDefinition("by_list", ("list", "done"), False)]
    assert t.search_indexes == [SearchIndexDefinition("search_text", "text", ("list",), False)]
    assert t.vector_indexes == [VectorIndexDefinition("by_embedding", "embedding", 768, ("list",), False)]


def test_index_config_dict_and_staged():
    t = define_table({"a": v.string(), "b": v.string()})
    t.index("by_a", {"fields": ["a"], "staged": True}).index("by_b", ["b"], staged=True).index("by_ab", ("a", "b"))
    assert [(i.name, i.fields, i.staged) for i in t.indexes] == [
        ("by_a", ("a",), True),
        ("by_b", ("b",), True),
        ("by_ab", ("a", "b"), False),
    ]
    with pytest.raises(SchemaDefinitionError):
        t.index("by_c", {"fields": ["a"], "unique": True})


def test_chaining_returns_the_table():
    t = define_table({"a": v.string()})
    assert t.index("by_a", ["a"]) is t


def test_dotted_index_fields():
    t = define_table({"a": v.object({"b": v.string()})}).index("by_ab", ["a.b"])
    assert t.indexes[0].fields == ("a.b",)


@pytest.mark.parametrize(
    "name",
    ["_private", "by_id", "by_creation_time", "a-b", "1abc", "", "x" * 65, "with space"],
)
def test_bad_index_names(name):
    with pytest.raises(SchemaDefinitionError):
        define_table({"a": v.string()}).index(name, ["a"])


def test_index_name_of_64_chars_is_ok():
    define_table({"a": v.string()}).index("x" * 64, ["a"])


def test_index_names_unique_across_kinds():
    t = define_table({"a": v.string(), "e": v.array(v.float64())}).index("idx", ["a"])
    with pytest.raises(SchemaDefinitionError, match="Duplicate"):
        t.index("idx", ["a"])
    with pytest.raises(SchemaDefinitionError, match="Duplicate"):
        t.search_index("idx", search_field="a")
    with pytest.raises(SchemaDefinitionError, match="Duplicate"):
        t.vector_index("idx", vector_field="e", dimensions=3)


@pytest.mark.parametrize(
    "fields,phrase",
    [
        ([], "at least"),
        (["a", "a"], "duplicate"),
        (["_creationTime"], "automatically"),
        (["a", "_creationTime"], "automatically"),
        (["_id"], "_"),
        (["_a"], "_"),
        (["a..b"], "invalid field path"),
        (["a.b-c"], "invalid field path"),
        ([""], "invalid field path"),
        ([3], "strings"),
        ("a", "list"),
    ],
)
def test_bad_index_fields(fields, phrase):
    with pytest.raises(SchemaDefinitionError, match=phrase):
        define_table({"a": v.string()}).index("idx", fields)


def test_index_field_limit():
    fields = {f"f{i}": v.string() for i in range(16)}
    t = define_table(fields)
    t.index("fifteen", [f"f{i}" for i in range(15)])
    with pytest.raises(SchemaDefinitionError, match="too many fields"):
        t.index("sixteen", [f"f{i}" for i in range(16)])


def test_index_count_limit():
    t = define_table({"a": v.string()})
    for i in range(32):
        t.index(f"i{i}", ["a"])
    with pytest.raises(SchemaDefinitionError, match="32"):
        t.index("i32", ["a"])


def test_search_index_rules():
    t = define_table({"a": v.string(), "b": v.string()})
    t.search_index("s", {"searchField": "a", "filterFields": ["b"], "staged": True})
    assert t.search_indexes[0] == SearchIndexDefinition("s", "a", ("b",), True)
    with pytest.raises(SchemaDefinitionError):
        t.search_index("s2")
    with pytest.raises(SchemaDefinitionError):
        t.search_index("s3", search_field="_creationTime")
    with pytest.raises(SchemaDefinitionError):
        t.search_index("s4", search_field="a", filter_fields=["b", "b"])
    for i in range(1, 4):
        t.search_index(f"s_{i}", search_field="a")
    with pytest.raises(SchemaDefinitionError, match="at most 4"):
        t.search_index("s_5", search_field="a")


def test_vector_index_rules():
    t = define_table({"e": v.array(v.float64()), "s": v.string(), "anything": v.any()})
    t.vector_index("v2", vector_field="e", dimensions=2)
    t.vector_index("v4096", {"vectorField": "e", "dimensions": 4096, "filterFields": ["s"]})
    assert t.vector_indexes[1] == VectorIndexDefinition("v4096", "e", 4096, ("s",), False)
    for dims in (1, 4097, 0, -3, 2.5, True, None, "16"):
        with pytest.raises(SchemaDefinitionError, match="dimensions"):
            t.vector_index("bad", vector_field="e", dimensions=dims)
    with pytest.raises(SchemaDefinitionError, match="array of float64"):
        t.vector_index("bad", vector_field="s", dimensions=3)
    with pytest.raises(SchemaDefinitionError):
        t.vector_index("bad", dimensions=3)
    t.vector_index("v_any", vector_field="anything", dimensions=3)
    t.vector_index("v_4", vector_field="e", dimensions=3)
    with pytest.raises(SchemaDefinitionError, match="at most 4"):
        t.vector_index("v_5", vector_field="e", dimensions=3)


def test_vector_field_check_is_lenient_like_convex():
    # unknown nested fields, unions containing a float array, and v.any() documents all pass
    define_table(v.any()).vector_index("v", vector_field="x.y", dimensions=3)
    define_table({"e": v.union(v.null(), v.array(v.float64()))}).vector_index("v", vector_field="e", dimensions=3)
    with pytest.raises(SchemaDefinitionError):
        define_table({"e": v.array(v.int64())}).vector_index("v", vector_field="e", dimensions=3)


# --------------------------------------------------------------------------------------
# define_schema
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a-b", "_a", "", "1a", "x" * 65, "__", "a b"])
def test_bad_table_names(name):
    with pytest.raises(SchemaDefinitionError):
        define_schema({name: define_table({"a": v.string()})})


def test_table_name_must_be_string_and_value_a_table():
    with pytest.raises(SchemaDefinitionError):
        define_schema({1: define_table({})})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        define_schema({"t": {"a": v.string()}})  # type: ignore[dict-item]


def test_schema_options_and_tables():
    s = full_schema()
    assert set(s.tables) == {"tasks", "lists", "docs", "blobs"}
    assert s.schema_validation is False and s.strict_table_name_types is False
    d = define_schema({})
    assert d.schema_validation is True and d.strict_table_name_types is True
    with pytest.raises(SchemaDefinitionError):
        define_schema({}, schema_validation="yes")  # type: ignore[arg-type]


def test_schema_json_round_trip():
    s = full_schema()
    j = s.to_json()
    text = json.dumps(j)
    back = SchemaDefinition.from_json(json.loads(text))
    assert back == s
    assert json.dumps(back.to_json()) == text
    assert back.tables["lists"].indexes == [IndexDefinition("by_name", ("name",), True)]
    assert back.schema_validation is False


def test_table_json_round_trip_and_shape():
    t = tasks_table()
    j = t.to_json()
    assert j["documentType"]["type"] == "object"
    assert j["indexes"] == [{"indexDescriptor": "by_list", "fields": ["list", "done"], "staged": False}]
    assert j["searchIndexes"][0]["searchField"] == "text"
    assert j["vectorIndexes"][0]["dimensions"] == 768
    assert TableDefinition.from_json(json.loads(json.dumps(j))) == t


def test_schema_equality_detects_changes():
    a, b = full_schema(), full_schema()
    assert a == b
    b.tables["tasks"].index("by_done", ["done"])
    assert a != b
    c = full_schema()
    c.schema_validation = True
    assert a != c
    d = define_schema({**full_schema().tables, "tasks": define_table({"text": v.string()})},
                      schema_validation=False, strict_table_name_types=False)
    assert a != d


def test_from_json_rechecks_rules():
    j = define_schema({"t": define_table({"a": v.string()}).index("by_a", ["a"])}).to_json()
    j["tables"]["t"]["indexes"][0]["indexDescriptor"] = "by_id"
    with pytest.raises(SchemaDefinitionError):
        SchemaDefinition.from_json(j)
    with pytest.raises(SchemaDefinitionError):
        SchemaDefinition.from_json({"nope": 1})


def test_repr_mentions_tables_and_indexes():
    r = repr(full_schema())
    assert "define_schema(" in r and "'tasks'" in r and ".index('by_list', ['list', 'done'])" in r


# --------------------------------------------------------------------------------------
# validate_document
# --------------------------------------------------------------------------------------


def test_validate_document_returns_canonical_user_fields():
    t = full_schema().tables["tasks"]
    out = t.validate_document({"text": "hi", "done": False, "list": LIST_ID, "embedding": (1, 2)},
                              id_table=id_table)
    assert out == {"text": "hi", "done": False, "list": LIST_ID, "embedding": [1.0, 2.0]}
    assert type(out["embedding"][0]) is float


def test_validate_document_ignores_system_fields_of_stored_documents():
    t = full_schema().tables["tasks"]
    stored = {"_id": TASK_ID, "_creationTime": 1.0, "text": "hi", "done": True, "list": LIST_ID}
    out = t.validate_document(stored, id_table=id_table)
    assert out == {"text": "hi", "done": True, "list": LIST_ID}
    assert "_id" in stored  # the input is not modified


def test_validate_document_errors_name_table_document_and_path():
    t = full_schema().tables["tasks"]
    bad = {"_id": TASK_ID, "_creationTime": 1.0, "text": 5, "done": True, "list": LIST_ID}
    with pytest.raises(ValidationError) as info:
        t.validate_document(bad, id_table=id_table, doc_id=TASK_ID)
    msg = str(info.value)
    assert msg.startswith(f'Document with ID "{TASK_ID}" in table "tasks" does not match the schema: ')
    assert ".text" in msg and "Validator error" in msg
    assert info.value.path == ".text" and info.value.table == "tasks"


def test_validate_document_insert_errors():
    t = full_schema().tables["tasks"]
    with pytest.raises(ValidationError, match='table "tasks".*extra field `x`'):
        t.validate_document({"text": "a", "done": True, "list": LIST_ID, "x": 1}, id_table=id_table)
    with pytest.raises(ValidationError, match="missing the required field `done`"):
        t.validate_document({"text": "a", "list": LIST_ID}, id_table=id_table)
    # v.id rejects a plain string and an id of another table
    with pytest.raises(ValidationError, match='ID for table "lists"'):
        t.validate_document({"text": "a", "done": True, "list": "abc"}, id_table=id_table)
    with pytest.raises(ValidationError, match='"users"'):
        t.validate_document({"text": "a", "done": True, "list": USER_ID}, id_table=id_table)
    # array element types are checked
    with pytest.raises(ValidationError, match=r"\.embedding\[1\]"):
        t.validate_document({"text": "a", "done": True, "list": LIST_ID, "embedding": [1.0, "x"]},
                            id_table=id_table)
    with pytest.raises(ValidationError):
        t.validate_document(["not", "a", "doc"])


def test_validate_document_table_name_override():
    t = define_table({"a": v.string()})
    with pytest.raises(ValidationError, match='table "things"'):
        t.validate_document({}, table_name="things")
    s = define_schema({"stuff": t})
    with pytest.raises(ValidationError, match='table "stuff"'):
        t.validate_document({})
    with pytest.raises(ValidationError, match='table "stuff"'):
        s.validate_document("stuff", {})


def test_validate_document_union_table():
    t = full_schema().tables["docs"]
    assert t.validate_document({"kind": "n", "value": 1, "big": 3}) == {"kind": "n", "value": 1.0, "big": Int64(3)}
    assert t.validate_document({"kind": "s", "value": "x", "_id": "whatever"}) == {"kind": "s", "value": "x"}
    with pytest.raises(ValidationError, match="Expected one of"):
        t.validate_document({"kind": "s", "value": 1})


def test_validate_document_any_table():
    t = full_schema().tables["blobs"]
    assert t.validate_document({"x": (1,), "y": MISSING, "_id": "i"}) == {"x": [1.0]}


def test_declared_system_fields_are_checked_when_present():
    t = define_table({"_id": v.id("tasks"), "_creationTime": v.number(), "text": v.string()})
    # a new document has no system fields yet
    assert t.validate_document({"text": "a"}, id_table=id_table) == {"text": "a"}
    stored = {"_id": TASK_ID, "_creationTime": 2.0, "text": "a"}
    assert t.validate_document(stored, id_table=id_table) == {"text": "a"}
    with pytest.raises(ValidationError, match='ID for table "tasks"'):
        t.validate_document({**stored, "_id": USER_ID}, id_table=id_table, doc_id=USER_ID)


def test_schema_validate_document_helper():
    s = full_schema()
    assert s.validate_document("lists", {"name": "n", "meta": {"k": 1}}) == {"name": "n", "meta": {"k": 1.0}}
    with pytest.raises(ValidationError, match='table "lists"'):
        s.validate_document("lists", {"name": 1})
    with pytest.raises(KeyError):
        s.validate_document("nope", {})
