"""Snapshot ZIPs and single-table files in Convex's formats; all-or-nothing imports."""

from __future__ import annotations

import json
import math
import os
import zipfile

import pytest

import convex_notebook as cn
from convex_notebook.io import from_export_json, to_export_json
from convex_notebook.values import values_equal


@pytest.fixture
def app():
    backend = cn.Backend(echo_logs=False)
    yield backend
    backend.close()


def all_docs(app, table):
    return app.run(lambda ctx: ctx.db.query(table).collect())


def same(a, b):
    return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))


def fill(app):
    lid = app.run(lambda ctx: ctx.db.insert("lists", {"name": "groceries"}))
    values = {
        "list": lid, "n": cn.Int64(-(2**63)), "f": 1.0, "nan": math.nan, "inf": -math.inf, "z": -0.0,
        "b": b"\x00\xff", "arr": [1.5, "s", None, {"a": cn.Int64(3)}], "t": True, "big": 2.0**60,
    }
    app.run(lambda ctx: [ctx.db.insert("tasks", dict(values, i=float(i))) for i in range(5)])
    app.run(lambda ctx: ctx.db.insert("empty_soon", {}))
    app.run(lambda ctx: ctx.db.delete(ctx.db.query("empty_soon").first()["_id"]))
    return lid


def test_export_json_values():
    v = {"i": cn.Int64(42), "f": 42.0, "z": -0.0, "nan": math.nan, "b": b"ab", "l": [cn.Int64(1), 1.0]}
    text = json.dumps(to_export_json(v))
    assert '"i": 42' in text and '"f": 42.0' in text and '"z": -0.0' in text
    assert '"$float"' in text and '"$bytes": "YWI="' in text
    back = from_export_json(json.loads(text))
    assert values_equal(back, v) and type(back["i"]) is cn.Int64 and type(back["f"]) is float


def test_snapshot_layout_matches_convex(app, tmp_path):
    fill(app)
    path = app.export_snapshot(tmp_path)  # a directory: snapshot_<ns>.zip inside
    assert path.startswith(str(tmp_path)) and path.rsplit("/", 1)[1].startswith("snapshot_")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert {"README.md", "_tables/documents.jsonl", "tasks/documents.jsonl", "tasks/generated_schema.jsonl",
                "lists/documents.jsonl", "empty_soon/documents.jsonl"} <= names
        tables = [json.loads(line) for line in zf.read("_tables/documents.jsonl").decode().splitlines()]
        assert [t["name"] for t in tables] == ["lists", "tasks", "empty_soon"]  # table-number order
        assert all(set(t) == {"name", "id"} and isinstance(t["id"], int) for t in tables)
        assert zf.read("tasks/generated_schema.jsonl").decode() == '"uniform"\n'
        lines = zf.read("tasks/documents.jsonl").decode().splitlines()
        assert len(lines) == 5
        first = json.loads(lines[0])
        assert first["n"] == -(2**63) and first["b"] == {"$bytes": "AP8="}
        assert zf.read("empty_soon/documents.jsonl") == b""


def test_snapshot_round_trip_keeps_ids_times_and_references(app, tmp_path):
    fill(app)
    path = app.export_snapshot(tmp_path / "s.zip")
    other = cn.Backend(echo_logs=False)
    assert other.import_snapshot(path) == {"empty_soon": 0, "lists": 1, "tasks": 5}
    for table in ("lists", "tasks"):
        assert same(all_docs(other, table), all_docs(app, table))
    task = all_docs(other, "tasks")[0]
    assert other.run(lambda ctx: ctx.db.get(task["list"]))["name"] == "groceries"
    # new inserts after an import still get later creation times
    new = other.run(lambda ctx: ctx.db.get(ctx.db.insert("tasks", {})))
    assert new["_creationTime"] > max(d["_creationTime"] for d in all_docs(other, "tasks")[:-1])
    other.close()


def test_snapshot_into_deployment_with_clashing_table_numbers(app, tmp_path):
    fill(app)
    path = app.export_snapshot(tmp_path / "s.zip")
    other = cn.Backend(echo_logs=False)
    other.run(lambda ctx: ctx.db.insert("unrelated", {"x": 1.0}))  # takes the first table number
    other.import_snapshot(path)
    task = all_docs(other, "tasks")[0]
    assert other.run(lambda ctx: ctx.db.get(task["list"]))["name"] == "groceries"  # ids rewritten consistently
    assert other.run(lambda ctx: ctx.db.get(task["_id"]))["i"] == 0.0
    assert len(all_docs(other, "unrelated")) == 1
    other.close()


