"""The multilingual grammar (models/grammar): size, written form, determinism, splits, grammar rules."""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest

from models.data import grammar
from models.data.grammar import lexicon
from models.data.grammar.__main__ import main
from models.data.grammar.morphology import contract, finish
from models.data.grammar.sampler import UNSEEN_FAMILIES, sample, sentence_id
from models.data.grammar.text import PATTERNS

SAMPLE = {"train": 6000, "dev": 1500, "test": 1500, "test_unseen": 1500}


@pytest.fixture(scope="module")
def sentences() -> dict[str, list[grammar.Sentence]]:
    return {split: grammar.generate(split, n, seed=7) for split, n in SAMPLE.items()}


def _random_values(template: grammar.Template, rng: random.Random) -> dict:
    while True:
        values = {name: rng.choice(options) for name, options in template.slots.items()}
        if template.check is None or template.check(values):
            return values


def test_api_constants() -> None:
    assert grammar.LANGUAGES == ("en", "de", "es", "fr", "it", "zh")
    assert grammar.SPLITS == ("train", "dev", "test", "test_unseen")


def test_templates_and_families() -> None:
    templates = grammar.templates()
    names = [t.name for t in templates]
    assert len(templates) >= 40, len(templates)
    assert len(set(names)) == len(names), [n for n, c in Counter(names).items() if c > 1]
    families = Counter(t.family for t in templates)
    assert len(families) >= 15, families
    assert sum(c >= 2 for c in families.values()) >= 0.8 * len(families), families
    domains = {t.domain for t in templates}
    assert {"smart_home", "timers", "weather", "calendar", "messages", "travel", "numbers", "qa"} <= domains
    for t in templates:
        assert set(t.text) == set(grammar.LANGUAGES), t.name


def test_english_vocabulary_is_rich() -> None:
    vocabulary = grammar.english_vocabulary()
    assert len(vocabulary) >= 400, len(vocabulary)
    assert {"kitchen", "berlin", "twenty", "thursday", "december", "sunny", "jazz", "anna"} <= vocabulary


def test_every_slot_value_renders_normalized_text_in_every_language() -> None:
    rng = random.Random(0)
    for template in grammar.templates():
        for name, options in template.slots.items():
            for value in options:
                values = {**_random_values(template, rng), name: value}
                if template.check is not None and not template.check(values):
                    continue
                for lang in grammar.LANGUAGES:
                    text = template.render(lang, values)
                    assert PATTERNS[lang].fullmatch(text), (template.name, lang, text)


@pytest.mark.parametrize("split", grammar.SPLITS)
def test_sentences_are_normalized(sentences: dict[str, list[grammar.Sentence]], split: str) -> None:
    assert len(sentences[split]) == SAMPLE[split]
    latin = re.compile(r"[a-zß-öø-ÿœæ]+(?:['-][a-zß-öø-ÿœæ]+)*(?: [a-zß-öø-ÿœæ]+(?:['-][a-zß-öø-ÿœæ]+)*)*")
    han = re.compile(r"[\u4e00-\u9fff]+(?: [\u4e00-\u9fff]+)*")
    for s in sentences[split]:
        assert set(s.text) == set(grammar.LANGUAGES), s.id
        for lang, text in s.text.items():
            assert text and not re.search(r"\d", text), (s.id, lang, text)
            assert (han if lang == "zh" else latin).fullmatch(text), (s.id, lang, text)
        assert 3 <= len(s.text["en"].split()) <= 21, s.text["en"]


def test_generate_is_deterministic() -> None:
    a = grammar.generate("train", 500, seed=3)
    b = grammar.generate("train", 500, seed=3)
    c = grammar.generate("train", 500, seed=4)
    assert a == b
    assert [s.id for s in a] != [s.id for s in c]
    assert grammar.generate("dev", 50, seed=3) == grammar.generate("dev", 50, seed=3)


def test_ids_are_unique_and_deterministic(sentences: dict[str, list[grammar.Sentence]]) -> None:
    everything = [s for split in sentences.values() for s in split]
    ids = [s.id for s in everything]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(rf"{re.escape(s.template)}\.[0-9a-f]{{12}}", s.id) for s in everything)
    template = grammar.templates()[0]
    values = _random_values(template, random.Random(1))
    assert sentence_id(template, values) == sentence_id(template, dict(values))


