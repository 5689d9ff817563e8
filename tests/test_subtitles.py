"""Subtitles (server/subtitles.py) from finals, `POST /v1/transcribe?format=`, and `parley transcribe`."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from parley.audio import write_wav
from server import providers
from server.service import default_model
from server.settings import DEFAULT_MODEL
from server.subtitles import MAX_CUE_S, MAX_LINE_CHARS, MIN_CUE_S, cues, layout, render
from server.transcribe import InputError, Progress, find_bundle
from server.transcribe import main as transcribe_main
from tests.test_export import SR
from tests.test_server import Running, _wav, audio, running


def _final(words: list[tuple[str, float, float]], segment: int = 0) -> dict:
    return {
        "type": "final",
        "segment": segment,
        "text": " ".join(w for w, _, _ in words),
        "start": words[0][1] if words else 0.0,
        "end": words[-1][2] if words else 0.0,
        "words": [{"word": w, "start": a, "end": b, "conf": 0.9} for w, a, b in words],
    }


def test_layout_balances_two_lines_and_refuses_three() -> None:
    assert layout(["set", "a", "timer"]) == ["set a timer"]
    words = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "and", "runs", "into", "a", "wood"]
    lines = layout(words)
    assert lines is not None and len(lines) == 2 and all(len(x) <= MAX_LINE_CHARS for x in lines)
    assert abs(len(lines[0]) - len(lines[1])) <= 8, lines  # balanced, not a full line and a stub
    assert layout(["word"] * 30) is None  # 149 characters: more than two lines
    assert layout(["x" * 60]) == ["x" * 60]  # a word longer than a line cannot be cut


def test_long_finals_are_cut_at_words_into_readable_cues() -> None:
    # 40 words, 0.3 s each: 12 s of speech in one final.
    words = [(f"word{i}", 0.3 * i, 0.3 * i + 0.25) for i in range(40)]
    out = cues([_final(words), _final([("ok", 13.0, 13.2)], 1)])
    assert [line for c in out[:-1] for line in c.lines] and out[-1].lines == ("ok",)
    spoken = " ".join(" ".join(c.lines) for c in out[:-1]).split()
    assert spoken == [w for w, _, _ in words]  # every word once, in order, no cue spans two finals
    for c in out:
        assert len(c.lines) <= 2 and all(len(x) <= MAX_LINE_CHARS for x in c.lines), c
        assert c.end - c.start <= MAX_CUE_S + 1e-9, c
    for a, b in itertools.pairwise(out):
        assert a.end <= b.start + 1e-9, (a, b)
    assert out[-1].end - out[-1].start == pytest.approx(MIN_CUE_S)  # "ok" (0.2 s) is held for a second


def test_srt_and_vtt_text() -> None:
    finals = [_final([("set", 0.12, 0.3), ("a", 0.3, 0.4), ("timer", 0.4, 0.9)]), _final([], 1)]
    finals.append(_final([("<b>", 3661.5, 3662.0)], 2))
    assert render(finals, "srt") == (
        "1\n00:00:00,120 --> 00:00:01,120\nset a timer\n\n2\n01:01:01,500 --> 01:01:02,500\n<b>\n"
    )
    assert render(finals, "vtt") == (
        "WEBVTT\n\n00:00:00.120 --> 00:00:01.120\nset a timer\n\n01:01:01.500 --> 01:01:02.500\n&lt;b&gt;\n"
    )
    no_times = {"type": "final", "segment": 0, "text": "one two", "start": 1.0, "end": 3.0, "words": []}
    assert cues([no_times])[0].start == 1.0 and cues([no_times])[0].end == 3.0
    with pytest.raises(ValueError):
        render(finals, "ass")


@pytest.fixture(scope="module")
def server(tiny_bundles: Path) -> Iterator[Running]:
    """Default settings: what `parley transcribe` uses in-process."""
    with running(tiny_bundles) as r:
        yield r


def test_transcribe_formats_over_http_and_the_command_agree(server: Running, tiny_bundles: Path, tmp_path: Path):
    x = audio(3.0, 4)
    body = _wav(x, SR)
    post = lambda q: httpx.post(server.http + "/v1/transcribe" + q, content=body, headers={"content-type": "audio/wav"})  # noqa: E731
    js = post("")
    assert js.status_code == 200 and js.json() == post("?format=json").json()
    finals = js.json()["segments"]
    assert all("conf" in w and 0 <= w["conf"] <= 1 for f in finals for w in f["words"])
    srt, vtt = post("?format=srt"), post("?format=vtt")
    assert srt.status_code == 200 and srt.headers["content-type"].startswith("application/x-subrip")
    assert srt.text == render(finals, "srt")
    assert vtt.headers["content-type"].startswith("text/vtt") and vtt.text == render(finals, "vtt")
    lines = [json.loads(line) for line in post("?format=ndjson").text.splitlines()]  # the finals as decoded
    assert lines[:-1] == finals and lines[-1] == {"type": "end"}
    bad = post("?format=docx")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_value" and "docx" in bad.json()["message"]

    write_wav(tmp_path / "a.wav", x, SR)
    out = tmp_path / "a.srt"
    args = [str(tmp_path / "a.wav"), "--bundles", str(tiny_bundles), "--model", "tiny-en"]
    assert transcribe_main([*args, "--format", "srt", "--out", str(out)]) == 0
    assert out.read_text() == srt.text  # in-process, the same engine settings: the same subtitles
    assert transcribe_main([*args, "--out", str(tmp_path / "a.json")]) == 0
    assert json.loads((tmp_path / "a.json").read_text())["text"] == js.json()["text"]
    # alternatives and one segment, as the query parameters give them
    more = post("?alternatives=2&endpointing=false").json()
    assert transcribe_main([*args, "--alternatives", "2", "--no-endpointing", "--out", str(tmp_path / "b.json")]) == 0
    mine = json.loads((tmp_path / "b.json").read_text())
    assert mine["segments"] == more["segments"] and len(mine["segments"]) == 1
    assert mine["segments"][0]["alternatives"][0]["text"] == mine["segments"][0]["text"]


def test_transcribe_command_errors(tiny_bundles: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("not audio")
    assert transcribe_main([str(tmp_path / "missing.wav"), "--bundles", str(tiny_bundles)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert transcribe_main([str(tmp_path / "notes.txt"), "--bundles", str(tiny_bundles)]) == 2
    err = capsys.readouterr().err
    assert "notes.txt" in err and "not an audio file Parley reads (WAV, FLAC" in err, err
    write_wav(tmp_path / "a.wav", audio(0.5, 1), SR)
    assert transcribe_main([str(tmp_path / "a.wav"), "--bundles", str(tiny_bundles), "--model", "nope"]) == 2
    assert "no model 'nope'" in capsys.readouterr().err
    args = [str(tmp_path / "a.wav"), "--bundles", str(tiny_bundles), "--alternatives", "2", "--search", "greedy"]
    assert transcribe_main(args) == 2 and "needs beam search" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        transcribe_main([str(tmp_path / "a.wav"), "--alternatives", "11"])


def test_the_transcribe_command_passes_over_unreadable_bundles_and_defaults_as_the_server(tmp_path: Path) -> None:
    for folder, text in (("a-model", '{"name": "a-model"}'), ("broken", "{ not json"), ("list", "[]")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "bundle.json").write_text(text)
    assert find_bundle(tmp_path, None) == tmp_path / "a-model"
    assert find_bundle(tmp_path, "a-model") == tmp_path / "a-model"
    with pytest.raises(InputError, match=r"broken/bundle\.json: cannot read it"):
        find_bundle(tmp_path, "broken")
    with pytest.raises(
        InputError, match=r"no model 'nope' in .*\['a-model'\] \(and unreadable: \['broken', 'list'\]\)"
    ):
        find_bundle(tmp_path, "nope")
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "bundle.json").write_text(json.dumps({"name": DEFAULT_MODEL}))
    assert default_model(["a-model", DEFAULT_MODEL]) == DEFAULT_MODEL  # what the server makes its default
    assert find_bundle(tmp_path, None) == tmp_path / "z"


def test_the_transcribe_command_refuses_providers_without_a_traceback(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_wav(tmp_path / "a.wav", audio(0.5, 1), SR)
    args = [str(tmp_path / "a.wav"), "--bundles", str(Path(__file__).resolve().parents[1] / "bundles" / "en-small")]
    with pytest.raises(SystemExit) as e:
        transcribe_main([*args, "--providers", "gpu"])
    assert e.value.code == 2 and "invalid choice: 'gpu'" in capsys.readouterr().err
    monkeypatch.setattr(providers, "cuda_usable", lambda: False)
    assert transcribe_main([*args, "--providers", "CUDA"]) == 2
    assert "CUDA was asked for but onnxruntime cannot use a GPU here" in capsys.readouterr().err


def test_cues_read_the_display_text_word_for_word() -> None:
    words = [{"word": w, "start": 0.5 * i, "end": 0.5 * i + 0.4} for i, w in enumerate(["hello", "how", "are", "you"])]
    final = {"type": "final", "segment": 0, "text": "hello how are you", "start": 0.0, "end": 2.0, "words": words}
    (cue,) = cues([{**final, "display": "Hello, how are you?"}])
    assert " ".join(cue.lines) == "Hello, how are you?" and cue.start == 0.0 and cue.end >= 1.9
    # a display with a word that is not among the words (nor a rewriting of some) is not used: the words are
    (plain,) = cues([{**final, "display": "Hello there, how are you?"}])
    assert " ".join(plain.lines) == "hello how are you"


def test_cues_keep_a_rewritten_number_whole_on_the_times_of_its_words() -> None:
    said = ["it", "costs", "five", "dollars", "and", "fifty", "cents", "at", "ten", "thirty", "a", "m", "today"]
    words = [{"word": w, "start": 0.5 * i, "end": 0.5 * i + 0.4} for i, w in enumerate(said)]
    final = {"type": "final", "segment": 0, "text": " ".join(said), "start": 0.0, "end": 7.0, "words": words}
    (cue,) = cues([{**final, "display": "It costs $5.50 at 10:30 a.m. today."}])
    assert " ".join(cue.lines) == "It costs $5.50 at 10:30 a.m. today."
    # A cue cut inside the rewritten words would split "$5.50": the cut falls around it, on the words' times.
    long = [{"word": w, "start": 0.9 * i, "end": 0.9 * i + 0.8} for i, w in enumerate(said)]
    parts = cues([{**final, "words": long, "end": 11.0, "display": "It costs $5.50 at 10:30 a.m. today."}])
    texts = [" ".join(c.lines) for c in parts]
    assert len(parts) > 1 and " ".join(texts) == "It costs $5.50 at 10:30 a.m. today."
    assert all(t.count("$") <= 1 and not t.endswith("$5") for t in texts)
    money = next(c for c in parts if "$5.50" in " ".join(c.lines))
    assert money.start <= 0.9 * 2 and money.end >= 0.9 * 6 + 0.8 - 1e-9  # from "five" to "cents"


def test_talkers_split_cues_and_are_written_in_each_format() -> None:
    a = _final([("hello", 0.0, 0.4), ("there", 0.4, 0.8)])
    b = _final([("hi", 2.0, 2.3), ("how", 2.3, 2.5), ("are", 2.5, 2.6), ("you", 2.6, 2.9)], segment=1)
    for f, who in ((a, 0), (b, 1)):
        f["talkers"] = [who]
        for w in f["words"]:
            w["talker"] = who
    b["words"][2]["talker"] = b["words"][3]["talker"] = 0  # a talker change inside one final: two cues
    cs = cues([a, b])
    assert [(c.lines, c.talker) for c in cs] == [(("hello there",), 0), (("hi how",), 1), (("are you",), 0)]
    text = render([a, b], "srt")
    assert "[T1] hello there\n" in text and "[T2] hi how\n" in text and "[T1] are you\n" in text
    assert "<v Talker 2>hi how\n" in render([a, b], "vtt")
    # the label takes room on the line: 38 characters of words plus "[T1] " do not fit 42 on one line
    long = _final([("x" * 18, 0.0, 1.0), ("y" * 19, 1.0, 2.0)])
    for w in long["words"]:
        w["talker"] = 0
    assert cues([long])[0].lines == ("x" * 18, "y" * 19)
    plain = _final([("x" * 18, 0.0, 1.0), ("y" * 19, 1.0, 2.0)])
    assert cues([plain])[0].lines == ("x" * 18 + " " + "y" * 19,) and "[T" not in render([plain], "srt")


def test_channels_label_cues_and_are_written_in_each_format() -> None:
    """Finals of a multichannel transcription say their channel (with talkers too: both); the cues of two channels
    may overlap in time."""
    a = {**_final([("hello", 0.0, 0.4), ("there", 0.4, 0.8)]), "channel": 0}
    b = {**_final([("hi", 0.5, 0.9)], segment=0), "channel": 1}
    cs = cues([a, b])
    assert [(c.lines, c.channel, c.talker) for c in cs] == [(("hello there",), 0, None), (("hi",), 1, None)]
    assert cs[1].start < cs[0].end  # people on two channels talk at once
    srt = render([a, b], "srt")
    assert "[C1] hello there\n" in srt and "[C2] hi\n" in srt
    assert "<v Channel 1>hello there\n" in render([a, b], "vtt")
    for w in b["words"]:
        w["talker"] = 1
    assert "[C2 T2] hi\n" in render([a, b], "srt") and "<v Channel 2 Talker 2>hi\n" in render([a, b], "vtt")


def test_multichannel_transcribes_each_channel_over_http_and_the_command(
    server: Running, tiny_bundles: Path, tmp_path: Path
) -> None:
    """A stereo call recording (a different talker on each channel): ?multichannel=true transcribes each channel as
    it would be alone, its finals marked with their channel, in order of start; without it the channels are mixed.
    Raw PCM says its channels with ?channels=; `parley transcribe --multichannel` gives the same body."""
    import numpy as np

    left, right = audio(2.0, 61), audio(1.5, 62)
    right = np.concatenate([np.zeros(SR // 2, np.float32), right])  # the second talker starts 0.5 s in
    stereo = np.stack([left, right])
    path = tmp_path / "call.wav"
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(stereo.T, -1, 1) * 32767).astype("<i2").tobytes())
    body = path.read_bytes()
    post = lambda q, data=body, kind="audio/wav": httpx.post(  # noqa: E731
        server.http + "/v1/transcribe" + q, content=data, headers={"content-type": kind}
    )
    both = post("?multichannel=true").json()
    assert {f["channel"] for f in both["segments"]} == {0, 1}
    assert [(f["start"], f["channel"]) for f in both["segments"]] == sorted(
        (f["start"], f["channel"]) for f in both["segments"]
    )
    for c in (0, 1):
        alone = post("", _wav(stereo[c], SR)).json()  # 16-bit rounding: the same samples as the stereo file's
        own = [f for f in both["segments"] if f["channel"] == c]
        assert [f["text"] for f in own] == [f["text"] for f in alone["segments"]], c
        assert both["channels"][c] == {"channel": c, "text": alone["text"]} | (
            {"display": alone["display"]} if "display" in alone else {}
        )
    mixed = post("").json()
    assert "channels" not in mixed and all("channel" not in f for f in mixed["segments"])
    assert mixed["text"] == post("", _wav(stereo.mean(axis=0), SR)).json()["text"]
    raw = (np.clip(stereo.T, -1, 1) * 32767).astype("<i2").tobytes()
    query = "?sample_rate=16000&encoding=s16le&channels=2&multichannel=true"
    assert post(query, raw, "application/octet-stream").json() == both
    srt = post("?multichannel=true&format=srt").text
    assert "[C1] " in srt and "[C2] " in srt
    for q, data, code in (
        ("?multichannel=yes", body, "invalid_value"),
        ("?sample_rate=16000&encoding=s16le&channels=0", raw, "invalid_value"),
        ("?sample_rate=16000&encoding=s16le&channels=2", raw[:-2], "bad_audio"),
        ("?sample_rate=16000&encoding=s16le&channels=9&multichannel=true", raw[: 9 * 2 * 100], "invalid_value"),
    ):
        r = post(q, data, "application/octet-stream" if "encoding" in q else "audio/wav")
        assert r.status_code == 400 and r.json()["code"] == code, (q, r.json())

    from tests.test_protocol import DOCS, _check

    defs = json.loads((DOCS / "protocol.schema.json").read_text())["$defs"]
    _check(defs["transcript"], both, defs)  # the documented shape, channel and channels included

    out = tmp_path / "call.json"
    args = [str(path), "--bundles", str(tiny_bundles), "--model", "tiny-en", "--multichannel", "--out", str(out)]
    assert transcribe_main(args) == 0
    assert json.loads(out.read_text()) == both


def test_transcribe_shows_its_progress_on_standard_error(tiny_bundles: Path, tmp_path: Path, capsys) -> None:
    """`--progress`: a line redrawn on standard error as the recording decodes, ending at 100 %; the output is the
    same; without it (and not on a terminal) nothing goes to standard error."""
    x = np.random.default_rng(1).uniform(-0.1, 0.1, 3 * SR).astype(np.float32)
    write_wav(tmp_path / "a.wav", x, SR)
    args = [str(tmp_path / "a.wav"), "--bundles", str(tiny_bundles), "--model", "tiny-en", "--format", "srt"]
    assert transcribe_main([*args, "--progress"]) == 0
    shown = capsys.readouterr()
    assert shown.err.startswith("\rtranscribing: ") and shown.err.endswith("\n")
    assert "0:03 of 0:03 (100 %)" in shown.err.rsplit("\r", 1)[1] and "x real time" in shown.err
    assert transcribe_main(args) == 0
    plain = capsys.readouterr()
    assert plain.err == "" and plain.out == shown.out


def test_progress_shows_the_mean_of_the_channels_and_the_time_left() -> None:
    out = io.StringIO()
    p = Progress(3600.0, channels=2, out=out, every_s=0.0)
    p.update(1800.0, 0)
    p.update(900.0, 1)
    line = out.getvalue().rsplit("\r", 1)[1].rstrip()  # padded over a longer line before it
    assert line.startswith("transcribing: 22:30 of 1:00:00 (38 %), ") and line.endswith(" left")
    p.close()
    assert out.getvalue().endswith("\n")


def test_a_recording_above_192_khz_is_brought_down_to_it(server: Running, tiny_bundles: Path, tmp_path: Path) -> None:
    """A 384 kHz WAV is transcribed at 192 kHz (the most the frontend takes) over HTTP, as `parley transcribe` does,
    instead of being refused: the same finals as the file resampled by the client."""
    from parley.resample import at_most, resample

    x96 = resample(audio(2.0, 3), SR, 384000)
    x48, rate = at_most(x96, 384000, 192000)
    assert rate == 192000 and abs(len(x48) - len(x96) // 2) <= 2
    stereo, r2 = at_most(np.stack([x96, x96[::-1]]), 384000, 192000)
    assert r2 == 192000 and stereo.shape == (2, len(x48))
    assert at_most(x48, 192000, 192000)[0] is x48

    def post(x: np.ndarray, rate: int) -> httpx.Response:
        body = _wav(x, rate)
        return httpx.post(server.http + "/v1/transcribe", content=body, headers={"content-type": "audio/wav"})

    high, ours = post(x96, 384000), post(x48, 192000)
    assert high.status_code == 200, high.text
    assert high.json()["segments"] == ours.json()["segments"] and high.json()["duration"] == pytest.approx(2.0, 1e-3)