def test_snapshot_modes(app, tmp_path):
    fill(app)
    path = app.export_snapshot(tmp_path / "s.zip")
    with pytest.raises(cn.ImportFileError, match="already has"):
        app.import_snapshot(path)
    app.run(lambda ctx: ctx.db.insert("tasks", {"extra": True}))
    app.import_snapshot(path, mode="replace")
    assert len(all_docs(app, "tasks")) == 5 and not any("extra" in d for d in all_docs(app, "tasks"))
    with pytest.raises(cn.ImportFileError, match="already exists"):
        app.import_snapshot(path, mode="append")  # the same ids again
    assert len(all_docs(app, "tasks")) == 5


def _zip(tmp_path, files):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def test_bad_snapshots_name_file_and_line_and_write_nothing(app, tmp_path):
    fill(app)
    good = zipfile.ZipFile(app.export_snapshot(tmp_path / "s.zip"))
    files = {n: good.read(n).decode() for n in good.namelist()}
    target = cn.Backend(echo_logs=False)
    target.run(lambda ctx: ctx.db.insert("keep", {"x": 1.0}))

    def attempt(mutate, match):
        broken = dict(files)
        mutate(broken)
        with pytest.raises(cn.ImportFileError, match=match) as info:
            target.import_snapshot(_zip(tmp_path, broken))
        assert target.table_names() == ["keep"] and len(all_docs(target, "keep")) == 1
        return info.value

    lines = files["tasks/documents.jsonl"].splitlines()
    err = attempt(lambda f: f.__setitem__("tasks/documents.jsonl", "\n".join(lines[:3] + ["{not json"] + lines[3:])),
                  r"tasks/documents.jsonl, line 4: not valid JSON")
    assert err.file == "tasks/documents.jsonl" and err.line == 4
    attempt(lambda f: f.__setitem__("tasks/documents.jsonl", "\n".join(lines[:2] + ["[1, 2]"])),
            r"line 3: expected a JSON object")
    attempt(lambda f: f.__setitem__("tasks/documents.jsonl", lines[0] + "\n" + lines[0]),
            r"line 2: _id .* appears twice")
    attempt(lambda f: f.__setitem__("tasks/documents.jsonl", '{"$bad": 1}'), r"line 1")
    attempt(lambda f: f.__setitem__("tasks/documents.jsonl", '{"_creationTime": "yesterday"}'),
            r"line 1: _creationTime must be")
    attempt(lambda f: f.__setitem__("tasks/generated_schema.jsonl", '"{\\"x\\": int64}"\n'), r"legacy")
    with pytest.raises(cn.ImportFileError, match="not a Convex snapshot"):
        target.import_snapshot(_zip(tmp_path, {"README.md": "hi", "notes.txt": "x"}))
    (tmp_path / "junk.zip").write_bytes(b"this is not a zip")
    with pytest.raises(cn.ImportFileError, match="not a ZIP file"):
        target.import_snapshot(tmp_path / "junk.zip")
    assert target.table_names() == ["keep"]
    target.close()


def test_snapshot_without_generated_schema_reads_plain_json(app, tmp_path):
    path = _zip(tmp_path, {"things/documents.jsonl": '{"a": 1, "b": "x"}\n{"a": 2.5}\n'})
    assert app.import_snapshot(path) == {"things": 2}
    docs = all_docs(app, "things")
    assert docs[0]["a"] == 1.0 and type(docs[0]["a"]) is float and docs[1]["a"] == 2.5


def test_table_jsonl_round_trip(app, tmp_path):
    fill(app)
    out = tmp_path / "tasks.jsonl"
    assert app.export_table("tasks", out) == 5
    other = cn.Backend(echo_logs=False)
    assert other.import_table("tasks", out) == 5
    # single-table import keeps _id/_creationTime; the list ids point to a table "other" lacks
    assert same(all_docs(other, "tasks"), all_docs(app, "tasks"))
    other.close()


def test_table_export_encodings(app, tmp_path):
    app.run(lambda ctx: ctx.db.insert("t", {"n": cn.Int64(7), "b": b"\x01"}))
    app.export_table("t", tmp_path / "e.jsonl", encoding="export")
    app.export_table("t", tmp_path / "c.jsonl", encoding="clean")
    assert json.loads((tmp_path / "e.jsonl").read_text())["n"] == 7
    clean = json.loads((tmp_path / "c.jsonl").read_text())
    assert clean["n"] == "7" and clean["b"] == "AQ=="
    other = cn.Backend(echo_logs=False)
    other.import_table("t", tmp_path / "e.jsonl", encoding="export")
    assert type(all_docs(other, "t")[0]["n"]) is cn.Int64
    other.close()


