from models.wer import align_counts, error_counts, wer


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