def test_english_text_identifies_the_sentence(sentences: dict[str, list[grammar.Sentence]]) -> None:
    # No two slot combinations read the same in English: a sentence's text pins down its translations.
    by_text: dict[str, str] = {}
    for s in (s for split in sentences.values() for s in split):
        assert by_text.setdefault(s.text["en"], s.id) == s.id, s.text["en"]


def test_splits_are_disjoint_and_consistent(sentences: dict[str, list[grammar.Sentence]]) -> None:
    for split, items in sentences.items():
        assert all(grammar.split_of(s) == split for s in items), split
    for a in ("train", "dev", "test"):
        for b in ("train", "dev", "test", "test_unseen"):
            if a < b:
                assert not {s.id for s in sentences[a]} & {s.id for s in sentences[b]}, (a, b)
                assert not {s.text["en"] for s in sentences[a]} & {s.text["en"] for s in sentences[b]}, (a, b)


def test_split_proportions() -> None:
    # Over random slot combinations of the seen templates, about 90 / 5 / 5 percent.
    rng = random.Random(11)
    seen = [t for t in grammar.templates() if t.family not in UNSEEN_FAMILIES]
    counts: Counter[str] = Counter()
    for _ in range(6000):
        t = rng.choice(seen)
        english = t.render("en", _random_values(t, rng))
        counts[grammar.split_of(grammar.Sentence("x", t.name, t.family, t.domain, {"en": english}))] += 1
    total = sum(counts.values())
    assert 0.87 < counts["train"] / total < 0.93, counts
    assert 0.03 < counts["dev"] / total < 0.07 and 0.03 < counts["test"] / total < 0.07, counts


def test_unseen_families_are_held_out(sentences: dict[str, list[grammar.Sentence]]) -> None:
    families = {t.family for t in grammar.templates()}
    assert 5 <= len(UNSEEN_FAMILIES) <= 6 and families >= UNSEEN_FAMILIES
    domains = {t.domain for t in grammar.templates() if t.family in UNSEEN_FAMILIES}
    assert len(domains) >= 5, domains
    for split in ("train", "dev", "test"):
        assert not {s.family for s in sentences[split]} & UNSEEN_FAMILIES, split
    assert {s.family for s in sentences["test_unseen"]} == set(UNSEEN_FAMILIES)


def test_sampling_spreads_over_templates(sentences: dict[str, list[grammar.Sentence]]) -> None:
    counts = Counter(s.template for s in sentences["train"])
    seen = [t for t in grammar.templates() if t.family not in UNSEEN_FAMILIES]
    assert len(counts) == len(seen)
    assert max(counts.values()) < 3 * len(sentences["train"]) / len(seen), counts.most_common(3)


def test_exhausted_split_returns_what_exists() -> None:
    door_lock = [t for t in grammar.templates() if t.name == "door_lock"]
    got = sample(door_lock, "train", 1000, seed=0)
    assert 0 < len(got) <= len(lexicon.DOORS)
    assert len({s.id for s in got}) == len(got)
    with pytest.raises(ValueError):
        grammar.generate("validation", 1)


def test_slot_value_keys_are_unique() -> None:
    for template in grammar.templates():
        for name, options in template.slots.items():
            keys = [v.key for v in options]
            assert len(set(keys)) == len(keys), (template.name, name, [k for k, c in Counter(keys).items() if c > 1])


def test_display_text() -> None:
    assert grammar.display_text("zh", "打开 厨房 的 灯") == "打开厨房的灯"
    assert grammar.display_text("fr", "allume la lumière de la cuisine") == "allume la lumière de la cuisine"


def _render(template_name: str, lang: str, **keys: str) -> str:
    template = next(t for t in grammar.templates() if t.name == template_name)
    values = {slot: next(v for v in template.slots[slot] if v.key == key) for slot, key in keys.items()}
    return template.render(lang, values)


