"""Rich display: cells, tables, results and errors (deterministic text, escaped HTML)."""

from __future__ import annotations

import math
import re

import convex_notebook as cn
from convex_notebook.notebook.display import (
    ErrorReport,
    QueryResult,
    format_cell,
    html_table,
    plural,
    short_error,
    tabulate,
)


def test_format_cell() -> None:
    assert format_cell("text") == "text"
    assert format_cell(None) == "null"
    assert format_cell(cn.MISSING) is None  # missing is not null
    assert format_cell(True) == "true"
    assert format_cell(3.0) == "3" and format_cell(0.5) == "0.5"
    assert format_cell(math.nan) == "nan"
    assert format_cell(cn.Int64(2**60)) == f"{2**60}n"
    assert format_cell(b"\x00\x01") == "<2 bytes>"
    assert format_cell({"a": [1, None, cn.Int64(1)]}) == '{"a": [1, null, "1n"]}'
    assert format_cell(1700000000000.5, "_creationTime") == "2023-11-14 22:13:20.000"
    assert len(format_cell("x" * 500)) == 120


def test_tabulate_shapes() -> None:
    docs = [{"_id": "a", "_creationTime": 0.0, "x": 1.0}, {"_id": "b", "_creationTime": 0.0, "y": "z"}]
    table = tabulate(docs)
    assert table.columns == ["_id", "x", "y", "_creationTime"]
    assert [k for k, _ in table.rows] == ["a", "b"]
    assert table.rows[1][1] == ["b", None, "z", "1970-01-01 00:00:00.000"]
    assert tabulate(docs, system_fields=False).columns == ["x", "y"]
    assert tabulate([1, "a"]).columns == ["value"]
    assert tabulate({"page": docs, "isDone": True, "continueCursor": "c"}).total == 2
    assert tabulate(docs[0]).total == 1  # one document
    assert tabulate({"not": "a doc"}) is None and tabulate(3) is None
    capped = tabulate([{"i": float(i)} for i in range(10)], max_rows=3)
    assert capped.shown == 3 and capped.total == 10 and capped.caption() == "showing 3 of 10 rows"


def test_query_result_text_and_html() -> None:
    result = QueryResult([{"name": "<b>Ada</b>", "n": 1.0}], name="people")
    assert repr(result) == "name        n\n----------  -\n<b>Ada</b>  1\n(showing 1 of 1 row)"
    page = result._repr_html_()
    assert "&lt;b&gt;Ada&lt;/b&gt;" in page and "<b>Ada</b>" not in page
    assert "people · showing 1 of 1 row" in page
    # every cell says it is left-aligned (JupyterLab right-aligns tables; <style> may be stripped)
    cells = re.findall(r"<t[dh][ >][^>]*>", page)
    assert len(cells) == 4 and all('align="left"' in c and "text-align:left" in c for c in cells)
    assert result == [{"name": "<b>Ada</b>", "n": 1.0}] and len(result) == 1
    assert repr(QueryResult({"a": 1})) == '{\n  "a": 1\n}'
    assert "<pre>" in QueryResult(42)._repr_html_()
    assert list(QueryResult(None)) == [None]


def test_plurals() -> None:
    assert [plural(n, "query") for n in (1, 2)] == ["1 query", "2 queries"]
    assert [plural(n, "function") for n in (0, 1, 1234)] == ["0 functions", "1 function", "1,234 functions"]
    assert plural(2, "key") == "2 keys" and plural(2, "index") == "2 indexes"


def test_errors() -> None:
    assert short_error(cn.ConvexError({"code": 1})) == 'ConvexError: {"code": 1}'
    assert short_error(cn.ConvexError("plain")) == "ConvexError: plain"
    assert short_error(cn.ValidationError("line one\nline two")) == "ValidationError: line one"
    report = ErrorReport(cn.ConvexError("no <way>"), name="tasks:add")
    assert repr(report) == "tasks:add: ConvexError: no <way>"
    assert "no &lt;way&gt;" in report._repr_html_()


def test_html_table_leaves_ids_out_of_markup() -> None:
    markup = html_table(tabulate([{"_id": "k1", "v": 1.0}], system_fields=False))
    assert "k1" not in markup and '<td align="left" style="text-align:left">1</td>' in markup


def test_backend_repr_counts_in_words() -> None:
    app = cn.Backend(echo_logs=False)
    assert repr(app) == "<Backend memory: 0 tables, 0 functions>"

    @app.query
    def q(ctx):
        return 1

    app.run(lambda ctx: ctx.db.insert("t", {}))
    assert repr(app) == "<Backend memory: 1 table, 1 function>"  # not "1 tables, 1 functions"
    app.close()
