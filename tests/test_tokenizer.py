import random
from pathlib import Path

import pytest

from models.data.manifest import Utterance, write_manifest
from models.train.tokenizer import Tokenizer, main, train_all, train_tokenizer, write_tokens_txt
from parley.contract import BLANK_ID, CHANNEL_CHANGE_ID, UNK_ID
from parley.textnorm import normalize_text

_VOCABULARY = """
set a timer for ten minutes turn on off the lights in kitchen living room play some music
what's weather like tomorrow call my mother please stop remind me to buy milk eggs bread
when does next train leave how far is station open door close window volume up down
seven eleven twenty o'clock well-known
"""
_WORDS = _VOCABULARY.split()

_ZH = [
    "今天天气怎么样",
    "请把客厅的灯打开",
    "播放一些轻松的音乐",
    "给妈妈打电话",
    "设置一个十分钟的计时器",
    "明天会下雨吗",
]


def _sentences(n: int = 200, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 10))) for _ in range(n)]


@pytest.fixture(scope="module")
def en_model(tmp_path_factory):
    return train_tokenizer(_sentences(), tmp_path_factory.mktemp("en") / "bpe", 60, "en")


def test_reserved_ids(en_model):
    tok = Tokenizer(en_model)
    assert tok.vocab_size == 60
    assert (tok.blank_id, tok.cc_id, tok.unk_id) == (BLANK_ID, CHANNEL_CHANGE_ID, UNK_ID) == (0, 1, 2)
    assert [tok.id_to_piece(i) for i in range(3)] == ["<blk>", "<cc>", "<unk>"]


def test_round_trip(en_model):
    tok = Tokenizer(en_model)
    for text in [*_sentences(20, seed=1), normalize_text("What's the weather like, tomorrow?", "en")]:
        ids = tok.encode(text)
        assert ids and BLANK_ID not in ids and UNK_ID not in ids, (text, ids)
        assert tok.decode(ids) == text
        assert tok.decode([BLANK_ID, *ids, BLANK_ID, BLANK_ID]) == text  # blanks are dropped


def test_channel_change(en_model):
    tok = Tokenizer(en_model)
    text = "set a timer <cc> turn off the lights"
    ids = tok.encode(text)
    assert ids.count(CHANNEL_CHANGE_ID) == 1
    assert ids[: ids.index(CHANNEL_CHANGE_ID)] == tok.encode("set a timer")
    assert ids[ids.index(CHANNEL_CHANGE_ID) + 1 :] == tok.encode("turn off the lights")
    assert tok.decode(ids) == text


def test_unknown_characters_map_to_unk(en_model):
    assert UNK_ID in Tokenizer(en_model).encode("zzz")


def test_tokens_txt(en_model, tmp_path):
    path = write_tokens_txt(en_model, tmp_path / "tokens.txt")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == Tokenizer(en_model).vocab_size
    assert lines[:3] == ["<blk> 0", "<cc> 1", "<unk> 2"]
    pieces = [line.split(" ") for line in lines]
    assert all(len(p) == 2 for p in pieces)
    assert [int(i) for _, i in pieces] == list(range(len(lines)))
    assert any(p.startswith("▁") for p, _ in pieces)


def test_training_is_deterministic(tmp_path):
    texts = _sentences()
    a = train_tokenizer(texts, tmp_path / "a" / "bpe", 60, "en")
    b = train_tokenizer(texts, tmp_path / "b" / "bpe", 60, "en")
    ta, tb = write_tokens_txt(a, tmp_path / "a.txt"), write_tokens_txt(b, tmp_path / "b.txt")
    assert ta.read_text() == tb.read_text()
    sa, sb = Tokenizer(a).sp, Tokenizer(b).sp
    assert [sa.get_score(i) for i in range(60)] == [sb.get_score(i) for i in range(60)]


def test_chinese(tmp_path):
    texts = [normalize_text(t, "zh") for t in _ZH] * 5
    tok = Tokenizer(train_tokenizer(texts, tmp_path / "bpe", 600, "zh"))  # more than the text supports
    assert tok.vocab_size < 600
    pieces = [tok.id_to_piece(i) for i in range(tok.vocab_size)]
    assert "▁" not in "".join(pieces)  # no word marker for text without spaces
    assert max(len(p) for p in pieces[3:]) <= 4
    for text in [*_ZH, "今天请打开音乐"]:
        ids = tok.encode(text)
        assert UNK_ID not in ids and tok.decode(ids) == text


