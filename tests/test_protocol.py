import json
import math
from pathlib import Path

import numpy as np
import pytest

from parley.features import MAX_INPUT_RATE, MIN_INPUT_RATE
from server import protocol as P
from server.protocol import ProtocolError, ProtocolState, StartRequest, StopRequest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def start(**fields) -> str:
    d = {"type": "start", "sample_rate": 16000, "encoding": "s16le"}
    d.update(fields)
    return json.dumps({k: v for k, v in d.items() if v is not ...})


def test_minimal_start_gets_defaults() -> None:
    s = P.parse_start(start())
    assert s == StartRequest(sample_rate=16000, encoding="s16le")
    assert s.model is None and s.partials and s.search is None and s.language is None and s.translate == ()


def test_full_start() -> None:
    s = P.parse_start(
        start(
            sample_rate=48000.0,
            encoding="f32le",
            model="en-small",
            partials=False,
            search="beam",
            language="auto",
            translate=["en", "zh"],
        )
    )
    assert s == StartRequest(48000, "f32le", "en-small", False, "beam", "auto", ("en", "zh"))
    assert s.bytes_per_sample == 4


@pytest.mark.parametrize(
    ("text", "code", "close"),
    [
        ("{not json", P.BAD_JSON, P.CLOSE_UNSUPPORTED_DATA),
        ("[1, 2]", P.BAD_JSON, P.CLOSE_UNSUPPORTED_DATA),
        ('{"type": "hello"}', P.BAD_MESSAGE, P.CLOSE_POLICY),
        ('{"sample_rate": 16000}', P.BAD_MESSAGE, P.CLOSE_POLICY),
        ('{"type": "stop"}', P.NOT_STARTED, P.CLOSE_POLICY),
        (start(volume=3), P.UNKNOWN_FIELD, P.CLOSE_POLICY),
        (start(sample_rate=...), P.INVALID_VALUE, P.CLOSE_POLICY),
        (start(encoding=...), P.INVALID_VALUE, P.CLOSE_POLICY),
        (start(sample_rate="16000"), P.INVALID_VALUE, P.CLOSE_POLICY),
        (start(sample_rate=True), P.INVALID_VALUE, P.CLOSE_POLICY),
        (start(sample_rate=16000.5), P.INVALID_VALUE, P.CLOSE_POLICY),
        (start(sample_rate=4000), P.UNSUPPORTED_RATE, P.CLOSE_UNSUPPORTED_DATA),
        (start(sample_rate=384000), P.UNSUPPORTED_RATE, P.CLOSE_UNSUPPORTED_DATA),
        (start(encoding="opus"), P.UNSUPPORTED_ENCODING, P.CLOSE_UNSUPPORTED_DATA),
        (start(encoding=16), P.INVALID_VALUE, P.CLOSE_POLICY),
        (start(partials="yes"), P.INVALID_VALUE, P.CLOSE_POLICY),
        (start(search="viterbi"), P.INVALID_VALUE, P.CLOSE_POLICY),
        (start(model=""), P.INVALID_VALUE, P.CLOSE_POLICY),
        (start(model=7), P.INVALID_VALUE, P.CLOSE_POLICY),
        (start(language=["de"]), P.INVALID_VALUE, P.CLOSE_POLICY),
        (start(translate="en"), P.INVALID_VALUE, P.CLOSE_POLICY),
        (start(translate=["en", 3]), P.INVALID_VALUE, P.CLOSE_POLICY),
        (start(translate=["en", "en"]), P.INVALID_VALUE, P.CLOSE_POLICY),
    ],
)
def test_bad_start_messages(text: str, code: str, close: int) -> None:
    with pytest.raises(ProtocolError) as e:
        P.parse_start(text)
    assert (e.value.code, e.value.close_code) == (code, close), e.value
    assert e.value.to_message() == {"type": "error", "code": code, "message": e.value.message}
    assert e.value.message


def test_nan_rate_is_invalid() -> None:
    with pytest.raises(ProtocolError) as e:
        P.start_from_dict({"type": "start", "sample_rate": math.nan, "encoding": "s16le"})
    assert e.value.code == P.INVALID_VALUE


def test_every_error_code_has_a_close_code() -> None:
    for c in P.ERROR_CLOSE_CODES:
        assert ProtocolError(c, "x").close_code == P.ERROR_CLOSE_CODES[c]
    assert P.ERROR_CLOSE_CODES[P.SERVER_FULL] == 1013 and P.ERROR_CLOSE_CODES[P.TOO_BIG] == 1009
    assert ProtocolError(P.INTERNAL, "x", 1001).close_code == 1001


