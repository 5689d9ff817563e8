import pytest

from parley.textnorm import is_chinese, normalize_keeping_channel_changes, normalize_text, words


@pytest.mark.parametrize(
    "text, language, expected",
    [
        ("Hello, World!  It’s a well-known fact.", "en", "hello world it's a well-known fact"),
        ("  SET a Timer\tfor TEN minutes\n", "en", "set a timer for ten minutes"),
        ("Die Straße ist NASS – Ärger!", "de", "die straße ist nass ärger"),
        ("L'homme, jusqu’à «ici»…", "fr", "l'homme jusqu'à ici"),
        ("¿Dónde está el baño?", "es", "dónde está el baño"),
        ("'quoted' dogs' -dash- rock--roll", "en", "quoted dogs dash rock roll"),
        ("e\u0301cole", "fr", "école"),  # decomposed accent composed by NFC
        ("ＡＢＣ １２３！", "en", "abc 123"),  # full-width forms folded
        ("it costs 3.50 dollars", "en", "it costs 3 50 dollars"),  # digits kept, not verbalized
        ("snake_case", "en", "snake case"),
        ("", "en", ""),
    ],
)
def test_normalize_spaced_languages(text, language, expected):
    assert normalize_text(text, language) == expected


@pytest.mark.parametrize("language", ["zh", "cmn", "zh-CN", "zh_TW", "ZH"])
def test_normalize_chinese(language):
    assert normalize_text("你好，世界！ 我用 iPhone 15。", language) == "你好世界我用iphone15"
    assert normalize_text("“今天”天气怎么样？", language) == "今天天气怎么样"


def test_is_chinese():
    assert is_chinese("zh") and is_chinese("cmn-Hans") and is_chinese("zh-HK")
    assert not is_chinese("en") and not is_chinese("zu") and not is_chinese("de-CH")


@pytest.mark.parametrize(
    "text, language",
    [
        ("Rock--n’roll, isn't it? ’Tis -x- ‑y‐", "en"),
        ("Größe: 5×3 — «ja»", "de"),
        ("你好，Ｗｏｒｌｄ！", "zh"),
    ],
)
def test_normalize_is_idempotent(text, language):
    once = normalize_text(text, language)
    assert normalize_text(once, language) == once


def test_words():
    assert words("set a  timer", "en") == ["set", "a", "timer"]
    assert words("", "en") == []
    assert words("你好ok", "zh") == ["你", "好", "o", "k"]
    assert words("你 好", "cmn") == ["你", "好"]


@pytest.mark.parametrize(
    "text, language, expected",
    [
        ("co\u00adoperate Sun\u00adday", "en", "cooperate sunday"),  # soft hyphens
        ("Rad\u200cfahrer", "de", "radfahrer"),  # zero-width non-joiner
        ("well\u200d-known", "en", "well-known"),  # a joiner between word and hyphen: the hyphen still joins
        ("\ufeffhello \u200eworld\u200f", "en", "hello world"),  # byte-order mark, bidi marks
        ("one\u200btwo", "en", "one two"),  # the zero-width space marks a word boundary
        ("你\u00ad好", "zh", "你好"),
    ],
)
def test_format_characters_are_deleted_not_word_breaks(text, language, expected):
    assert normalize_text(text, language) == expected


def test_normalize_keeping_channel_changes():
    assert normalize_keeping_channel_changes("Hi,<cc> Yes! <cc> there", "en") == "hi <cc> yes <cc> there"
    assert normalize_keeping_channel_changes("<cc> Yes", "en") == "<cc> yes"
    assert normalize_keeping_channel_changes("It's THE end.", "en") == normalize_text("It's THE end.", "en")
    label = "hi <cc> yes <cc> there"
    assert normalize_keeping_channel_changes(label, "en") == label