def test_articles_contractions_and_word_order() -> None:
    living, kitchen, office = {"room": "living room"}, {"room": "kitchen"}, {"room": "office"}
    assert _render("device_power_on", "de", device="light", **kitchen) == "schalte das licht in der küche ein"
    assert _render("device_power_on", "de", device="television", **living) == "schalte den fernseher im wohnzimmer ein"
    assert _render("device_power_off", "de", device="light", room="balcony") == "schalte das licht auf dem balkon aus"
    assert _render("device_power_on", "en", device="light", room="balcony") == "turn on the light on the balcony"
    assert _render("device_power_on", "fr", device="light", **living) == "allume la lumière du salon"
    assert _render("device_power_on", "fr", device="light", **kitchen) == "allume la lumière de la cuisine"
    assert _render("device_power_on", "it", device="light", **office) == "accendi la luce dell'ufficio"
    assert _render("device_power_on", "it", device="light", **kitchen) == "accendi la luce della cucina"
    assert _render("device_power_on", "es", device="light", **living) == "enciende la luz del salón"
    assert _render("device_power_on", "zh", device="light", **kitchen) == "打开 厨房 的 灯"
    assert _render("music_play", "it", genre="jazz", **living) == "metti musica jazz nel soggiorno"
    assert _render("remind_task", "de", task="call the dentist", when="tomorrow") == (
        "erinnere mich morgen daran dass ich den zahnarzt anrufen muss"
    )
    assert _render("remind_dont_forget", "de", task="take out the trash") == (
        "lass mich nicht vergessen den müll rauszubringen"
    )
    assert _render("remind_task", "fr", task="call the dentist", when="tomorrow") == (
        "rappelle-moi d'appeler le dentiste demain"
    )
    assert _render("fly_to_country", "fr", country="japan", day="monday") == "je prends l'avion pour le japon lundi"
    assert _render("visa_query", "fr", country="italy") == "est-ce que j'ai besoin d'un visa pour l'italie"
    assert _render("fly_to_country", "de", country="switzerland", day="monday") == (
        "ich fliege am montag in die schweiz"
    )
    assert _render("fly_to_country", "it", country="united states", day="monday") == "volo negli stati uniti lunedì"
    assert _render("capital_answer", "fr", country="japan") == "la capitale du japon est tokyo"
    assert _render("forecast_query", "fr", city="paris", day="tomorrow") == "quel temps fera-t-il demain à paris"
    assert _render("alarm_set_time", "es", time="d0700") == "pon una alarma a las siete"
    assert _render("time_in_city_answer", "es", city="madrid", time="c0130") == "en madrid es la una y media"
    assert _render("time_in_city_answer", "it", city="rome", time="c0700") == "a roma sono le sette"
    assert _render("nearest_place_query", "it", place="stadium") == "dov'è lo stadio più vicino"
    assert _render("timer_left_answer", "en", label="rice", left="1minute") == (
        "there is one minute left on the timer for the rice"
    )
    assert _render("event_moved", "fr", event="meeting", name="anna", day="monday", time="cp1500") == (
        "ta réunion avec anna a été déplacée à lundi à trois heures de l'après-midi"
    )


def test_contract_and_finish() -> None:
    assert contract("it", "a", "l'una") == "all'una" and contract("it", "di", "lo stadio") == "dello stadio"
    assert contract("it", "in", "gli stati uniti") == "negli stati uniti"
    assert contract("fr", "à", "les états-unis") == "aux états-unis" and contract("fr", "de", "le salon") == "du salon"
    assert contract("de", "zu", "der apotheke") == "zur apotheke" and contract("de", "in", "das kino") == "ins kino"
    assert contract("es", "a", "el aeropuerto") == "al aeropuerto"
    assert finish("fr", "le anniversaire de anna que il") == "l'anniversaire d'anna qu'il"
    assert finish("fr", "le huit mai et le onze novembre") == "le huit mai et le onze novembre"
    assert finish("fr", "de hambourg à le hôtel") == "de hambourg à l'hôtel"
    assert finish("it", "scrivi a anna") == "scrivi ad anna"


def test_cli_prints_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--split", "train", "-n", "3", "--seed", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    record = json.loads(lines[0])
    assert set(record["text"]) == set(grammar.LANGUAGES) and record["id"].startswith(record["template"])