def test_alternatives() -> None:
    assert P.parse_start(start()).alternatives == 0
    assert P.parse_start(start(alternatives=3)).alternatives == 3
    assert P.parse_start(start(alternatives=3, search="beam")).alternatives == 3
    for fields in ({"alternatives": -1}, {"alternatives": 11}, {"alternatives": True}, {"alternatives": 2.5},
                   {"alternatives": 2, "search": "greedy"}):  # fmt: skip
        with pytest.raises(ProtocolError) as err:
            P.parse_start(start(**fields))
        assert err.value.code == P.INVALID_VALUE, fields


def test_endpointing() -> None:
    assert P.parse_start(start()).endpointing is None
    assert P.parse_start(start(endpointing=True)).endpointing is None
    assert P.parse_start(start(endpointing=False)).endpointing == P.Endpointing(enabled=False)
    e = P.parse_start(start(endpointing={"silence_after_speech_s": 0.5, "max_segment_s": 30})).endpointing
    assert e == P.Endpointing(True, None, 0.5, 30.0)
    for value, code in [
        ("yes", P.INVALID_VALUE),
        ({"pause_s": 1}, P.UNKNOWN_FIELD),
        ({"silence_after_speech_s": 0}, P.INVALID_VALUE),
        ({"silence_s": "2"}, P.INVALID_VALUE),
        ({"max_segment_s": 1e9}, P.INVALID_VALUE),
    ]:
        with pytest.raises(ProtocolError) as err:
            P.parse_start(start(endpointing=value))
        assert err.value.code == code, (value, err.value)


def test_decode_audio() -> None:
    x = np.array([0, 16384, -32768], dtype="<i2").tobytes()
    np.testing.assert_allclose(P.decode_audio_message(x, "s16le"), [0.0, 0.5, -1.0])
    f = np.array([0.25, -0.5], dtype="<f4").tobytes()
    np.testing.assert_allclose(P.decode_audio_message(f, "f32le"), [0.25, -0.5])
    assert P.decode_audio_message(b"", "s16le").size == 0
    # G.711: one byte a sample, so any byte count is whole samples (a telephone gateway's 20 ms frame is 160 bytes)
    np.testing.assert_allclose(P.decode_audio_message(b"\x80\xff\x00", "mulaw"), [32124 / 32768, 0.0, -32124 / 32768])
    np.testing.assert_allclose(P.decode_audio_message(b"\xaa\xd5\x55", "alaw"), [32256 / 32768, 8 / 32768, -8 / 32768])
    for encoding, width in (("s16le", 2), ("f32le", 4), ("mulaw", 1), ("alaw", 1)):
        assert P.parse_start(start(sample_rate=8000, encoding=encoding)).bytes_per_sample == width


@pytest.mark.parametrize(
    ("data", "encoding", "code", "close"),
    [
        (b"\x00\x01\x02", "s16le", P.BAD_AUDIO, 1003),
        (b"\x00" * 6, "f32le", P.BAD_AUDIO, 1003),
        (np.array([0.1, np.nan], dtype="<f4").tobytes(), "f32le", P.BAD_AUDIO, 1003),
        (np.array([np.inf], dtype="<f4").tobytes(), "f32le", P.BAD_AUDIO, 1003),
        (b"\x00" * 4096, "s16le", P.TOO_BIG, 1009),
    ],
)
def test_bad_audio(data: bytes, encoding: str, code: str, close: int) -> None:
    with pytest.raises(ProtocolError) as e:
        P.decode_audio_message(data, encoding, max_bytes=2048)
    assert (e.value.code, e.value.close_code) == (code, close), e.value


