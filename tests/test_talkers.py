"""Talkers across segments (server/talkers.py, models/train/talkers.py): the tracker's numbering, the frames each
channel owns, the discriminant fit, the model file and its place in a bundle, and en-open's talker model numbering
two held-out espeak-ng voices through the recognizer and the server."""

from __future__ import annotations

import itertools
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.train.talkers import add_to_bundle, equal_error, fit_lda
from server.bundle import BundleError, load_bundle
from server.talkers import TalkerModel, TalkerTracker, channel_masks, speech_stats, voiced

ROOT = Path(__file__).resolve().parents[1]


def _model(threshold: float = 0.5, dims: int = 4, bins: int = 3) -> TalkerModel:
    return TalkerModel(np.zeros(2 * bins), np.eye(2 * bins)[:, :dims], threshold)


def _unit(*v: float) -> np.ndarray:
    x = np.array(v, dtype=np.float32)
    return x / np.linalg.norm(x)


# ---- The tracker ----


def test_the_tracker_numbers_new_voices_in_order_and_recognizes_known_ones() -> None:
    t = TalkerTracker(_model(threshold=0.8))
    a, b, c = _unit(1, 0, 0, 0), _unit(0, 1, 0, 0), _unit(0, 0, 1, 0)
    assert t.assign([a]) == [0]
    assert t.assign([b]) == [1]
    assert t.assign([_unit(1, 0.1, 0, 0)]) == [0], "close to talker 0's centroid"
    assert t.assign([c]) == [2]
    assert t.assign([_unit(0.1, 1, 0, 0)]) == [1]
    assert t.assign([None]) == [None], "no embedding (too little speech): no talker, and no new one"
    assert len(t.sums) == 3


def test_the_channels_of_one_segment_are_different_talkers() -> None:
    t = TalkerTracker(_model(threshold=0.5))
    a, b = _unit(1, 0, 0, 0), _unit(0, 1, 0, 0)
    assert t.assign([a, b]) == [0, 1]
    # both channels closest to talker 0: the closer one gets it, the other the next match above the threshold or a
    # new number, never the same one
    assert t.assign([_unit(1, 0.2, 0, 0), _unit(1, 0.3, 0, 0)]) == [0, 2]
    assert t.assign([b, _unit(1, 0, 0, 0)]) == [1, 0], "channels restart per segment; talkers do not"
    assert t.assign([None, a]) == [None, 0]


def test_past_max_talkers_a_new_voice_goes_to_the_closest_free_one() -> None:
    t = TalkerTracker(_model(threshold=0.99), max_talkers=2)
    assert t.assign([_unit(1, 0, 0, 0)]) == [0]
    assert t.assign([_unit(0, 1, 0, 0)]) == [1]
    assert t.assign([_unit(0.2, 1, 0.5, 0)]) == [1]
    assert t.assign([_unit(1, 0, 0.1, 0), _unit(0.9, 0.1, 0, 0)]) == [0, 1]


# ---- Frames and statistics ----


def test_channel_masks_keep_the_frames_near_each_channel_s_words_and_drop_the_overlap() -> None:
    # stream frames 100-399 (1-4 s); channel 0 speaks words at 1.5-2.0 and 2.5-3.0 s, channel 1 at 2.8-3.5 s
    masks = channel_masks(300, 100, [[(1.5, 2.0), (2.5, 3.0)], [(2.8, 3.5)]])
    own0, own1 = (np.flatnonzero(m) + 100 for m in masks)
    assert own0[0] == 135 and own0[-1] == 264, "0.15 s around its words, up to where the other's start"
    assert 220 not in own0 and 230 not in own0 and 234 not in own0 and 235 in own0, "the pause between its words"
    assert own1[0] == 315 and own1[-1] == 364
    assert not (masks[0] & masks[1]).any()
    assert channel_masks(10, 0, [[]])[0].sum() == 0


