import random

from parley.wer import ErrorCounts, align, align_counts, error_counts, hypothesis_correct, main, wer


def test_counts() -> None:
    c = align_counts(["a", "b", "c", "d"], ["a", "x", "c", "d", "e"])
    assert (c.substitutions, c.deletions, c.insertions, c.reference_words) == (1, 0, 1, 4)
    c = align_counts(["a", "b", "c"], [])
    assert (c.deletions, c.rate) == (3, 1.0)
    assert align_counts([], []).rate == 0.0


def test_wer_over_sentences_and_chinese_characters() -> None:
    assert wer(["set a timer", "hello"], ["set the timer", "hello"]) == 1 / 4
    c = error_counts(["打开厨房的灯"], ["打开厨房灯"], language="zh")
    assert (c.deletions, c.reference_words) == (1, 6)


def test_alignment_agrees_with_the_counts() -> None:
    rng = random.Random(0)
    for _ in range(300):
        ref = [rng.choice("abcd") for _ in range(rng.randrange(0, 8))]
        hyp = [rng.choice("abcd") for _ in range(rng.randrange(0, 8))]
        pairs = align(ref, hyp)
        assert [i for i, _ in pairs if i is not None] == list(range(len(ref))), (ref, hyp, pairs)
        assert [j for _, j in pairs if j is not None] == list(range(len(hyp))), (ref, hyp, pairs)
        subs = sum(1 for i, j in pairs if i is not None and j is not None and ref[i] != hyp[j])
        dels = sum(1 for _, j in pairs if j is None)
        ins = sum(1 for i, _ in pairs if i is None)
        assert ErrorCounts(subs, dels, ins, len(ref)) == align_counts(ref, hyp), (ref, hyp, pairs)


def test_hypothesis_correct() -> None:
    ref, hyp = ["set", "a", "timer", "for", "ten"], ["set", "the", "timer", "for", "ten", "minutes"]
    assert hypothesis_correct(ref, hyp) == [True, False, True, True, True, False]
    assert hypothesis_correct([], ["x"]) == [False] and hypothesis_correct(["x"], []) == []


def test_command_line_normalizes_both_files(tmp_path, capsys) -> None:
    """LibriSpeech references are upper case with punctuation; a recognizer writes normalized text."""
    (tmp_path / "ref.txt").write_text("84-121123-0000 IT'S THE END, MR. SMITH.\nmix-1 Hi <cc> YES\n")
    (tmp_path / "hyp.txt").write_text("84-121123-0000 it's the end mr smith\nmix-1 hi <cc> yes\n")
    assert main([str(tmp_path / "ref.txt"), str(tmp_path / "hyp.txt")]) == 0
    assert capsys.readouterr().out.startswith("WER 0.00% [0 / 8,")
    assert main([str(tmp_path / "ref.txt"), str(tmp_path / "hyp.txt"), "--no-normalize"]) == 0
    assert capsys.readouterr().out.startswith("WER 87.50% [7 / 8,")
