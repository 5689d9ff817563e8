"""What one stream runs on a bundle: its heads (`HeadPlan`), its search, and its adaptation, checked against the
bundle and the server's limits before any audio flows.

    planner = Planner(bundle, model, HotwordLimits())
    plan = planner.plan("auto", translate=["en"])      # HeadPlan: caption by LID, translate into English
    search = planner.search_for(None, adaptation)      # "beam" when adapted, else the default
    adapted = planner.adapt(plan, adaptation)          # {head: (hotword graph, LM fusion, respeller)}

A bundle has one encoder and one or more heads (prediction network, joiner, tokens), one per output language. A
stream captions with one head (or, with "auto", with the head of the language the streaming identifier finds most
likely among the plan's candidates) and runs one more head per translation asked for (multilingual "sm2" bundles).
A configurable multilingual encoder (models/nn/cmm.py) also learns which languages the speaker uses (`spoken`): the
`languages` that restrict "auto", or the one `language` named; the encoder mixes only those languages' experts.

A stream may ask for adaptation (`Adaptation`): hotwords, tokenized with each captioning head's tokenizer into a
`ContextGraph` (server/biasing.py), and a language model of the bundle to fuse into the search of the head it serves
(`LmFusion`). Adapted streams search with modified beam search.

A bundle may hold a general LM of a language ("default": true in bundle.json's "lms"): a stream that captions that
language, asks for no search (or for beam search) and no LM or hotwords of its own gets it, with beam search, at its
default scales (`Planner.defaulted`), unless the server's `--search` is greedy. `"lm": "none"` opts a stream out of
the LM (beam search without it), `"search": "greedy"` out of both. Streams with hotwords keep the search their
hotwords were tuned with (no general LM), and so do all streams of a server with `--hotwords-file`.

Errors a client can cause are `UnsupportedOptionError` (the bundle cannot) and `InvalidOptionError` (no bundle
could); both are `ValueError`s, and the session answers them with the protocol's error codes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from server.biasing import (
    HOTWORD_BOOST,
    HOTWORD_FLOOR,
    MAX_HOTWORD_BOOST,
    SOUNDS_LIKE_BOOST,
    ContextGraph,
    phrase_tokens,
    word_starts,
    writes_capitals,
)
from server.bundle import Bundle, BundleLm, default_lm, source_lm
from server.lm import MAX_FUSION_SCALE
from server.prompt import COMMON_STARTS, prompt_terms
from server.protocol import NO_LM, preview
from server.respell import (
    RESPELL_THRESHOLD,
    RESPELL_VERIFY_MARGIN,
    RESPELL_VERIFY_THRESHOLD,
    Respeller,
    normalized_phrase,
)
from server.transducer import LmFusion, StreamingTransducer

DEFAULT_SEARCH = "greedy"  # what a stream gets when its start names no search and its model has no general LM


@dataclass(frozen=True)
class HeadPlan:
    """Which heads one stream runs (see `Planner.plan`).

    Attributes:
        caption: the captioning head; None: chosen by the language identifier among `candidates` ("auto").
        candidates: "auto": (LID language index, head index) of each language it may choose.
        translate: (language, head index) of each translation asked for, in the order asked.
        multilingual: results say which language is captioned (and carry translations when asked).
        spoken: a CMM encoder's language selection for this stream (empty: every language; other encoders: empty).
    """

    caption: int | None = 0
    candidates: tuple[tuple[int, int], ...] = ()
    translate: tuple[tuple[str, int], ...] = ()
    multilingual: bool = False
    spoken: tuple[str, ...] = ()

    @property
    def auto(self) -> bool:
        return self.caption is None

    @property
    def captions(self) -> list[int]:
        """The heads that may caption: the one named, or every candidate of "auto"."""
        return [self.caption] if self.caption is not None else [h for _, h in self.candidates]


class UnsupportedOptionError(ValueError):
    """A language, translation or restriction the bundle cannot serve (protocol error unsupported_option)."""


class InvalidOptionError(ValueError):
    """Hotwords or fusion settings that no model could serve: too many, too long, untokenizable, a search that
    cannot use them (protocol error invalid_value)."""


@dataclass(frozen=True)
class Adaptation:
    """What a stream asks of the search beyond the audio.

    Attributes:
        hotwords: (phrase, boost per token) of each hotword; boost None: the server's default.
        lm: the name of one of the bundle's LMs to fuse, or None.
        lm_scale: its weight (None: the bundle's default for it).
        ilm_scale: the internal LM's subtracted weight (None: the bundle's default).
        lodr_scale: the bundle's source LM's subtracted weight (None: the bundle's default).
        respell: whether doubtful words that sound like a hotword are written as it (server/respell.py; the server's
            `respell_threshold` 0 turns it off for every stream).
        sounds_like: (phrase, how the model writes it when it hears it) of hotwords that have them, for respelling.
    """

    hotwords: tuple[tuple[str, float | None], ...] = ()
    lm: str | None = None
    lm_scale: float | None = None
    ilm_scale: float | None = None
    lodr_scale: float | None = None
    respell: bool = True
    sounds_like: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.hotwords) or self.lm not in (None, NO_LM)


# A stream's adaptation, resolved per head: (hotword graph, LM fusion, hotword respeller), any of them None.
HeadAdaptation = dict[int, tuple[ContextGraph | None, LmFusion | None, Respeller | None]]


@dataclass(frozen=True)
class HotwordLimits:
    """What one stream may ask for in hotwords."""

    max_hotwords: int = 100  # hotwords one stream may ask for
    max_hotword_chars: int = 64  # characters in one hotword
    max_hotword_tokens: int = 32  # tokens of one hotword under a head's tokenizer
    hotword_boost: float = HOTWORD_BOOST  # the bonus per token of a hotword that names no boost
    server: tuple[tuple[str, float | None], ...] = ()  # the server's hotwords (--hotwords-file): every beam stream's
    respell_threshold: float = RESPELL_THRESHOLD  # hotword respelling's least closeness (server/respell.py); 0: off
    hotword_floor: float = HOTWORD_FLOOR  # the hotword graph's acoustic floor (server/biasing.py); 0: off
    respell_verify_threshold: float = RESPELL_VERIFY_THRESHOLD  # finals' respelling checked by the transducer; 1: off
    respell_verify_margin: float = RESPELL_VERIFY_MARGIN  # its margin per hotword token (server/respell.py)
    search: str = "auto"  # the search of streams that ask for none (server/protocol.py, DEFAULT_SEARCHES)
    server_sounds_like: tuple[tuple[str, tuple[str, ...]], ...] = ()  # how the model hears some of `server`


class Planner:
    """A bundle's answers to what a stream asks for: languages, translations, search and adaptation.

    Args:
        bundle: the loaded bundle.
        model: its recognizer (heads and language identifier).
        limits: the server's hotword limits.
    """

    def __init__(self, bundle: Bundle, model: StreamingTransducer, limits: HotwordLimits | None = None) -> None:
        self.bundle = bundle
        self.model = model
        self.limits = limits or HotwordLimits()
        self._server_cache: dict[int, list[tuple[str, list[int], float]]] = {}
        self._server_ways_cache: dict[int, list[tuple[str, str, list[int] | None]]] = {}

    @property
    def languages(self) -> list[str]:
        return list(self.bundle.languages)

    @property
    def multilingual(self) -> bool:
        """A bundle of several output languages (kind "sm2"): any head translates, results name the language."""
        return self.bundle.kind == "sm2"

    @property
    def multi_talker(self) -> bool:
        """A multi-talker bundle (kind "tsot"): results carry `speakers` and each word's `speaker`."""
        return any(h.post_processing == "tsot" for h in self.bundle.heads)

    @property
    def lms(self) -> list[dict]:
        """The bundle's language models, as GET /v1/models lists them."""
        return [lm.describe() for lm in self.bundle.lms.values()]

    @property
    def translate_languages(self) -> list[str]:
        """What `translate` may ask for: every head's language in a multilingual bundle, nothing otherwise."""
        return list(self.bundle.languages) if self.multilingual else []

    @property
    def auto_languages(self) -> list[str]:
        """The languages "auto" can tell apart and caption: the identifier's languages that have a head."""
        lid = self.model.lid
        if lid is None:
            return []
        return [lang for lang in lid.languages if self.model.head_index(lang) is not None]

    def head_for(self, language: str | None) -> int | None:
        """The head that captions `language` (None or "auto" on a one-head bundle: that head); None if none."""
        if language is None or (language == "auto" and len(self.model.heads) == 1):
            return 0
        return self.model.head_index(language)

    def plan(
        self, language: str | None = None, translate: Sequence[str] = (), languages: Sequence[str] = ()
    ) -> HeadPlan:
        """The heads a stream runs for a start's `language`, `translate` and `languages` (the restriction of "auto").

        `language` None means "auto" on a bundle with a language identifier, else its first head.

        Raises:
            UnsupportedOptionError: a language, translation or restriction this bundle cannot serve.
        """
        lid = self.model.lid
        if language is None and (lid is not None or languages):
            language = "auto"
        if languages and language != "auto":
            raise UnsupportedOptionError(
                f"languages {preview(list(languages))} restrict auto, but language is {preview(language)}"
            )
        if language == "auto" and (lid is not None or languages):
            if lid is None:
                raise UnsupportedOptionError("has no language identifier: name the language instead of auto")
            if bad := [x for x in languages if x not in self.auto_languages]:
                raise UnsupportedOptionError(f"cannot detect {preview(bad)}: auto knows {self.auto_languages}")
            allowed = list(languages) or self.auto_languages
            if not allowed:
                raise UnsupportedOptionError("has no head for any language its identifier knows")
            candidates = tuple((lid.languages.index(x), self.model.head_index(x)) for x in allowed)
            caption: int | None = None
        else:
            caption = self.head_for(language)
            if caption is None:
                raise UnsupportedOptionError(f"cannot recognize language {preview(language)}: {self.languages}")
            candidates = ()
        if translate and not self.multilingual:
            raise UnsupportedOptionError("has no translation heads")
        if bad := [t for t in translate if t not in self.translate_languages]:
            raise UnsupportedOptionError(f"cannot translate into {preview(bad)}: {self.translate_languages}")
        pairs = tuple((t, self.model.head_index(t)) for t in translate)
        spoken = self.spoken_languages(language, languages)
        return HeadPlan(caption, candidates, pairs, self.multilingual, spoken)  # type: ignore[arg-type]

    def spoken_languages(self, language: str | None, languages: Sequence[str]) -> tuple[str, ...]:
        """A CMM encoder's selection for a start's `language` and `languages`: the restriction of "auto", else the
        language named, among the encoder's languages; empty (every language) when that leaves none, when nothing
        is said, and for other encoders."""
        cmm = self.model.spec.cmm_languages
        said = list(languages) if language == "auto" or language is None else [language]
        return tuple(x for x in cmm if x in said)

    def general_lm(self, plan: HeadPlan | None) -> BundleLm | None:
        """The bundle's general LM ("default": true) of the first language `plan` may caption that has one (None:
        none, or no plan)."""
        if plan is None:
            return None
        for h in plan.captions:
            lm = default_lm(self.bundle.lms, self.model.heads[h].head.language)
            if lm is not None:
                return lm
        return None

    def defaulted(self, plan: HeadPlan, search: str, adaptation: Adaptation | None) -> Adaptation | None:
        """`adaptation` with the bundle's general LM (`general_lm`) where a stream gets it: beam search, no LM
        named (`"lm": "none"` included), no hotwords of its own or the server's, the server's search not greedy."""
        if search != "beam" or self.limits.search == "greedy" or self.limits.server:
            return adaptation
        if adaptation is not None and (adaptation.hotwords or adaptation.lm is not None):
            return adaptation
        lm = self.general_lm(plan)
        if lm is None:
            return adaptation
        return replace(adaptation or Adaptation(), lm=lm.name)

    def search_for(
        self,
        search: str | None,
        adaptation: Adaptation | None,
        alternatives: int = 0,
        plan: HeadPlan | None = None,
    ) -> str:
        """The search a stream gets: the one asked for, else beam search for an adapted stream or one that asks for
        `alternatives` (the beam's N-best), else the server's `search`: "auto" is beam search where `plan` captions a
        language with a general LM (`general_lm`; the stream will get it, `defaulted`) and greedy elsewhere.

        Raises:
            InvalidOptionError: greedy search asked for together with hotwords, an LM or alternatives.
        """
        if alternatives:
            if search not in (None, "beam"):
                raise InvalidOptionError(f"alternatives need beam search, not {preview(search)}: omit search")
            search = "beam"
        if adaptation is not None and adaptation.active:
            if search not in (None, "beam"):
                raise InvalidOptionError(f"hotwords and lm need beam search, not {preview(search)}: omit search")
            return "beam"
        if search is None and self.limits.server:
            return "beam"  # the server's hotwords apply to streams that do not ask for greedy search
        if search is None and self.limits.search == "auto":
            return "beam" if self.general_lm(plan) is not None else DEFAULT_SEARCH
        return search or self.limits.search

    def _server_hotwords(self, h: int) -> list[tuple[str, list[int], float]]:
        """The server's hotwords under head `h`'s tokenizer as (text, token ids, boost), tokenized once per head
        (those it cannot write are left out for that head)."""
        if h not in self._server_cache:
            head, cfg = self.model.heads[h].head, self.limits
            phrases = []
            for phrase, boost in cfg.server:
                try:
                    ids = phrase_tokens(head.sp, phrase)
                except ValueError:
                    continue
                phrases.append((phrase, ids, cfg.hotword_boost if boost is None else boost))
            self._server_cache[h] = phrases
        return self._server_cache[h]

    def _server_ways(self, h: int) -> list[tuple[str, str, list[int] | None]]:
        """The sounds_like of the server's hotwords as (hotword, normalized; the way it sounds; its token ids under
        head `h`'s tokenizer, None where it cannot write them), tokenized once per head."""
        if h not in self._server_ways_cache:
            sp = self.model.heads[h].head.sp
            ways = []
            for phrase, sounds in self.limits.server_sounds_like:
                for way in sounds:
                    try:
                        ids: list[int] | None = phrase_tokens(sp, way)
                    except ValueError:
                        ids = None
                    ways.append((normalized_phrase(phrase), way, ids))
            self._server_ways_cache[h] = ways
        return self._server_ways_cache[h]

    def writable_hotwords(self, plan: HeadPlan, phrases: Sequence[str]) -> list[str]:
        """The phrases `adapt` would take as hotwords of `plan`, in order, each once, at most `max_hotwords`: those
        within the length limits that every captioning head's tokenizer can write. For clients whose protocol has
        no error to give (Vosk's `phrase_list`): what the model cannot use is left out instead of refused."""
        kept: list[str] = []
        for phrase in phrases:
            if len(kept) == self.limits.max_hotwords:
                break
            if phrase in kept:
                continue
            try:
                self._check_hotword_chars(phrase)
                for h in plan.captions:
                    self._hotword_ids(self.model.heads[h].head, phrase)
            except InvalidOptionError:
                continue
            kept.append(phrase)
        return kept

    def prompt_hotwords(self, plan: HeadPlan, prompt: str, own: Sequence[str] = ()) -> list[str]:
        """The names and terms of a free-text `prompt` (server/prompt.py) that `plan`'s stream may take as hotwords
        beside its `own`: those every captioning head can write, not already among `own` (whatever their case),
        within `max_hotwords` with them. A capitalized word that begins a sentence is an everyday word, not a name,
        where it is one of `COMMON_STARTS` or some captioning head's tokenizer writes it as a single piece."""
        heads = [self.model.heads[h].head for h in plan.captions]

        def common(word: str) -> bool:
            if word in COMMON_STARTS:
                return True
            for head in heads:
                with contextlib.suppress(ValueError):
                    if len(phrase_tokens(head.sp, word)) == 1:
                        return True
            return False

        taken = {p.lower() for p in own}
        terms = [t for t in prompt_terms(prompt, common) if t.lower() not in taken]
        room = self.limits.max_hotwords - len(taken)
        return self.writable_hotwords(plan, terms)[: max(room, 0)]

    def _check_hotword_chars(self, phrase: str) -> None:
        """Raises InvalidOptionError for a hotword over `max_hotword_chars`."""
        if len(phrase) > self.limits.max_hotword_chars:
            raise InvalidOptionError(
                f"hotword {preview(phrase, 40)} has {len(phrase)} characters: at most {self.limits.max_hotword_chars}"
            )

    def _hotword_ids(self, head, phrase: str) -> list[int]:
        """A hotword's token ids under `head`'s tokenizer.

        Raises:
            InvalidOptionError: characters the tokenizer cannot write, or more than `max_hotword_tokens` tokens.
        """
        try:
            ids = phrase_tokens(head.sp, phrase)
        except ValueError as e:
            raise InvalidOptionError(str(e)) from None
        if len(ids) > self.limits.max_hotword_tokens:
            raise InvalidOptionError(
                f"hotword {preview(phrase, 40)} is {len(ids)} tokens long: at most {self.limits.max_hotword_tokens}"
            )
        return ids

    def adapt(self, plan: HeadPlan, adaptation: Adaptation) -> HeadAdaptation:
        """The hotword graph, LM fusion and hotword respeller of each head `plan` may caption with.

        Hotwords are checked against the limits and tokenized with each captioning head's tokenizer (a translation
        head gets none: its words are not the speaker's); the LM goes to the head whose tokens it predicts, which
        must be one of them.

        Raises:
            InvalidOptionError: too many hotwords, one too long or untokenizable, a boost or scale out of range.
            UnsupportedOptionError: an LM the bundle does not have, or one for a language the plan does not caption.
        """
        cfg = self.limits
        if len(adaptation.hotwords) > cfg.max_hotwords:
            raise InvalidOptionError(f"{len(adaptation.hotwords)} hotwords: at most {cfg.max_hotwords} per stream")
        for phrase, boost in adaptation.hotwords:
            self._check_hotword_chars(phrase)
            if boost is not None and not 0 < boost <= MAX_HOTWORD_BOOST:
                raise InvalidOptionError(f"hotword boost {boost!r}: use a number in (0, {MAX_HOTWORD_BOOST:g}]")
        out: HeadAdaptation = {}
        for h in plan.captions:
            head = self.model.heads[h].head
            graph = speller = None
            server = self._server_hotwords(h)
            phrases = [(ids, boost) for _, ids, boost in server]
            if adaptation.hotwords or phrases:
                boosts = {normalized_phrase(t): b for t, _, b in server}
                for phrase, boost in adaptation.hotwords:
                    ids = self._hotword_ids(head, phrase)
                    phrases.append((ids, cfg.hotword_boost if boost is None else boost))
                    boosts[normalized_phrase(phrase)] = phrases[-1][1]
                respelling = cfg.respell_threshold > 0 and adaptation.respell
                # the hotwords' sounds_like, for the speller, and their tokens, boosted only to be respelled (one the
                # tokenizer cannot write: respelling only); the server's tokenized once
                sounds_like: dict[str, list[str]] = {}
                for key, way, way_ids in self._server_ways(h) if respelling else ():
                    if key in boosts:
                        sounds_like.setdefault(key, []).append(way)
                        if way_ids is not None:
                            phrases.append((way_ids, SOUNDS_LIKE_BOOST * boosts[key]))
                for phrase, ways in adaptation.sounds_like if respelling else ():
                    key = normalized_phrase(phrase)
                    if key in boosts:
                        sounds_like.setdefault(key, []).extend(ways)
                        for way in ways:
                            with contextlib.suppress(ValueError):
                                phrases.append((phrase_tokens(head.sp, way), SOUNDS_LIKE_BOOST * boosts[key]))
                graph = ContextGraph(phrases, head.vocab_size, word_starts(head.tokens), cfg.hotword_floor)
                if respelling:  # the same phrases, as words
                    texts = [p for p, _ in adaptation.hotwords] + [t for t, _, _ in server]
                    speller = Respeller(
                        texts,
                        threshold=cfg.respell_threshold,
                        verify_threshold=cfg.respell_verify_threshold,
                        verify_margin=cfg.respell_verify_margin,
                        capitals=writes_capitals(head.sp),  # as the graph's phrases: the vocabulary's case
                        sounds_like=sounds_like,
                    )
            out[h] = (graph, None, speller)
        if adaptation.lm not in (None, NO_LM):
            lm = self.bundle.lms.get(adaptation.lm)
            if lm is None:
                raise UnsupportedOptionError(f"has no lm {preview(adaptation.lm)}: it has {sorted(self.bundle.lms)}")
            h = self.model.head_index(lm.language)
            if h not in out:
                raise UnsupportedOptionError(
                    f"lm {preview(lm.name)} is for {lm.language}, which this stream does not caption"
                )
            scales = (adaptation.lm_scale, adaptation.ilm_scale, adaptation.lodr_scale)
            for x in scales:
                if x is not None and not 0 <= x <= MAX_FUSION_SCALE:
                    raise InvalidOptionError(
                        f"lm_scale, ilm_scale and lodr_scale must be in [0, {MAX_FUSION_SCALE:g}], got {x!r}"
                    )
            lm_scale = lm.lm_scale if adaptation.lm_scale is None else adaptation.lm_scale
            ilm_scale = lm.ilm_scale if adaptation.ilm_scale is None else adaptation.ilm_scale
            lodr_scale = lm.lodr_scale if adaptation.lodr_scale is None else adaptation.lodr_scale
            source = source_lm(self.bundle.lms, lm.language)
            if lodr_scale and source is None:
                raise UnsupportedOptionError(
                    f"has no source LM for {lm.language} (parley lm train --role source): lodr_scale must be 0"
                )
            fusion = LmFusion(lm.lm, lm_scale, ilm_scale, source.lm if source and lodr_scale else None, lodr_scale)
            out[h] = (out[h][0], fusion, out[h][2])
        return {h: a for h, a in out.items() if a != (None, None, None)}