def test_import_json_array_and_csv(app, tmp_path):
    (tmp_path / "a.json").write_text('[\n{"x": 1},\n{"x": {"$integer": "BQAAAAAAAAA="}}\n]')
    assert app.import_table("arr", tmp_path / "a.json") == 2
    assert [d["x"] for d in all_docs(app, "arr")] == [1.0, cn.Int64(5)]
    (tmp_path / "c.csv").write_text('name, age,score\nada,36,1e3\n"b, c",,NaN\nzed,0x10,+2\n')
    assert app.import_table("people", tmp_path / "c.csv") == 3
    rows = [{k: v for k, v in d.items() if not k.startswith("_")} for d in all_docs(app, "people")]
    assert rows == [
        {"name": "ada", "age": 36.0, "score": 1000.0},
        {"name": "b, c", "age": "", "score": None},  # empty → "", NaN → null (as Convex)
        {"name": "zed", "age": "0x10", "score": 2.0},
    ]
    app.export_table("people", tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text().splitlines()[0] == "_id,_creationTime,name,age,score"


def test_table_import_modes_and_clearing(app, tmp_path):
    (tmp_path / "one.jsonl").write_text('{"a": 1}\n')
    (tmp_path / "empty.jsonl").write_text("")
    app.import_table("t", tmp_path / "one.jsonl")
    with pytest.raises(cn.ImportFileError, match="already has 1 documents"):
        app.import_table("t", tmp_path / "one.jsonl")
    app.import_table("t", tmp_path / "one.jsonl", mode="append")
    assert len(all_docs(app, "t")) == 2
    assert app.import_table("t", tmp_path / "empty.jsonl", mode="replace") == 0  # clears the table
    assert all_docs(app, "t") == []


def test_bad_table_files_write_nothing(app, tmp_path):
    app.import_table("t", _write(tmp_path, "ok.jsonl", '{"a": 1}\n'))
    cases = [
        ("bad.jsonl", '{"a": 2}\n{"a": 3,}\n', r"bad.jsonl, line 2: not valid JSON"),
        ("badfield.jsonl", '{"a": 2}\n\n{"_secret": 1}\n', r"badfield.jsonl, line 3"),
        ("badid.jsonl", '{"_id": "nope"}\n', r"line 1: _id 'nope' is not a valid document id"),
        ("bad.json", '[{"a": 1},\n 5]', r"bad.json, line 2: expected a JSON object"),
        ("broken.json", '[{"a": 1},\n {"a": ]', r"broken.json, line 2: not valid JSON"),
        ("short.csv", "a,b\n1,2\n3\n", r"short.csv, line 3: this row has 1 fields"),
        ("bom.jsonl", '\ufeff{"a": 1}\n', r"byte order mark"),
    ]
    for name, text, match in cases:
        with pytest.raises(cn.ImportFileError, match=match):
            app.import_table("t", _write(tmp_path, name, text), mode="replace")
        assert [d["a"] for d in all_docs(app, "t")] == [1.0], name
    (tmp_path / "latin1.jsonl").write_bytes(b'{"a": "\xe9"}\n')
    with pytest.raises(cn.ImportFileError, match="line 1: not UTF-8"):
        app.import_table("t", tmp_path / "latin1.jsonl", mode="append")
    with pytest.raises(ValueError, match="format"):
        app.import_table("t", _write(tmp_path, "data.txt", "{}"))


def test_schema_validation_applies_to_imports(app, tmp_path):
    from convex_notebook import v

    app.set_schema(cn.define_schema({"t": cn.define_table({"a": v.float64()})}))
    with pytest.raises(cn.ImportFileError, match=r"s.jsonl, line 2"):
        app.import_table("t", _write(tmp_path, "s.jsonl", '{"a": 1}\n{"a": "x"}\n'))
    assert all_docs(app, "t") == []


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_writes_whole_numbers_as_javascript_does(app, tmp_path):
    source = tmp_path / "sales.csv"
    source.write_text("product,units,price\napples,120,0.5\n")
    app.import_table("sales", source)
    assert app.run(lambda ctx: ctx.db.query("sales").first())["units"] == 120.0
    out = tmp_path / "out.csv"
    app.export_table("sales", out)
    header, row = out.read_text().splitlines()
    assert row.endswith(",apples,120,0.5")  # not 120.0
    app.import_table("again", out)
    again = app.run(lambda ctx: ctx.db.query("again").first())
    assert again["units"] == 120.0 and isinstance(again["units"], float)


def test_exports_into_missing_folders_say_so(app, tmp_path):
    app.run(lambda ctx: ctx.db.insert("t", {"a": 1}))
    with pytest.raises(FileNotFoundError, match=r"the folder .*missing/ does not exist"):
        app.export_table("t", tmp_path / "missing" / "t.csv")
    with pytest.raises(FileNotFoundError, match=r"the folder .*missing/ does not exist"):
        app.export_snapshot(tmp_path / "missing" / "s.zip")
    written = app.export_snapshot(str(tmp_path / "backups") + "/")  # a folder path: created
    assert os.path.dirname(written) == str(tmp_path / "backups") and not (tmp_path / "missing").exists()


def test_json_nested_too_deep_names_the_file_and_line(app, tmp_path):
    deep = "[" * 100_000 + "]" * 100_000  # past the parser's recursion limit
    app.import_table("t", _write(tmp_path, "ok.jsonl", '{"a": 1}\n'))
    for name, text, match in [
        ("deep.jsonl", '{"a": 2}\n{"a": ' + deep + "}\n", r"deep.jsonl, line 2: .*nested too deeply"),
        ("deep.json", '[{"a": 2},\n {"a": ' + deep + "}]", r"deep.json: JSON nested too deeply"),
    ]:
        with pytest.raises(cn.ImportFileError, match=match):
            app.import_table("t", _write(tmp_path, name, text), mode="replace")
        assert [d["a"] for d in all_docs(app, "t")] == [1.0], name
    fill(app)
    good = zipfile.ZipFile(app.export_snapshot(tmp_path / "s.zip"))
    files = {n: good.read(n).decode() for n in good.namelist()}
    for entry in ("tasks/documents.jsonl", "_tables/documents.jsonl", "tasks/generated_schema.jsonl"):
        target = cn.Backend(echo_logs=False)
        with pytest.raises(cn.ImportFileError, match=rf"{entry}, line 1: .*nested too deeply"):
            target.import_snapshot(_zip(tmp_path, {**files, entry: deep + "\n"}))
        assert target.table_names() == []
        target.close()


@pytest.mark.parametrize("listing", [
    '{"name": "tasks", "id": 1e999}',  # a float no int() takes
    '{"name": "tasks", "id": 99999999999999999999999}',  # past SQLite's integers
    '{"name": "tasks", "id": -5}',
    '{"name": "tasks", "id": 0}',
    '{"name": 5, "id": 10001}',
])
def test_bad_table_numbers_in_a_snapshot_name_the_listing(app, tmp_path, listing):
    fill(app)
    good = zipfile.ZipFile(app.export_snapshot(tmp_path / "s.zip"))
    files = {n: good.read(n).decode() for n in good.namelist()}
    lines = files["_tables/documents.jsonl"].splitlines()
    at = next(i for i, line in enumerate(lines) if '"tasks"' in line)
    lines[at] = listing
    target = cn.Backend(echo_logs=False)
    with pytest.raises(cn.ImportFileError, match=rf"_tables/documents.jsonl, line {at + 1}: "):
        target.import_snapshot(_zip(tmp_path, {**files, "_tables/documents.jsonl": "\n".join(lines) + "\n"}))
    assert target.table_names() == []
    target.close()


def test_a_table_twice_in_a_snapshot_is_refused_not_half_read(app, tmp_path):
    # e.g. an export unzipped and zipped again beside the original: which copy wins was the
    # order of the ZIP's entries, and the other was dropped silently
    fill(app)
    good = zipfile.ZipFile(app.export_snapshot(tmp_path / "s.zip"))
    files = {n: good.read(n).decode() for n in good.namelist()}
    copy = {**files, "old/tasks/documents.jsonl": '{"stale": true}\n'}
    target = cn.Backend(echo_logs=False)
    with pytest.raises(cn.ImportFileError, match=r"old/tasks/documents.jsonl: table 'tasks' is also in tasks/documents.jsonl"):
        target.import_snapshot(_zip(tmp_path, copy))
    assert target.table_names() == []
    target.close()