def test_vocab_too_large_is_reduced_with_warning(tmp_path, capsys):
    tok = Tokenizer(train_tokenizer(["hello world", "hello there"], tmp_path / "bpe", 500, "en"))
    assert 3 < tok.vocab_size < 500
    assert f"trained with {tok.vocab_size} instead of 500" in capsys.readouterr().err


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="too small"):
        train_tokenizer(_sentences(), tmp_path / "small", 10, "en")
    with pytest.raises(ValueError, match="no training text"):
        train_tokenizer(["", "  "], tmp_path / "empty", 60, "en")
    with pytest.raises(FileNotFoundError):
        Tokenizer(tmp_path / "missing.model")


def test_rejects_model_without_reserved_ids(tmp_path):
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_sentences()),
        model_prefix=str(tmp_path / "plain"),
        vocab_size=40,
        minloglevel=2,
    )
    with pytest.raises(ValueError, match="not a Parley tokenizer"):
        Tokenizer(tmp_path / "plain.model")


def test_train_all_and_main(tmp_path, capsys):
    en, de = _sentences(60), _sentences(60, seed=2)
    models = train_all({"en": en, "de": de}, tmp_path / "lang", {"en": 50, "de": 40})
    assert sorted(models) == ["de", "en"]
    for lang, size in [("en", 50), ("de", 40)]:
        assert models[lang] == tmp_path / "lang" / lang / "bpe.model"
        assert len((tmp_path / "lang" / lang / "tokens.txt").read_text().splitlines()) == size

    utts = [
        Utterance(f"u{i}", f"{i}.wav", 1.0, "en", text, translations={"zh": _ZH[i % len(_ZH)]})
        for i, text in enumerate(en)
    ]
    write_manifest(tmp_path / "m.jsonl", utts)
    (tmp_path / "de.txt").write_text("\n".join(t.upper() + "!" for t in de), encoding="utf-8")
    argv = ["--manifest", str(tmp_path / "m.jsonl"), "--text-file", f"de={tmp_path / 'de.txt'}"]
    assert main([*argv, "--vocab-size", "45", "zh=50", "--out", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "en: 45 pieces" in out and "de: 45 pieces" in out and "zh: " in out
    assert 43 <= Tokenizer(tmp_path / "cli" / "zh" / "bpe.model").vocab_size <= 50  # 40 characters + 3 reserved
    assert Tokenizer(tmp_path / "cli" / "de" / "bpe.model").encode(de[0])  # text file was normalized
    assert UNK_ID not in Tokenizer(tmp_path / "cli" / "de" / "bpe.model").encode(de[0])
    assert main([*argv, "--languages", "fr", "--out", str(tmp_path / "x")]) == 2
    assert "no text for ['fr']" in capsys.readouterr().err


def test_committed_tokenizers_load_and_match_their_tokens_txt() -> None:
    from models.data import grammar

    root = Path(__file__).resolve().parents[1] / "models" / "lang"
    for lang in grammar.LANGUAGES:
        tok = Tokenizer(root / lang / "bpe.model")
        lines = (root / lang / "tokens.txt").read_text(encoding="utf-8").splitlines()
        assert len(lines) == tok.vocab_size and lines[:2] == ["<blk> 0", "<cc> 1"], lang
        sentence = grammar.display_text(lang, grammar.generate("test", 1, seed=lang.__len__())[0].text[lang])
        assert tok.decode(tok.encode(sentence)) == sentence, lang


def test_the_recipe_reproduces_the_committed_english_tokenizer(tmp_path: Path) -> None:
    """`parley tokenizer --grammar 50000` (see models/lang/README.md), English only, gives the same pieces."""
    from models.train.tokenizer import texts_from_grammar

    root = Path(__file__).resolve().parents[1] / "models" / "lang"
    model = train_tokenizer(texts_from_grammar(50000)["en"], tmp_path / "bpe", 256, "en")
    write_tokens_txt(model, tmp_path / "tokens.txt")
    assert (tmp_path / "tokens.txt").read_text() == (root / "en" / "tokens.txt").read_text()