def test_state_machine_order() -> None:
    st = ProtocolState(max_message_bytes=4096)
    with pytest.raises(ProtocolError) as e:
        st.on_binary(b"\x00\x00")
    assert e.value.code == P.NOT_STARTED and e.value.close_code == 1008
    assert isinstance(st.on_text(start(sample_rate=8000)), StartRequest)
    assert st.on_binary(b"\x00\x00" * 800).size == 800
    assert st.seconds_received == pytest.approx(0.1)
    with pytest.raises(ProtocolError) as e:
        st.on_text(start())
    assert e.value.code == P.ALREADY_STARTED
    with pytest.raises(ProtocolError) as e:
        st.on_binary(b"\x00" * 5000)
    assert e.value.code == P.TOO_BIG and e.value.close_code == 1009
    with pytest.raises(ProtocolError) as e:
        st.on_text("x" * 5000)
    assert e.value.code == P.TOO_BIG
    with pytest.raises(ProtocolError) as e:
        st.on_text('{"type": "stop", "now": true}')
    assert e.value.code == P.UNKNOWN_FIELD
    # finalize: any number of times between start and stop, audio before and after
    assert isinstance(st.on_text('{"type": "finalize"}'), P.FinalizeRequest) and not st.stopped
    assert isinstance(st.on_text('{"type": "finalize"}'), P.FinalizeRequest)
    assert st.on_binary(b"\x00\x00" * 800).size == 800
    assert isinstance(st.on_text('{"type": "stop"}'), StopRequest)
    finalize = lambda: st.on_text('{"type": "finalize"}')  # noqa: E731
    for send in (lambda: st.on_binary(b"\x00\x00"), lambda: st.on_text('{"type": "stop"}'), finalize):
        with pytest.raises(ProtocolError) as e:
            send()
        assert e.value.code == P.AFTER_STOP


def test_message_builders() -> None:
    r = P.ready_message("s1", "en-small", 320, 48000, "s16le", search="beam", max_message_bytes=1 << 20)
    assert r["type"] == "ready" and r["protocol"] == P.PROTOCOL_VERSION and r["max_message_bytes"] == 1 << 20
    p = P.partial_message(0, "hello", 0.0, 1.23456)
    assert p == {"type": "partial", "segment": 0, "text": "hello", "start": 0.0, "end": 1.235}
    f = P.final_message(1, "hi there", 2.0, 3.5, [P.Word("hi", 2.1, 2.3), {"word": "there", "start": 2.4, "end": 2.9}])
    assert f["words"] == [{"word": "hi", "start": 2.1, "end": 2.3}, {"word": "there", "start": 2.4, "end": 2.9}]
    sure = P.final_message(
        0, "hi", 0.0, 1.0, [P.Word("hi", 0.1, 0.3, conf=0.98765), {"word": "x", "start": 0.4, "end": 0.5, "conf": 1.2}]
    )
    assert [w["conf"] for w in sure["words"]] == [0.988, 1.0]
    assert P.end_message() == {"type": "end"}
    t = P.transcript_response("en-small", 3.5, [P.final_message(0, "a", 0, 1), P.final_message(1, "b", 1, 2)])
    assert t["text"] == "a b" and len(t["segments"]) == 2
    assert json.loads(P.dumps(P.partial_message(0, "grüße", 0, 1)))["text"] == "grüße"
    assert "ü" in P.dumps({"t": "ü"})


def test_api_keys() -> None:
    assert P.api_key_from_request({"authorization": "Bearer k1"}, {}) == "k1"
    assert P.api_key_from_request({"x-api-key": "k2"}, {}) == "k2"
    assert P.api_key_from_request({}, {"api_key": "k3"}) == "k3"
    assert P.api_key_from_request({"authorization": "Basic abc"}, {}) is None


# ---- The JSON Schema in docs/ agrees with the code ----


