"""Text-only adaptation in the runtime: hotword graphs, token n-gram LMs, shallow fusion with internal-LM estimation,
and the start fields that ask for them (docs/adaptation.md).

The graph and the LM are checked against brute-force definitions; fusion on a constructed head whose acoustics are
undecided between two tokens; the internal LM against the joiner run by hand; hotwords end to end on bundles/en-small
with a name the model never saw in training, spoken by espeak-ng.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest

from models.train.lm_ngram import main as lm_main
from models.train.lm_ngram import train_ngram
from server.biasing import ContextGraph, phrase_tokens, word_starts
from server.bundle import BundleError, load_bundle
from server.engine import Engine, EngineConfig
from server.lm import NgramLM
from server.plan import Adaptation, InvalidOptionError, UnsupportedOptionError
from server.protocol import INVALID_VALUE, ProtocolError, start_from_dict
from server.transducer import BeamState, HeadRunner, LmFusion, StreamingTransducer, modified_beam_search

ROOT = Path(__file__).resolve().parents[1]
EN_SMALL = ROOT / "bundles" / "en-small"
START = {"type": "start", "sample_rate": 16000, "encoding": "s16le"}


# ---- The hotword graph ----


def _brute_bonus(tokens: list[int], phrases: list[tuple[int, ...]], boost: float) -> float:
    """The graph's score by its definition: every phrase occurrence's full bonus, plus the pending bonus of the
    longest suffix that begins a phrase (its tokens after the last phrase that ends inside it)."""
    committed = sum(
        boost * len(p) for i in range(1, len(tokens) + 1) for p in phrases if tuple(tokens[:i][-len(p) :]) == p
    )
    prefixes = {p[:k] for p in phrases for k in range(1, len(p) + 1)}
    suffix = next((tuple(tokens[i:]) for i in range(len(tokens) + 1) if tuple(tokens[i:]) in prefixes | {()}), ())
    last_end = max((k for k in range(len(suffix) + 1) if suffix[:k] in set(phrases)), default=0)
    return committed + boost * (len(suffix) - last_end)


def test_graph_matches_a_phrase_and_takes_back_a_failed_partial_match() -> None:
    g = ContextGraph([([1, 2, 3], 1.5)], vocab_size=8)
    node, steps = ContextGraph.ROOT, []
    for t in [1, 2, 3]:
        node, b = g.step(node, t)
        steps.append(b)
    assert steps == [1.5, 1.5, 1.5] and g.pending(node) == 0.0  # matched: the bonus stays
    node, steps = ContextGraph.ROOT, []
    for t in [1, 2, 4]:
        node, b = g.step(node, t)
        steps.append(b)
    assert steps == [1.5, 1.5, -3.0] and node == ContextGraph.ROOT  # failed: all of it taken back
    assert g.score([1, 2]) == 3.0 and g.pending(g.step(g.step(0, 1)[0], 2)[0]) == 3.0
    assert g.score([5, 1, 1, 2, 3]) == 4.5  # a restart inside a partial match: the new match keeps its bonus


def test_graph_overlapping_and_nested_phrases() -> None:
    g = ContextGraph([([1, 2], 1.0), ([2, 3], 1.0), ([2], 1.0), ([1, 2, 3, 4], 1.0)], vocab_size=8)
    assert g.score([1, 2, 3]) == 2 + 2 + 1 + 1  # "1 2", "2", "2 3" found, and "1 2 3" pending on the way to "1 2 3 4"
    assert g.score([1, 2, 3, 5]) == 2 + 1 + 2  # the partial "1 2 3 4" fails: only its pending part goes
    assert g.score([1, 2, 3, 4]) == 2 + 1 + 2 + 4


@pytest.mark.parametrize("seed", range(4))
def test_graph_agrees_with_its_definition_on_random_phrases(seed: int) -> None:
    rng = random.Random(seed)
    V = 5
    phrases = list({tuple(rng.randrange(V) for _ in range(rng.randint(1, 4))) for _ in range(6)})
    g = ContextGraph([(p, 0.5) for p in phrases], vocab_size=V)
    for _ in range(200):
        tokens = [rng.randrange(V) for _ in range(rng.randint(0, 10))]
        want = _brute_bonus(tokens, phrases, 0.5)
        assert abs(g.score(tokens) - want) < 1e-9, (phrases, tokens, g.score(tokens), want)
    for node in range(g.num_nodes):  # the dense rows the search adds agree with step()
        row = g.bonuses(node)
        assert all(abs(row[t] - g.step(node, t)[1]) < 1e-6 for t in range(V))


def _brute_word_bonus(tokens: list[int], phrases: list[tuple[int, ...]], boost: float, start: set[int]) -> float:
    """The whole-word definition: phrase occurrences followed by a word-start token or the end, plus the pending part
    (as `_brute_bonus`)."""
    committed = sum(
        boost * len(p)
        for i in range(1, len(tokens) + 1)
        for p in phrases
        if tuple(tokens[:i][-len(p) :]) == p and (i == len(tokens) or tokens[i] in start)
    )
    return (
        committed
        + _brute_bonus(tokens, phrases, boost)
        - sum(boost * len(p) for i in range(1, len(tokens) + 1) for p in phrases if tuple(tokens[:i][-len(p) :]) == p)
    )


def test_graph_whole_words_take_back_a_phrase_that_more_letters_follow() -> None:
    start = np.array([False, True, False, False, True, False])  # 1 and 4 begin words, 2, 3 and 5 continue them
    g = ContextGraph([([1, 2], 1.0)], vocab_size=6, word_start=start)
    assert g.score([1, 2]) == 2.0  # "moreno" at the end
    assert g.score([1, 2, 4]) == 2.0  # "moreno" then a new word
    assert g.score([1, 2, 5]) == 0.0  # "morenow": the word goes on, the bonus is taken back
    assert ContextGraph([([1, 2], 1.0)], vocab_size=6).score([1, 2, 5]) == 2.0  # anywhere: it stays
    longer = ContextGraph([([1, 2], 1.0), ([1, 2, 5], 1.0)], vocab_size=6, word_start=start)
    assert longer.score([1, 2, 5]) == 3.0  # "moreno" gives way to the longer phrase "morenos"


@pytest.mark.parametrize("seed", range(4))
def test_graph_whole_words_agree_with_their_definition(seed: int) -> None:
    rng = random.Random(seed)
    V = 6
    start = {0, 1, 4}
    mask = np.array([t in start for t in range(V)])
    phrases = list({tuple(rng.randrange(V) for _ in range(rng.randint(1, 4))) for _ in range(6)})
    g = ContextGraph([(p, 0.5) for p in phrases], vocab_size=V, word_start=mask)
    for _ in range(200):
        tokens = [rng.randrange(V) for _ in range(rng.randint(0, 10))]
        want = _brute_word_bonus(tokens, phrases, 0.5, start)
        assert abs(g.score(tokens) - want) < 1e-9, (phrases, tokens, g.score(tokens), want)
    for node in range(g.num_nodes):
        row = g.bonuses(node)
        assert all(abs(row[t] - g.step(node, t)[1]) < 1e-6 for t in range(V))


def test_graph_acoustic_floor_gives_no_bonus_to_a_token_the_model_rules_out() -> None:
    start = np.array([False, True, False, False, True, False])
    g = ContextGraph([([1, 2, 3], 1.5)], vocab_size=6, word_start=start, floor=3.0)  # log P >= -4.5: P >= 0.011
    sure, unsure = float(np.log(0.5)), float(np.log(0.001))
    node, b1 = g.step(ContextGraph.ROOT, 1, sure)
    node, b2 = g.step(node, 2, sure)
    assert (b1, b2) == (1.5, 1.5)  # above the floor: as without one
    left, b3 = g.step(node, 3, unsure)
    assert left == ContextGraph.ROOT and b3 == -3.0  # below it: no bonus, the pending 3.0 taken back
    assert g.step(ContextGraph.ROOT, 1, unsure) == (ContextGraph.ROOT, 0.0)  # a phrase cannot start on it either
    end = g.step(g.step(g.step(0, 1, sure)[0], 2, sure)[0], 3, sure)[0]  # "1 2 3" done: 4.5 given
    assert g.step(end, 5, unsure) == (ContextGraph.ROOT, -4.5)  # a glued token below the floor still takes it back
    assert g.step(end, 4, unsure) == (ContextGraph.ROOT, 0.0)  # a new word keeps the finished phrase's bonus
    for n in range(g.num_nodes):  # the dense rows agree with step() token by token, on both sides of the floor
        log_probs = np.log(np.array([0.3, 0.002, 0.5, 0.005, 0.2, 0.02], dtype=np.float32))
        row = g.bonuses(n, log_probs)
        assert all(abs(row[t] - g.step(n, t, float(log_probs[t]))[1]) < 1e-6 for t in range(6))
    off = ContextGraph([([1, 2, 3], 1.5)], 6, floor=0.0)  # no floor: the log-probabilities change nothing
    assert np.array_equal(off.bonuses(1, np.full(6, -20.0)), g.bonuses(1))
    assert off.step(1, 2, -50.0) == off.step(1, 2) == (2, 1.5)
    with pytest.raises(ValueError):
        ContextGraph([([1], 1.0)], vocab_size=4, floor=-1.0)
    strong = ContextGraph([([1, 2, 3], 6.0)], vocab_size=6, floor=3.0)  # the floor scales with the boost: e^-18
    assert strong.step(ContextGraph.ROOT, 1, unsure) == (1, 6.0)


class _Ruled(HeadRunner):
    """A head that hears token 1 at the frame marked 1 and all but rules out token 2 (p ~ 1e-4) at the frame marked 2,
    where blank is the likeliest."""

    def __init__(self) -> None:
        self.blank_id, self.context_size, self.blank_penalty = 0, 2, 0.0
        self.start_context = [0, 0]

    def decoder(self, y: np.ndarray) -> np.ndarray:
        return y.astype(np.float32)

    def joiner(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        logits = np.tile(np.array([0.0, -10.0, -10.0, -10.0], dtype=np.float32), (len(encoder_out), 1))
        logits[encoder_out[:, 0] == 1] = [-5.0, 0.0, -10.0, -8.0]
        logits[encoder_out[:, 0] == 2] = [0.0, -10.0, -9.2, -1.0]
        return logits


def test_acoustic_floor_in_beam_search_keeps_a_boost_off_a_ruled_out_token() -> None:
    enc = np.array([[[0.0], [1.0], [2.0], [0.0]]], dtype=np.float32)  # (N, C, E)
    got = {}
    for floor in (0.0, 0.5):  # 0.5 x boost 10: log P >= -5, and log P(2) is about -9.5
        st = BeamState(hotwords=ContextGraph([([1, 2], 10.0)], vocab_size=4, floor=floor))
        modified_beam_search(_Ruled(), enc, [st], beam=4)
        got[floor] = st.best.tokens
    assert got[0.0] == [1, 2] and got[0.5] == [1], got  # the boost wrote "2" over blank; the floor does not let it


class _Floored(HeadRunner):
    """A head whose joiner ignores the tokens before: each frame's logits are the encoder output itself."""

    def __init__(self) -> None:
        self.blank_id, self.context_size, self.blank_penalty = 0, 1, 0.0
        self.start_context = [0]

    def decoder(self, y: np.ndarray) -> np.ndarray:
        return y.astype(np.float32)

    def joiner(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        return encoder_out.copy()


def _frame(token_log_probs: list[float]) -> np.ndarray:
    """`(V,)` logits whose log-softmax gives tokens 1.. `token_log_probs` and blank the rest."""
    p = np.exp(np.array(token_log_probs, dtype=np.float64))
    return np.log(np.r_[1.0 - p.sum(), p])


def test_beam_search_keeps_equal_tokens_at_different_graph_nodes_apart() -> None:
    """Token 1 (a hotword's first token) said at frame 0 just above the acoustic floor (log P -7.9 >= -4 x boost 2)
    and at frame 1 just below it (-8.1): the same tokens, one path with its bonus pending at the phrase's node, one
    at the root with none. Token 3 then fails the match: the first path's pending bonus is taken back from its own
    share only, so the sequence's score is the exact sum of both paths (merged on tokens alone it was -7.845)."""
    enc = np.stack([_frame([-7.9, -30, -30]), _frame([-8.1, -30, -30]), _frame([-30, -30, -0.05])])
    enc = enc[None].astype(np.float32)  # (N, C, V): the joiner passes it through
    g = ContextGraph([([1, 2], 2.0)], vocab_size=4, word_start=np.array([True, True, False, True]), floor=4.0)
    st = BeamState(hotwords=g)
    head = _Floored()
    modified_beam_search(head, enc[:, :2], [st], beam=4)
    lp = enc[0].astype(np.float64) - np.log(np.exp(enc[0].astype(np.float64)).sum(-1, keepdims=True))  # (C, V)
    above = lp[0, 1] + 2.0 + lp[1, 0]  # token at frame 0: the phrase's node, 2.0 pending
    below = lp[0, 0] + lp[1, 1]  # token at frame 1: the root, no bonus
    ones = sorted((h.node, h.log_prob) for h in st.hyps if h.tokens == [1])
    assert [n for n, _ in ones] == [ContextGraph.ROOT, 1], st.hyps
    assert abs(ones[0][1] - below) < 1e-4 and abs(ones[1][1] - above) < 1e-4, (ones, below, above)
    modified_beam_search(head, enc[:, 2:], [st], beam=4)
    exact = np.logaddexp(above - 2.0 + lp[2, 3], below + lp[2, 3])
    got = [h for h in st.hyps if h.tokens == [1, 3]]
    assert len(got) == 1 and abs(got[0].log_prob - exact) < 1e-4, (got, exact)  # both at the root again: merged
    plain = BeamState()  # without hotwords the nodes are all the root: one hypothesis per token sequence
    modified_beam_search(head, enc, [plain], beam=4)
    assert len({tuple(h.tokens) for h in plain.hyps}) == len(plain.hyps), plain.hyps


def test_best_adds_up_equal_tokens_at_different_graph_nodes() -> None:
    from server.transducer import Hypothesis

    g = ContextGraph([([1, 2], 2.0)], vocab_size=4)
    at_phrase = Hypothesis([1], [0], -1.0, [0.5], node=g.step(ContextGraph.ROOT, 1)[0])  # -3.0 without its pending 2
    at_root = Hypothesis([1], [1], -3.1, [0.4], node=ContextGraph.ROOT)
    other = Hypothesis([3], [0], -2.5, [0.6], node=ContextGraph.ROOT)
    st = BeamState([other, at_root, at_phrase], hotwords=g)
    assert st.best is at_phrase  # [1] with log(e^-3.0 + e^-3.1) = -2.36 beats [3] at -2.5; its likelier path stands
    st = BeamState([other, at_root], hotwords=g)
    assert st.best is other


def test_word_starts_marks_word_initial_and_special_pieces() -> None:
    got = word_starts(["<blk>", "\u2581more", "n", "o", "'s", "<cc>", "w"])
    assert got.tolist() == [True, True, False, False, True, True, False]
    with pytest.raises(ValueError):
        ContextGraph([([1], 1.0)], vocab_size=4, word_start=np.ones(3, dtype=bool))


def test_hotwords_are_written_in_the_case_of_the_vocabulary() -> None:
    """icefall's and sherpa-onnx's LibriSpeech-trained models write their pieces in capitals ("▁THE"): a hotword is
    written in capitals for them, in small letters for the others, whatever case it was given in."""
    from server.biasing import hotword_text, writes_capitals
    from server.tokens import TokenTable

    upper = TokenTable(["<blk>", "<sos/eos>", "<unk>", "S", "▁THE", "▁", "T", "<0xE4>", "▁MO", "RE", "NO", "'S"])
    lower = TokenTable(["<blk>", "<unk>", "s", "▁the", "▁", "t", "<0xE4>", "▁mo", "re", "no", "'s"])
    assert writes_capitals(upper) and not writes_capitals(lower)  # special and byte pieces do not count
    assert not writes_capitals(TokenTable(["<blk>", "▁", "好", "你"]))  # no letters with a case: as before
    assert hotword_text(upper, " Moreno's  the ") == "MORENO'S THE" and hotword_text(lower, "Moreno") == "moreno"
    assert phrase_tokens(upper, "Moreno") == phrase_tokens(upper, "MORENO") == [8, 9, 10]
    assert phrase_tokens(lower, "MoReNo") == [7, 8, 9]
    with pytest.raises(ValueError, match=r"cannot write \(no token covers 'Z'\)"):
        phrase_tokens(upper, "zen")
    with pytest.raises(ValueError, match="empty"):
        phrase_tokens(upper, "  ")


def test_graph_refuses_bad_phrases() -> None:
    for phrases in ([], [([], 1.0)], [([1], 0.0)], [([9], 1.0)]):
        with pytest.raises(ValueError):
            ContextGraph(phrases, vocab_size=8)


# ---- The n-gram LM ----


def _toy_lm(order: int = 3) -> NgramLM:
    rng = random.Random(0)
    sentences = [[rng.choice([1, 2, 3, 4, 5]) for _ in range(rng.randint(1, 6))] for _ in range(40)]
    sentences += [[6, 7, 8]] * 5
    return train_ngram(sentences, vocab_size=12, boundary_id=0, order=order)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_lm_distributions_sum_to_one(order: int) -> None:
    lm = _toy_lm(order)
    for history in [(), (6,), (6, 7), (1, 2, 3), (11, 10), (9,)]:
        total = np.exp(lm.log_probs(history).astype(np.float64)).sum()
        assert abs(total - 1.0) < 1e-5, f"history {history}: probabilities sum to {total}"


def test_lm_prefers_what_it_saw_and_round_trips(tmp_path: Path) -> None:
    lm = _toy_lm()
    p = np.exp(lm.log_probs((6, 7)))
    assert p[8] > 0.5 and p[8] == p.max(), p  # "6 7" was always followed by 8
    assert np.exp(lm.log_probs((7, 8)))[0] > 0.5  # and then by </s> (the boundary id's column)
    lm.save(tmp_path / "lm.npz")
    again = NgramLM.load(tmp_path / "lm.npz")
    for h in [(), (6, 7), (3, 3)]:
        np.testing.assert_array_equal(lm.log_probs(h), again.log_probs(h))
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    with pytest.raises(ValueError, match=r"bad\.npz"):
        NgramLM.load(tmp_path / "bad.npz")


def test_a_corrupt_or_cut_off_lm_file_is_a_value_error_naming_it(tmp_path: Path) -> None:
    """numpy's reader raises zipfile's, zlib's and EOF errors for broken .npz files: `load` says ValueError, which
    the bundle loader turns into a BundleError, so one broken LM does not stop the server loading other bundles."""
    _toy_lm().save(tmp_path / "lm.npz")
    whole = (tmp_path / "lm.npz").read_bytes()
    for body in (b"PK\x03\x04" + b"\0" * 50, whole[: len(whole) // 2], whole[:-30]):
        (tmp_path / "bad.npz").write_bytes(body)
        with pytest.raises(ValueError, match=r"^bad\.npz: "):
            NgramLM.load(tmp_path / "bad.npz")


@pytest.fixture(scope="module")
def adapted_bundle(tmp_path_factory) -> Path:
    """A copy of bundles/en-small (its model files linked) with an LM trained by `parley lm train`."""
    folder = tmp_path_factory.mktemp("adapted") / "en-small"
    folder.mkdir()
    for f in EN_SMALL.iterdir():
        if f.name != "bundle.json":
            (folder / f.name).symlink_to(f)
    (folder / "bundle.json").write_text((EN_SMALL / "bundle.json").read_text())
    text = folder.parent / "domain.txt"
    text.write_text("Text Marlow that I'm leaving!\ndo i have any new messages from marlow\n\ncall marlow now\n")
    assert lm_main(["train", "--text", str(text), "--bundle", str(folder), "--name", "names", "--order", "3"]) == 0
    return folder


def test_lm_train_adds_a_checked_lm_to_the_bundle(adapted_bundle: Path) -> None:
    meta = json.loads((adapted_bundle / "bundle.json").read_text())
    entry = meta["lms"][0]
    assert entry["name"] == "names" and entry["file"] in meta["files"] and entry["sentences"] == 3
    bundle = load_bundle(adapted_bundle, threads=1)
    lm = bundle.lms["names"].lm
    sp = bundle.heads[0].sp
    assert lm.sentence_log_prob(sp.encode("call marlow now")) > lm.sentence_log_prob(sp.encode("call marco now"))
    assert Engine(bundle).lms == [
        {
            "name": "names",
            "language": "en",
            "kind": "ngram",
            "order": 3,
            "lm_scale": 0.5,
            "ilm_scale": 0.3,
            "lodr_scale": 0.0,
            "role": "domain",
        }
    ]
    broken = adapted_bundle.parent / "broken"
    broken.mkdir()
    for f in adapted_bundle.iterdir():
        (broken / f.name).symlink_to(f.resolve())
    (broken / "bundle.json").unlink()
    meta["files"][entry["file"]]["sha256"] = "0" * 64
    (broken / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"lm-names\.npz: sha256"):
        load_bundle(broken, threads=1)


# ---- Fusion and the internal LM ----


class _Stub(HeadRunner):
    """A head whose joiner says blank at every frame but one, where tokens 1 and 2 are nearly tied (1 ahead)."""

    def __init__(self) -> None:
        self.blank_id, self.context_size, self.blank_penalty = 0, 2, 0.0
        self.start_context = [0, 0]

    def decoder(self, y: np.ndarray) -> np.ndarray:
        return y.astype(np.float32)  # (N, J=2): the context itself

    def joiner(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        logits = np.full((len(encoder_out), 4), -10.0, dtype=np.float32)
        logits[:, 0] = 0.0
        speaking = encoder_out[:, 0] > 0  # the frame with a token
        logits[speaking] = [-5.0, 0.0, -0.2, -8.0]
        return logits

    def internal_lm(self, decoder_out: np.ndarray) -> np.ndarray:
        return np.zeros((len(decoder_out), 4), dtype=np.float32)


def test_fusion_moves_the_output_towards_the_lm() -> None:
    head = _Stub()
    enc = np.zeros((2, 3, 1), dtype=np.float32)  # (N, C, E): two streams, the same acoustics
    enc[:, 1, 0] = 1.0
    lm = train_ngram([[2], [2], [2, 3]], vocab_size=4, boundary_id=0, order=2)
    plain, fused = BeamState(), BeamState(fusion=LmFusion(lm, lm_scale=0.5))
    modified_beam_search(head, enc, [plain, fused])  # one batch, one stream fused
    assert plain.best.tokens == [1] and fused.best.tokens == [2]
    hot = BeamState(hotwords=ContextGraph([([2], 1.0)], vocab_size=4))
    modified_beam_search(head, enc[:1], [hot])
    assert hot.best.tokens == [2]


def test_a_source_lm_takes_back_what_the_domain_lm_shares_with_it() -> None:
    head = _Stub()
    enc = np.zeros((1, 3, 1), dtype=np.float32)
    enc[:, 1, 0] = 1.0
    lm = train_ngram([[2], [2], [2, 3]], vocab_size=4, boundary_id=0, order=2)
    fused = BeamState(fusion=LmFusion(lm, lm_scale=0.5))
    ratio = BeamState(fusion=LmFusion(lm, lm_scale=0.5, source=lm, lodr_scale=0.5))  # the same LM: nothing left
    unused = BeamState(fusion=LmFusion(lm, lm_scale=0.5, source=lm, lodr_scale=0.0))
    modified_beam_search(head, np.concatenate([enc, enc, enc]), [fused, ratio, unused])
    assert fused.best.tokens == [2] and ratio.best.tokens == [1] and unused.best.tokens == [2]
    assert np.isfinite(ratio.best.log_prob)


def test_source_lm_in_the_bundle_and_the_plan(adapted_bundle: Path, tmp_path: Path) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    for f in adapted_bundle.iterdir():
        if f.name != "bundle.json":
            (folder / f.name).symlink_to(f.resolve())
    (folder / "bundle.json").write_text((adapted_bundle / "bundle.json").read_text())
    general = tmp_path / "train.txt"
    general.write_text("set a timer for ten minutes\nlock the back door\ncall noah now\n")
    base = ["train", "--bundle", str(folder), "--type", "ngram"]
    assert lm_main([*base, "--text", str(general), "--name", "src", "--order", "2", "--role", "source"]) == 0
    assert lm_main([*base, "--text", str(general), "--name", "src2", "--role", "source"]) == 2  # one per language
    domain = tmp_path / "domain.txt"
    domain.write_text("call marlow now\n")
    assert lm_main([*base, "--text", str(domain), "--name", "dom", "--lodr-scale", "0.2"]) == 0
    bundle = load_bundle(folder, threads=1)
    assert bundle.lms["src"].role == "source" and bundle.lms["src"].lm.order == 2
    assert bundle.lms["dom"].lodr_scale == 0.2 and bundle.lms["dom"].role == "domain"
    engine = Engine(bundle)
    plan = engine.plan()
    fusion = engine.adapt(plan, Adaptation(lm="dom"))[0][1]
    assert fusion is not None and fusion.source is bundle.lms["src"].lm and fusion.lodr_scale == 0.2
    assert engine.adapt(plan, Adaptation(lm="dom", lodr_scale=0.0))[0][1].source is None
    # without a source LM: a default lodr_scale is a broken bundle, a stream's an unsupported option
    meta = json.loads((folder / "bundle.json").read_text())
    meta["lms"] = [e for e in meta["lms"] if e["name"] != "src"]
    (folder / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="no source LM"):
        load_bundle(folder, threads=1)
    meta["lms"] = [e | {"lodr_scale": 0.0} for e in meta["lms"]]
    (folder / "bundle.json").write_text(json.dumps(meta))
    engine = Engine(load_bundle(folder, threads=1))
    with pytest.raises(UnsupportedOptionError, match="no source LM"):
        engine.adapt(engine.plan(), Adaptation(lm="dom", lodr_scale=0.3))
    meta["lms"][0]["role"] = "target"
    (folder / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="role"):
        load_bundle(folder, threads=1)


def test_internal_lm_is_the_joiner_without_the_encoder(adapted_bundle: Path) -> None:
    model = StreamingTransducer(load_bundle(adapted_bundle, threads=1))
    runner = model.heads[0]
    dec = runner.decoder(np.array([[0, 0], [0, 7], [5, 9]], dtype=np.int64))  # (3, J)
    ilm = runner.internal_lm(dec)
    joiner = runner.head.joiner
    E = model.spec.out_dim
    logits = joiner.run(None, {"encoder_out": np.zeros((3, E), np.float32), "decoder_out": dec})[0].astype(np.float64)
    nonblank = np.delete(np.arange(logits.shape[1]), runner.blank_id)
    want = logits[:, nonblank] - np.log(np.exp(logits[:, nonblank]).sum(-1, keepdims=True))
    assert np.abs(ilm[:, nonblank] - want).max() < 1e-4, np.abs(ilm[:, nonblank] - want).max()
    assert (ilm[:, runner.blank_id] == 0).all()


def test_decoder_and_internal_lm_rows_are_computed_once_per_context(adapted_bundle: Path) -> None:
    """HeadRunner.decoder_rows / internal_lm_rows: what `decoder` / `internal_lm` give each context, a context run
    through the prediction network once however often beam search asks for it."""
    runner = StreamingTransducer(load_bundle(adapted_bundle, threads=1)).heads[0]
    asked: list[int] = []
    decoder = runner.decoder

    def counting(y: np.ndarray) -> np.ndarray:
        asked.append(len(y))
        return decoder(y)

    runner.decoder = counting  # type: ignore[method-assign]
    contexts = [(0, 0), (0, 7), (0, 0), (5, 9)]
    direct = decoder(np.array(contexts, dtype=np.int64))
    assert np.abs(runner.decoder_rows(contexts) - direct).max() < 1e-5
    assert asked == [3]  # the three distinct contexts, in one run
    assert (
        np.abs(runner.decoder_rows([(5, 9), (0, 7), (3, 4)]) - decoder(np.array([[5, 9], [0, 7], [3, 4]]))).max() < 1e-5
    )
    assert asked == [3, 1]  # only the new one
    ilm = runner.internal_lm_rows(contexts)
    assert np.abs(ilm - runner.internal_lm(direct)).max() < 1e-4 and asked == [3, 1]  # the decoder rows remembered
    assert np.array_equal(runner.internal_lm_rows(contexts[::-1]), ilm[::-1])


# ---- The start fields and their checks ----


def test_start_parses_hotwords_and_lm() -> None:
    s = start_from_dict({**START, "hotwords": ["kowalczyk", {"phrase": "zentrix labs", "boost": 2.5}], "lm": "x"})
    assert s.hotwords == (("kowalczyk", None), ("zentrix labs", 2.5)) and s.lm == "x" and s.lm_scale is None
    assert start_from_dict({**START, "lm": "x", "lodr_scale": 0.25}).lodr_scale == 0.25
    assert s.respell and not start_from_dict({**START, "hotwords": ["x"], "respell": False}).respell
    bad = [
        {"hotwords": ["x"], "respell": "no"},
        {"hotwords": "kowalczyk"},
        {"hotwords": [3]},
        {"hotwords": [""]},
        {"hotwords": [{"phrase": "x", "boost": 0}]},
        {"hotwords": [{"phrase": "x", "boost": 1e400}]},
        {"hotwords": [{"phrase": "x", "weight": 1}]},
        {"lm_scale": 0.5},
        {"lodr_scale": 0.5},
        {"lm": "x", "ilm_scale": -1},
        {"lm": "x", "lodr_scale": 6},
        {"hotwords": ["x"], "search": "greedy"},
    ]
    for fields in bad:
        with pytest.raises(ProtocolError) as e:
            start_from_dict({**START, **fields})
        assert e.value.code == INVALID_VALUE and len(e.value.message) <= 300, (fields, e.value)


def test_engine_checks_hotwords_against_its_limits(adapted_bundle: Path) -> None:
    engine = Engine(load_bundle(adapted_bundle, threads=1), EngineConfig(max_hotwords=3, max_hotword_chars=20))
    plan = engine.plan()
    ok = engine.adapt(plan, Adaptation((("kowalczyk", None), ("zentrix labs", 4.0)), "names", 0.5))
    graph, fusion, speller = ok[0]
    assert graph is not None and fusion is not None and (fusion.lm_scale, fusion.ilm_scale) == (0.5, 0.3)
    assert speller is not None and speller.phrases == ["kowalczyk", "zentrix labs"]
    assert engine.search_for(None, Adaptation((("x", None),))) == "beam"
    for adaptation, error in [
        (Adaptation(tuple((w, None) for w in "abcd")), "at most 3"),
        (Adaptation((("x" * 21, None),)), "at most 20"),
        (Adaptation((("naïve ☃", None),)), "cannot write"),
    ]:
        with pytest.raises(InvalidOptionError, match=error):
            engine.adapt(plan, adaptation)
    with pytest.raises(UnsupportedOptionError, match="no lm"):
        engine.adapt(plan, Adaptation(lm="nope"))
    with pytest.raises(InvalidOptionError, match="beam"):
        engine.search_for("greedy", Adaptation(lm="names"))


def test_hotword_boost_and_floor_defaults_reach_the_graph(adapted_bundle: Path) -> None:
    from server.biasing import HOTWORD_BOOST, HOTWORD_FLOOR
    from server.settings import Settings

    bundle = load_bundle(adapted_bundle, threads=1)
    ask = Adaptation((("kowalczyk", None), ("zentrix labs", 4.0)))
    graph = Engine(bundle).adapt(Engine(bundle).plan(), ask)[0][0]
    assert graph is not None and graph.floor == HOTWORD_FLOOR == Settings().hotword_floor
    assert graph.gain.max() == 4.0 and HOTWORD_BOOST in graph.gain  # the phrase without a boost gets the default
    engine = Engine(bundle, EngineConfig(hotword_floor=0.0, hotword_boost=3.0))
    graph = engine.adapt(engine.plan(), ask)[0][0]
    assert graph is not None and graph.floor == 0.0 and 3.0 in graph.gain


# ---- End to end on en-small ----

# An out-of-grammar surname in a grammar sentence; en-small hears "paul" without help. Its pieces are letters the
# model rarely strings together, so it needs a strong boost (docs/adaptation.md has the measurements).
NAME_SENTENCE = "do i have any new messages from dalton"
NAME = "dalton"
NAME_BOOST = 8.0


def test_hotword_brings_an_unseen_name_end_to_end(adapted_bundle: Path) -> None:
    from models.data.espeak import synthesize

    syn = synthesize(NAME_SENTENCE, voice="en-us", variant="m3", rate=160)
    engine = Engine(load_bundle(adapted_bundle, threads=1), EngineConfig(max_wait_ms=0))

    async def run(adaptation: Adaptation | None, search: str | None) -> str:
        await engine.start()
        try:
            finals = await engine.recognize(syn.samples, syn.sample_rate, search, adaptation=adaptation)
        finally:
            await engine.close()
        return " ".join(f.text for f in finals)

    without = asyncio.run(run(None, "beam"))
    boosted = asyncio.run(run(Adaptation(((NAME, NAME_BOOST), ("zentrix labs", None))), None))
    assert NAME not in without.split(), without
    assert boosted == NAME_SENTENCE, (without, boosted)
    assert phrase_tokens(engine.model.heads[0].head.sp, "Dalton") == phrase_tokens(engine.model.heads[0].head.sp, NAME)


def test_lm_train_help_and_unknown_head(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        lm_main(["train", "--help"])
    assert "--order" in capsys.readouterr().out
    (tmp_path / "t.txt").write_text("x\n")
    assert lm_main(["train", "--text", str(tmp_path / "t.txt"), "--bundle", str(EN_SMALL), "--name", "x",
                    "--language", "xx"]) == 2  # fmt: skip
    assert list(itertools.islice(EN_SMALL.glob("lm-*"), 1)) == []  # nothing was written into the committed bundle