def test_voiced_frames_are_the_loud_ones_and_short_speech_has_no_statistics() -> None:
    frames = np.full((200, 3), -10.0)
    frames[50:150] = 0.0
    assert voiced(frames).sum() == 100
    stats = speech_stats(frames)
    assert stats is not None and np.allclose(stats, [0, 0, 0, 0, 0, 0])
    assert speech_stats(frames[:20]) is None, "under MIN_FRAMES voiced frames"
    with pytest.raises(ValueError, match="3 fbank bins"):
        _model().embed(np.zeros((100, 4)))


# ---- Training ----


def test_lda_separates_speakers_that_raw_statistics_confuse() -> None:
    rng = np.random.default_rng(0)
    speakers, per, s = 40, 6, 10
    centres = rng.normal(size=(speakers, s)) * 0.3
    nuisance = rng.normal(size=(speakers * per, 1)) * 5.0 * np.eye(s)[0]  # a large within-speaker direction
    x = np.repeat(centres, per, axis=0) + nuisance + rng.normal(size=(speakers * per, s)) * 0.05
    names = [f"s{i // per}" for i in range(speakers * per)]

    def eer(e: np.ndarray) -> float:
        e = e / np.linalg.norm(e, axis=1, keepdims=True)
        sim = e @ e.T
        iu = np.triu_indices(len(e), 1)
        same = np.array(names)[iu[0]] == np.array(names)[iu[1]]
        return equal_error(sim[iu][same], sim[iu][~same])[1]

    mean, proj = fit_lda(x, names, dims=8)
    assert proj.shape == (s, 8)
    assert eer((x - mean) @ proj) < 0.05 < eer(x - x.mean(axis=0)), "LDA removes the within-speaker direction"
    with pytest.raises(ValueError, match="two utterances"):
        fit_lda(x[:3], ["a", "b", "c"], 2)
    with pytest.raises(ValueError, match="dims"):
        fit_lda(x, names, 0)


def test_equal_error_finds_the_crossing() -> None:
    threshold, rate = equal_error(np.array([0.6, 0.7, 0.8, 0.9]), np.array([0.1, 0.2, 0.3, 0.65]))
    assert rate == pytest.approx(0.25) and 0.6 <= threshold <= 0.7


# ---- The file and the bundle ----


def test_the_model_file_round_trips_and_bad_files_are_refused(tmp_path: Path) -> None:
    m = TalkerModel(np.arange(6.0), np.ones((6, 2)), 0.4, 30, {"dims": 2})
    m.save(tmp_path / "t.npz")
    back = TalkerModel.load(tmp_path / "t.npz")
    assert np.allclose(back.mean, m.mean) and np.allclose(back.proj, m.proj) and back.threshold == pytest.approx(0.4)
    assert (back.min_frames, back.card, back.num_bins) == (30, {"dims": 2}, 3)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"bad\.npz: not a talker model"):
        TalkerModel.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="do not fit"):
        TalkerModel(np.zeros(6), np.ones((5, 2)), 0.4)
    with pytest.raises(ValueError, match="cosine"):
        TalkerModel(np.zeros(6), np.ones((6, 2)), 1.5)