def _check(schema: dict, msg: dict, defs: dict) -> None:
    """A minimal JSON Schema check (required, properties, additionalProperties, const, enum, type) - enough for the
    flat messages of the protocol, without a jsonschema dependency."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[1]]
    if "oneOf" in schema:
        fits = 0
        for branch in schema["oneOf"]:
            try:
                _check(branch, msg, defs)
                fits += 1
            except AssertionError:
                pass
        assert fits == 1, f"{msg!r} fits {fits} of the schema's oneOf branches"
    types = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list, "object": dict}
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(
            (msg is None if k == "null" else isinstance(msg, types[k]) and not (k != "boolean" and msg is True))
            for k in kinds
        )
        assert ok, f"{msg!r} is not {kinds}"
    if "const" in schema:
        assert msg == schema["const"], f"{msg!r} != {schema['const']!r}"
    if "enum" in schema:
        assert msg in schema["enum"], f"{msg!r} not in {schema['enum']}"
    if isinstance(msg, dict):
        for key in schema.get("required", []):
            assert key in msg, f"{key} missing from {msg}"
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            assert set(msg) <= set(props), f"{set(msg) - set(props)} not in the schema"
        for key, value in msg.items():
            if key in props:
                _check(props[key], value, defs)
    if isinstance(msg, list) and "items" in schema:
        for item in msg:
            _check(schema["items"], item, defs)


def test_schema_matches_the_builders() -> None:
    schema = json.loads((DOCS / "protocol.schema.json").read_text())
    defs = schema["$defs"]
    assert set(defs["start"]["properties"]) == set(P.START_FIELDS)
    assert set(defs["start"]["required"]) == {k for k, req in P.START_FIELDS.items() if req}
    rates = defs["start"]["properties"]["sample_rate"]
    assert (rates["minimum"], rates["maximum"]) == (MIN_INPUT_RATE, MAX_INPUT_RATE) == (8000, 192000)
    for rate in (8000, 44100, 96000, 192000):  # studio rates too: resampling them costs 1-1.5 ms a second
        assert P.parse_text_message(start(sample_rate=rate)).sample_rate == rate
    _check(defs["start"], json.loads(start(model="en-small", search="greedy", translate=["de"])), defs)
    _check(defs["stop"], {"type": "stop"}, defs)
    _check(defs["finalize"], {"type": "finalize"}, defs)
    for context in ({"type": "context", "hotwords": ["kowalczyk", {"phrase": "zentrix labs", "boost": 3}]},):
        _check(defs["context"], context, defs)
        assert P.parse_text_message(json.dumps(context)) == P.ContextRequest((("kowalczyk", None), ("zentrix labs", 3)))
    _check(defs["context"], {"type": "context", "hotwords": []}, defs)
    learned = {"phrase": "lombardi", "boost": 2.5, "sounds_like": ["lambary", "long bary"]}
    for kind in ("start", "context"):
        msg = json.loads(start(hotwords=[learned])) if kind == "start" else {"type": "context", "hotwords": [learned]}
        _check(defs[kind], msg, defs)
        parsed = P.parse_text_message(json.dumps(msg))
        assert parsed.hotwords == (("lombardi", 2.5),)
        assert parsed.sounds_like == (("lombardi", ("lambary", "long bary")),)
    for bad in ("lambary", [""], ["x" * 65], ["a"] * 17, [3]):
        with pytest.raises(P.ProtocolError, match="sounds_like"):
            P.parse_text_message(json.dumps({"type": "context", "hotwords": [{"phrase": "x", "sounds_like": bad}]}))
    _check(defs["start"], json.loads(start(endpointing={"silence_after_speech_s": 0.5})), defs)
    _check(defs["start"], json.loads(start(endpointing=False)), defs)
    _check(defs["start"], json.loads(start(alternatives=3)), defs)
    _check(defs["start"], json.loads(start(channels=2)), defs)
    assert P.start_from_dict(json.loads(start(channels=2))).channels == 2
    alternatives = [{"text": "hi", "confidence": 0.8}, {"text": "high", "confidence": 0.2}]
    _check(defs["final"], P.final_message(0, "hi", 0, 0.5, alternatives=alternatives), defs)
    assert set(defs["endpointing"]["oneOf"][1]["properties"]) == set(P.ENDPOINT_BOUNDS)
    from server.endpoint import EndpointConfig

    for rules in (EndpointConfig(), EndpointConfig(enabled=False)):
        _check(defs["ready"], P.ready_message("s", "en", 320, 16000, "s16le", endpointing=rules.describe()), defs)
    assert isinstance(P.parse_text_message('{"type": "finalize"}'), P.FinalizeRequest)
    _check(defs["final"], {**P.final_message(0, "", 1.0, 1.0), "finalized": True}, defs)
    _check(defs["ready"], P.ready_message("s", "en-small", 320, 16000, "s16le"), defs)
    _check(defs["partial"], P.partial_message(0, "hi", 0, 0.32), defs)
    _check(defs["partial"], P.partial_message(0, "hi there", 0, 0.32, stable=2), defs)
    _check(defs["final"], P.final_message(0, "hi", 0, 0.5, [P.Word("hi", 0.1, 0.3)]), defs)
    _check(defs["final"], P.final_message(0, "hi", 0, 0.5, [P.Word("hi", 0.1, 0.3, conf=0.87654)]), defs)
    with_talkers = P.final_message(0, "hi", 0, 0.5, [P.Word("hi", 0.1, 0.3, talker=2)], talkers=[2, None])
    _check(defs["final"], with_talkers, defs)
    assert with_talkers["words"][0]["talker"] == 2
    _check(defs["end"], P.end_message(), defs)
    _check(defs["error"], P.error_message(P.BAD_AUDIO, "odd"), defs)
    assert set(defs["error"]["properties"]["code"]["enum"]) == set(P.ERROR_CLOSE_CODES)
    _check(defs["transcript"], P.transcript_response("en", 1.0, [P.final_message(0, "hi", 0, 0.5)]), defs)
