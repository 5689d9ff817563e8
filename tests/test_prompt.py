"""OpenAI's transcription `prompt` as hotwords (server/prompt.py): which words of a prompt are names and terms, what
the model can take of them, and en-open spelling a name it cannot spell alone, through OpenAI's form and a
Realtime session."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect

from parley.audio import encode_pcm
from parley.resample import resample
from server.bundle import load_bundle
from server.engine import Engine, EngineConfig
from server.prompt import COMMON_STARTS, MAX_PHRASE_WORDS, prompt_terms
from server.protocol import StartRequest, start_from_dict
from server.service import Service
from server.session import with_prompt
from server.settings import Settings
from tests.test_context import NAME, SENTENCE
from tests.test_openai import _wav_file
from tests.test_realtime import RATE, _append, _events
from tests.test_server import Running

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("prompt", "terms"),
    [
        # OpenAI's own example of a glossary prompt: product names, one phrase per run of capitalized words, and
        # the run's words of five letters or more alone.
        (
            "ZyntriQix, Digique Plus, CynapseFive, VortiQore Tech, PULSE, B.R.I.C.K., Q-Flow",
            [
                "ZyntriQix",
                "Digique Plus",
                "Digique",
                "CynapseFive",
                "VortiQore Tech",
                "VortiQore",
                "PULSE",
                "Q-Flow",
            ],
        ),
        ("Kowalczyk, Nakamura", ["Kowalczyk", "Nakamura"]),  # a list's first name begins the "sentence"
        # The last turn's transcript: sentence-initial everyday words, "I", titles and "Q3" are not terms.
        (
            "Hi, this is Anna from Zentrix Labs. We discussed the Q3 roadmap with Dr. Okafor. I think OK.",
            ["Anna", "Zentrix Labs", "Zentrix", "Okafor"],
        ),
        ("Today Kowalczyk called. Kowalczyk called again.", ["Kowalczyk"]),  # each once
        ("The iPhone and the NASA launch, said O'Connell-Smith.", ["iPhone", "NASA", "O'Connell-Smith"]),
        ("hello world, nothing capitalized here", []),
        ("", []),
        ("北京 and Zürich", ["Zürich"]),  # no case, no term
        ("Ask O’Connell about McAllister's order.", ["O'Connell", "McAllister"]),  # apostrophes, possessives
    ],
)
def test_the_terms_of_a_prompt(prompt: str, terms: list[str]) -> None:
    assert prompt_terms(prompt) == terms


def test_a_long_run_of_capitals_is_cut_and_common_words_are_asked() -> None:
    title = "Alpha Betas Gamma Delta Epsilon Zeta"
    assert MAX_PHRASE_WORDS == 4
    phrases = "Alpha Betas Gamma Delta|Alpha|Betas|Gamma|Delta|Epsilon Zeta|Epsilon"  # "Zeta": too short alone
    assert prompt_terms(title) == phrases.split("|")
    assert prompt_terms("with Anna McAllister", is_common=lambda w: w == "anna") == ["Anna McAllister", "McAllister"]
    assert "the" in COMMON_STARTS and "kowalczyk" not in COMMON_STARTS
    assert prompt_terms("Kowalczyk called.", is_common=lambda w: w == "kowalczyk") == []  # the caller's lexicon
    assert prompt_terms("It was Kowalczyk.", is_common=lambda w: False) == ["It", "Kowalczyk"]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_bundle(ROOT / "bundles" / "en-open"), EngineConfig(max_hotwords=3))


def test_what_the_model_can_take(engine: Engine) -> None:
    """A sentence-initial word the tokenizer writes as one piece is everyday; a term the tokenizer cannot write is
    left out, as are the stream's own hotwords (whatever their case); at most `max_hotwords` with them."""
    planner = engine.planner
    plan = planner.plan()
    one_piece = next(
        w
        for w in ("people", "world", "time", "year", "work", "house", "water")
        if w not in COMMON_STARTS and len(planner.model.heads[0].head.sp.encode(w)) == 1
    )
    prompt = f"{one_piece.title()} sent Ωmega to McAllister and Kowalczyk, with Nakamura and Okafor."
    assert prompt_terms(prompt)[:2] == [one_piece.title(), "Ωmega"]
    assert planner.prompt_hotwords(plan, prompt) == ["McAllister", "Kowalczyk", "Nakamura"]
    assert planner.prompt_hotwords(plan, prompt, own=["mcallister"]) == ["Kowalczyk", "Nakamura"]


