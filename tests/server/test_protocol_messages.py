"""The pure protocol layer (no I/O): parsing client frames, encoding server frames."""

from __future__ import annotations

import json
import math

import pytest

import convex_notebook as cn
from convex_notebook.errors import InvalidValueError
from convex_notebook.server import protocol as P


def test_timestamps_are_u64_little_endian_base64() -> None:
    assert P.encode_ts(0) == "AAAAAAAAAAA="
    assert P.decode_ts(P.encode_ts(1795465791050000000)) == 1795465791050000000
    for bad in ("short", 5, "AAAA"):
        with pytest.raises(P.ProtocolError):
            P.decode_ts(bad)


def test_parse_recorded_client_frames() -> None:
    js = P.parse_client_message(
        '{"connectionCount":1,"lastCloseReason":"InactiveServer","clientTs":1795466012233,"type":"Connect",'
        '"sessionId":"97ff4f98","maxObservedTimestamp":"4Dk218TG6hg="}'
    )
    assert isinstance(js, P.Connect) and js.session_id == "97ff4f98" and js.connection_count == 1
    assert js.max_observed_ts == P.decode_ts("4Dk218TG6hg=")
    mqs = P.parse_client_message(
        '{"modifications":[{"args":[{}],"type":"Add","queryId":0,"udfPath":"messages.js:list"},'
        '{"type":"Remove","queryId":3}],"type":"ModifyQuerySet","baseVersion":0,"newVersion":1}'
    )
    assert isinstance(mqs, P.ModifyQuerySet) and (mqs.base_version, mqs.new_version) == (0, 1)
    assert mqs.modifications[0] == P.QueryAdd(0, "messages.js:list", [{}], None)
    assert mqs.modifications[1] == P.QueryRemove(3)
    m = P.parse_client_message('{"type":"Mutation","requestId":2.0,"udfPath":"m:f","args":[{"a":1}]}')
    assert m == P.MutationRequest(2, "m:f", [{"a": 1}])
    a = P.parse_client_message('{"type":"Authenticate","baseVersion":0,"tokenType":"Admin","value":"k",'
                               '"acting_as":{"subject":"u"}}')
    assert a == P.Authenticate(0, "Admin", "k", {"subject": "u"})
    assert isinstance(P.parse_client_message('{"type":"Event","eventType":"ClientConnect","event":{}}'), P.Event)


@pytest.mark.parametrize("frame", [
    "nope", "[]", "{}", '{"type":"X"}', '{"type":"Mutation","requestId":1.5,"udfPath":"a","args":[]}',
    '{"type":"Mutation","requestId":true,"udfPath":"a","args":[]}',
    '{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":{}}',
    '{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{"type":"Add","queryId":0}]}',
    '{"type":"Authenticate","baseVersion":0,"tokenType":"User"}',
    '{"type":"Connect","sessionId":""}',
])
def test_malformed_frames_raise_protocol_errors(frame: str) -> None:
    with pytest.raises(P.ProtocolError) as info:
        P.parse_client_message(frame)
    assert info.value.reason.startswith("BadClientMessage: ")


def test_arguments_wrapped_or_not_and_numbers_are_float64() -> None:
    assert P.decode_args([{"a": 1}]) == {"a": 1.0} and type(P.decode_args({"a": 1})["a"]) is float
    assert P.decode_args(None) == {}
    assert P.decode_args([{"i": {"$integer": "BQAAAAAAAAA="}}]) == {"i": cn.Int64(5)}
    for bad in ([{}, {}], "x", [3], {"$integer": "BQAAAAAAAAA="}, {"v": {"$set": []}}):
        with pytest.raises(InvalidValueError):
            P.decode_args(bad)


def test_server_messages() -> None:
    err = cn.ConvexError({"code": 42, "n": cn.Int64(1)})
    failed = P.query_failed(2, err, [], None)
    assert failed["errorData"] == {"code": 42.0, "n": {"$integer": "AQAAAAAAAAA="}}
    assert failed["errorMessage"].startswith("Uncaught ConvexError: ")
    assert "errorData" not in P.query_failed(2, ValueError("x"), [], None)
    ok = P.mutation_response(0, value_json="id1", ts=7, log_lines=["[LOG] hi"])
    assert ok == {"type": "MutationResponse", "requestId": 0, "success": True, "result": "id1",
                  "ts": P.encode_ts(7), "logLines": ["[LOG] hi"]}
    bad = P.mutation_response(1, error=err, ts=None, log_lines=[])
    assert bad["success"] is False and bad["ts"] is None and "errorData" in bad
    t = P.transition(P.StateVersion(), P.StateVersion(1, 0, 9), [P.query_updated(0, {"$float": "AAAAAAAA+H8="}, [], None)])
    text = P.dumps(t)
    assert json.loads(text)["endVersion"] == {"querySet": 1, "identity": 0, "ts": P.encode_ts(9)}
    assert "NaN" not in text
    with pytest.raises(ValueError):
        P.dumps({"x": math.nan})  # never a bare NaN token
    assert P.encoder_for(None)(cn.Int64(3)) == "3"
    assert P.encoder_for("convex_encoded_json")(cn.Int64(3)) == {"$integer": "AwAAAAAAAAA="}
    with pytest.raises(P.ProtocolError):
        P.encoder_for("xml")