def test_a_bundle_loads_its_talker_model_and_refuses_one_that_does_not_fit(tiny_bundles: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "tiny"
    shutil.copytree(tiny_bundles / "tiny-en", bundle)
    assert load_bundle(bundle, providers="cpu", threads=1).talkers is None
    bins = load_bundle(bundle, providers="cpu", threads=1).spec.features.num_bins
    card = {
        "dims": 4,
        "utterances": 1,
        "speakers": 1,
        "manifests": ["x.jsonl"],
        "held_out_speakers": 1,
        "held_out_equal_error_rate": 0.1,
        "threshold": 0.5,
    }
    TalkerModel(np.zeros(2 * bins), np.eye(2 * bins)[:, :4], 0.5, card=card).save(tmp_path / "t.npz")
    assert add_to_bundle(tmp_path / "t.npz", bundle, threshold=0.3, source="a test") == {"model": "talkers.npz"}
    loaded = load_bundle(bundle, providers="cpu", threads=1).talkers
    assert loaded is not None and loaded.threshold == pytest.approx(0.3)
    assert loaded.card["threshold_chosen_on"] == "a test"
    TalkerModel(np.zeros(2 * bins - 2), np.eye(2 * bins - 2)[:, :4], 0.5).save(bundle / "talkers.npz")
    meta = json.loads((bundle / "bundle.json").read_text())
    from server.bundle import sha256_of

    meta["files"]["talkers.npz"] = {
        "bytes": (bundle / "talkers.npz").stat().st_size,
        "sha256": sha256_of(bundle / "talkers.npz"),
    }
    (bundle / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=f"reads {bins - 1} fbank bins"):
        load_bundle(bundle, providers="cpu", threads=1)


# ---- en-open, two real voices ----

TURNS = [
    ("a", "the weather was cold and the river had frozen over"),
    ("b", "we should leave before the evening train arrives"),
    ("a", "my brother bought a small house near the market"),
    ("b", "please write the numbers down in your notebook"),
    ("a", "they walked along the road until the sun went down"),
]


def _conversation(gap_s: float = 1.6) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Two test-split espeak-ng voices of different variants taking turns, `gap_s` of silence between turns."""
    from models.data.espeak import synthesize
    from models.data.voices import sample_voice
    from parley.resample import resample

    rng = random.Random(3)
    a = sample_voice("en", rng, "test")
    b = sample_voice("en", rng, "test")
    while b.variant == a.variant:
        b = sample_voice("en", rng, "test")
    voices = {"a": a, "b": b}
    gap = np.zeros(int(gap_s * 16000), dtype=np.float32)
    pieces, spans, t = [], [], 0.0
    for who, text in TURNS:
        syn = synthesize(text, **voices[who].synth_kwargs())
        x = resample(syn.samples, syn.sample_rate, 16000)
        pieces += [gap, x]
        t += len(gap) / 16000
        spans.append((t, t + len(x) / 16000, who))
        t += len(x) / 16000
    pieces.append(gap)
    return np.concatenate(pieces), spans


def test_en_open_numbers_two_voices_the_same_way_across_segments(en_open) -> None:
    from server.frontend import Frontend
    from server.recognizer import Final, Recognizer
    from server.transducer import StreamingTransducer

    assert en_open.talkers is not None, "bundles/en-open carries talkers.npz (parley talkers add)"
    model = StreamingTransducer(en_open)
    rec = Recognizer(model, talkers=en_open.talkers)
    audio, _ = _conversation()
    stream, plain = rec.open(talkers=True), rec.open()
    fe, fe_plain = Frontend(model.spec, 16000), Frontend(model.spec, 16000)
    for f in (fe, fe_plain):
        f.accept(audio)
        f.finish()
    finals: list[Final] = []
    plain_finals: list[Final] = []
    while (c := fe.pop_chunk()) is not None:
        out = rec.step([(stream, c), (plain, fe_plain.pop_chunk())])
        finals += [r for r in out[0] if isinstance(r, Final)]
        plain_finals += [r for r in out[1] if isinstance(r, Final)]
    finals += rec.finish(stream, len(audio) / 16000)
    plain_finals += rec.finish(plain, len(audio) / 16000)
    assert finals[-1].text == "" and finals[-1].talkers == (None,), "the trailing silence's final: nobody spoke"
    finals, plain_finals = finals[:-1], plain_finals[:-1]
    assert len(finals) == len(TURNS), [f.text for f in finals]
    assert [f.talkers for f in finals] == [(0,), (1,), (0,), (1,), (0,)], [(f.talkers, f.text) for f in finals]
    assert all(w.talker == f.talkers[0] for f in finals for w in f.words)
    # the same text as a stream without talkers, which carries none
    assert [f.text for f in finals] == [f.text for f in plain_finals]
    assert all(f.talkers is None and all(w.talker is None for w in f.words) for f in plain_finals)
    with pytest.raises(ValueError, match="no talker model"):
        Recognizer(model).open(talkers=True)


def test_finalized_turns_keep_their_talkers_and_times(en_open, monkeypatch) -> None:
    """Push-to-talk: turns 0.1 s apart, each finalized as it ends, endpointing off (only the finalizes close
    segments). The talkers are numbered as with endpoints; each final holds its turn's words where they are in the
    audio sent; and the talker model reads the frames of those words (found by the words' times, on a clock without
    the silence each finalize decoded: on the frames' clock they would miss a turn's start by the silence so far)."""
    from server.endpoint import EndpointConfig
    from server.frontend import Frontend
    from server.recognizer import Final, Recognizer
    from server.transducer import StreamingTransducer

    read: list[int] = []
    embed = TalkerModel.embed
    monkeypatch.setattr(TalkerModel, "embed", lambda self, frames: read.append(len(frames)) or embed(self, frames))
    model = StreamingTransducer(en_open)
    rec = Recognizer(model, EndpointConfig(enabled=False), talkers=en_open.talkers)
    audio, spans = _conversation(gap_s=0.1)
    stream, fe = rec.open(talkers=True), Frontend(model.spec, 16000)
    finals: list[Final] = []
    begin = 0
    for _, end_s, _ in spans:
        end = round((end_s + 0.05) * 16000)
        fe.accept(audio[begin:end])
        begin = end
        silence = fe.flush()
        while (c := fe.pop_chunk()) is not None:
            finals += [r for r in rec.step([(stream, c)])[0] if isinstance(r, Final)]
        finals += rec.cut(stream, fe.seconds_received, silence)
    assert len(finals) == len(TURNS) == len(read), [f.text for f in finals]
    assert [f.talkers for f in finals] == [(0,), (1,), (0,), (1,), (0,)], [(f.talkers, f.text) for f in finals]
    for f, (start_s, end_s, _), frames in zip(finals, spans, read, strict=True):
        assert f.words and start_s - 0.2 <= f.words[0].start and f.words[-1].end <= end_s + 0.15, (f, start_s, end_s)
        assert frames >= 100 * (f.words[-1].end - f.words[0].start), (frames, f.words[0].start, f.words[-1].end)


def test_the_server_sends_talkers_to_a_stream_that_asks(en_open, tmp_path: Path) -> None:
    import io

    from fastapi.testclient import TestClient

    from parley.audio import write_wav
    from server.app import create_app
    from server.settings import Settings

    audio, _ = _conversation()
    buf = tmp_path / "conv.wav"
    write_wav(buf, audio[: 12 * 16000], 16000)
    folder = tmp_path / "bundles"
    folder.mkdir()
    (folder / "en-open").symlink_to(ROOT / "bundles" / "en-open")
    with TestClient(create_app(Settings(bundles=folder))) as client:
        models = client.get("/v1/models").json()["models"]
        assert models[0]["talkers"] is True
        body = io.BytesIO(buf.read_bytes())
        r = client.post("/v1/transcribe?talkers=true", content=body.getvalue(), headers={"content-type": "audio/wav"})
        assert r.status_code == 200, r.text
        segs = r.json()["segments"]
        assert [s["talkers"] for s in segs][:2] == [[0], [1]], segs
        assert all(w["talker"] == s["talkers"][0] for s in segs for w in s["words"])
        r = client.post("/v1/transcribe?talkers=yes", content=body.getvalue(), headers={"content-type": "audio/wav"})
        assert r.status_code == 400 and "talkers must be true or false" in r.json()["message"]
        plain = client.post("/v1/transcribe", content=body.getvalue(), headers={"content-type": "audio/wav"}).json()
        assert all("talkers" not in s for s in plain["segments"])
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_json({"type": "start", "sample_rate": 16000, "encoding": "s16le", "talkers": True})
            ready = ws.receive_json()
            assert ready["type"] == "ready" and ready["talkers"] is True, ready
            pcm = (audio[: 9 * 16000] * 32767).astype("<i2").tobytes()
            for i in range(0, len(pcm), 6400):
                ws.send_bytes(pcm[i : i + 6400])
            ws.send_json({"type": "stop"})
            finals = []
            while (msg := ws.receive_json())["type"] != "end":
                if msg["type"] == "final":
                    finals.append(msg)
            assert finals and [f["talkers"] for f in finals][:2] == [[0], [1]], finals
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_json({"type": "start", "sample_rate": 16000, "encoding": "s16le", "talkers": 1})
            msg = ws.receive_json()
            assert msg["type"] == "error" and msg["code"] == "invalid_value" and '"talkers"' in msg["message"]


def test_the_clients_ask_for_talkers_and_print_them() -> None:
    import io

    from clients.stream import CaptionPrinter, speaker_text, start_message

    assert start_message(16000, talkers=True)["talkers"] is True
    assert "talkers" not in start_message(16000)
    words = [
        {"word": "hi", "start": 0.1, "end": 0.3, "talker": 0},
        {"word": "there", "start": 0.3, "end": 0.5, "talker": 0},
        {"word": "yes", "start": 0.9, "end": 1.2, "speaker": 1, "talker": 2},
    ]
    final = {"type": "final", "segment": 0, "text": "hi there yes", "start": 0, "end": 1.2, "words": words}
    assert speaker_text(final) == "[T1] hi there [T3] yes", "talkers win over channels"
    out = io.StringIO()
    CaptionPrinter(out, live=False)(final)
    assert out.getvalue() == "[T1] hi there [T3] yes\n"
    assert speaker_text({**final, "words": [{"word": "hi", "start": 0, "end": 1}]}) == "hi there yes"


def test_parley_transcribe_writes_who_speaks_into_subtitles(tmp_path: Path, capsys) -> None:
    from parley.audio import write_wav
    from server.transcribe import main as transcribe_main

    audio, _ = _conversation()
    wav = tmp_path / "conv.wav"
    write_wav(wav, audio[: 12 * 16000], 16000)
    bundles = ["--bundles", str(ROOT / "bundles" / "en-open")]
    assert transcribe_main([str(wav), "--format", "srt", "--talkers", *bundles]) == 0
    out = capsys.readouterr().out
    assert "[T1] The weather" in out and "[T2] We should" in out and "[T1] My" in out, out
    assert transcribe_main([str(wav), "--format", "vtt", *bundles]) == 0
    assert "<v " not in capsys.readouterr().out
    assert transcribe_main([str(wav), "--talkers", "--bundles", str(ROOT / "bundles" / "en-small")]) == 2
    assert "has no talker model" in capsys.readouterr().err


def test_the_server_s_talker_threshold_replaces_the_bundle_s(en_open) -> None:
    from server.engine import Engine, EngineConfig
    from server.settings import Settings

    assert Engine(en_open).recognizer.talkers.threshold == pytest.approx(en_open.talkers.threshold)
    cfg = EngineConfig.from_settings(Settings(talker_threshold=0.6))
    assert Engine(en_open, cfg).recognizer.talkers.threshold == pytest.approx(0.6)
    with pytest.raises(ValueError, match="talker_threshold"):
        Settings(talker_threshold=1.5)


def test_the_benchmark_scores_numbers_under_the_best_mapping_and_plans_fair_conversations() -> None:
    from benchmarks.bench_talkers import base_voice, mapped_accuracy, plan_conversations

    assert mapped_accuracy(["a", "b", "a", "b"], [7, 3, 7, 3]) == 1.0, "numbers are names: any consistent naming"
    assert mapped_accuracy(["a", "b", "a", "b"], [0, 0, 0, 0]) == 0.5, "one number for all: the larger speaker"
    assert mapped_accuracy(["a", "b", "a", "b"], [0, 1, 2, 1]) == 0.75, "a third number maps to nobody"
    assert mapped_accuracy(["a", "a"], [None, 0]) == 0.5, "no number counts wrong"
    voices = ["pico:en-GB/r1.00/p1.00", "pico:en-GB/r0.90/p1.20", "festival:ked/r1/p1", "mbrola:x/r1/p1"]
    rows = [
        {"speaker": f"s{k}", "voice": v, "audio": f"{k}-{j}.wav", "text": "x"}
        for k, v in enumerate(voices)
        for j in range(3)
    ]
    convs = plan_conversations(rows, 30, 6, seed=1)
    assert len(convs) == 30
    for conv in convs:
        who = [r["speaker"] for r in conv]
        assert all(a != b for a, b in itertools.pairwise(who)), "nobody takes two turns in a row"
        bases = {r["speaker"]: base_voice(r["voice"]) for r in conv}
        assert len(set(bases.values())) == len(bases) in (2, 3), "different base voices: different people"