def test_a_prompted_start_keeps_the_general_lm(engine: Engine) -> None:
    """`with_prompt`: the prompt's names join the start's hotwords; a start that would have had the model's general
    LM keeps it, one with hotwords or an LM of its own keeps its choice, one that asked for greedy search is left as
    it is."""
    service = Service(Settings(bundles=ROOT / "bundles"))
    service.engines, service.default_model = {"en-open": engine}, "en-open"

    def start(**fields) -> StartRequest:
        return start_from_dict({"type": "start", "sample_rate": 16000, "encoding": "s16le", **fields})

    general = engine.planner.general_lm(engine.planner.plan())
    assert general is not None
    prompted = with_prompt(service, start(), "Call with Anna McAllister.")
    assert prompted.hotwords == (("Anna McAllister", None), ("McAllister", None))  # "Anna" alone: too short
    assert prompted.lm == general.name
    own = with_prompt(service, start(hotwords=["zentrix"]), "Call McAllister.")
    assert own.hotwords == (("zentrix", None), ("McAllister", None)) and own.lm is None
    assert with_prompt(service, start(lm="none"), "Call McAllister.").lm == "none"
    assert with_prompt(service, start(search="greedy"), "Call McAllister.") == start(search="greedy")
    assert with_prompt(service, start(), "no names here") == start()


def _said() -> np.ndarray:
    from models.data.espeak import synthesize

    syn = synthesize(SENTENCE, voice="en-us", variant="m3", rate=160)
    x = resample(syn.samples, syn.sample_rate, 16000)
    return np.concatenate([x, np.zeros(16000, np.float32)])


@pytest.fixture(scope="module")
def said() -> np.ndarray:
    return _said()


def test_openais_prompt_spells_the_name(en_open_server: Running, said: np.ndarray) -> None:
    """The prompt's name is a hotword: en-open writes "macalister" alone and "McAllister" (the prompt's capitals)
    with the prompt; a stream that asked for greedy search keeps it (no hotwords without beam search)."""

    def post(**data: str) -> dict:
        r = httpx.post(
            f"{en_open_server.http}/v1/audio/transcriptions",
            files={"file": ("said.wav", _wav_file(said), "audio/wav")},
            data={"model": "whisper-1", **data},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        return r.json()

    assert NAME not in post()["text"].lower()
    prompted = post(prompt="Notes from the call with Anna McAllister.")
    assert "McAllister" in prompted["text"]
    assert NAME not in post(prompt="Notes from the call with Anna McAllister.", search="greedy")["text"].lower()


def test_a_realtime_sessions_prompt_spells_the_name(en_open_server: Running, said: np.ndarray) -> None:
    """`audio.input.transcription.prompt`: set before the audio, and changed mid-session (the next turn's); the deltas
    of a session with hotwords spell only words the final keeps."""
    pcm = encode_pcm(resample(said, 16000, RATE), "s16le")

    async def turn(ws) -> str:
        for i in range(0, len(pcm), 48000):
            await ws.send(_append(pcm[i : i + 48000]))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        done = await _events(ws, "conversation.item.input_audio_transcription.completed")
        # the deltas spell settled words only: a beginning of the turn's words, never words it took back
        spelled = "".join(e["delta"] for e in done if e["type"].endswith(".delta")).split()
        heard = done[-1]["transcript"].lower().replace(".", "").split()
        assert spelled == heard[: len(spelled)], (spelled, heard)
        return done[-1]["transcript"]

    async def go() -> list[str]:
        async with connect(f"ws://127.0.0.1:{en_open_server.port}/v1/realtime?intent=transcription") as ws:
            await _events(ws, "session.created")
            transcription = {"prompt": "Call McAllister."}
            session = {"audio": {"input": {"turn_detection": None, "transcription": transcription}}}
            await ws.send(json.dumps({"type": "session.update", "session": session}))
            updated = await _events(ws, "session.updated")
            assert updated[-1]["session"]["audio"]["input"]["transcription"]["prompt"] == "Call McAllister."
            first = await turn(ws)
            session = {"audio": {"input": {"transcription": {"prompt": "no names here"}}}}
            await ws.send(json.dumps({"type": "session.update", "session": session}))
            await _events(ws, "session.updated")
            return [first, await turn(ws)]

    first, second = asyncio.run(go())
    assert "McAllister" in first
    assert NAME not in second.lower()
