"""Numbers in captions (server/itn.py) against how people wrote them: real English sentences with digits, spelled
out as the corpus does it (models/data/verbalize.py, what the model learns to write), written back in digits.

    python benchmarks/bench_itn.py --json benchmarks/results/itn/en.json

Sentences: every English sentence with a digit in the installed text sources that have them (fortunes, mimesis,
chatterbot: ../shared/DATA_SOURCES.md) that the corpus would keep as speakable once spelled out (no code, URLs or
leftover digits: `clean_sentence`); the text corpus keeps them but its `display` is spelled out, so the written
forms come from the sources. Each is verbalized (keeping its case and punctuation, as a final's `display` has them)
and rewritten; the number tokens of the rewriting (tokens with a digit) are compared with the sentence's own, as
multisets:

- recall: the sentence's number tokens the rewriting wrote the same; a lone digit 0-9 or ordinal 1st-9th (kept as
  a word by design: "6 times" comes back "six times", "3rd edition" "third edition") is counted apart;
- precision: the rewriting's number tokens that are the sentence's own;
- sentences right: every number token the same (lone digits apart).

Also, on `--plain N` sentences of the text corpus's test split (written without digits by their authors): how many
the rewriting changes (it writes "twelve apostles" as "12 apostles": the style it follows, not the author's), and the
time per sentence on one core.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data.textcorpus import clean_sentence, read_records, read_text_corpus, split_sentences
from models.data.verbalize import verbalize
from server.itn import rewrite_text

_NUMBER = re.compile(r"[-$€]?\d[\d,.:]*%?(?:st|nd|rd|th|s|'s)?")


def numbers(text: str) -> list[str]:
    """The number tokens of `text`: "$5.50", "10:30", "25%", "21st", "1990s" (trailing "." and "," dropped)."""
    return [m.group().rstrip(".,:").replace("'s", "s") for m in _NUMBER.finditer(text)]


def score(sentences: list[str]) -> dict:
    hit = want = got = lone = lone_hit = right = 0
    misses: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    examples = []
    for s in sentences:
        said = verbalize(s, "en")
        back = rewrite_text(said)
        ref, hyp = Counter(numbers(s)), Counter(numbers(back))
        lone_ref = Counter({k: v for k, v in ref.items() if re.fullmatch(r"\d(?:st|nd|rd|th)?", k)})
        ref -= lone_ref
        lone += sum(lone_ref.values())
        lone_hit += sum((lone_ref & hyp).values())
        hyp -= lone_ref
        common = ref & hyp
        hit, want, got = hit + sum(common.values()), want + sum(ref.values()), got + sum(hyp.values())
        misses.update(ref - hyp)
        wrong.update(hyp - ref)
        ok = not (ref - hyp) and not (hyp - ref)
        right += ok
        if not ok and len(examples) < 40:
            examples.append({"written": s, "said": said, "rewritten": back})
    return {
        "sentences": len(sentences),
        "sentences_right": right,
        "number_tokens": want,
        "recall": hit / max(want, 1),
        "precision": hit / max(got, 1),
        "lone_digits": lone,
        "lone_digits_written_as_digits": lone_hit,
        "most_missed": misses.most_common(15),
        "most_wrong": wrong.most_common(15),
        "examples": examples,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", default="fortunes,mimesis,chatterbot", help="text sources with digits")
    p.add_argument("--text", default="data/text", help="the text corpus folder, for --plain (parley text build)")
    p.add_argument("--plain", type=int, default=5000, help="test sentences without digits (0: skip)")
    p.add_argument("--json", help="also write the figures here")
    a = p.parse_args()
    records = read_records(["en"], a.sources.split(","), progress=False)
    raw = {s for r in records if "en" in r.texts for s in split_sentences(r.texts["en"], "en") if re.search(r"\d", s)}
    sentences = sorted(s for s in raw if clean_sentence(s, "en") is not None)  # speakable, as the corpus keeps them
    out = {"with_digits": score(sentences)}
    w = out["with_digits"]
    print(
        f"{w['sentences']} sentences with digits: {w['sentences_right']} ({w['sentences_right'] / w['sentences']:.1%}) "
        f"with every number token right; tokens: recall {w['recall']:.1%} of {w['number_tokens']}, precision "
        f"{w['precision']:.1%}; lone digits 0-9 (kept as words): {w['lone_digits']}"
    )
    print("most missed:", w["most_missed"][:8])
    print("most wrong:", w["most_wrong"][:8])
    if a.plain:
        plain = [r["display"] for r in read_text_corpus(a.text, "en", "test")[: a.plain]]
        t0 = time.perf_counter()
        changed = [s for s in plain if rewrite_text(s) != s]
        ms = (time.perf_counter() - t0) * 1000 / max(len(plain), 1)
        out["plain"] = {
            "sentences": len(plain),
            "changed": len(changed),
            "ms_per_sentence": ms,
            "examples": [[s, rewrite_text(s)] for s in changed[:20]],
        }
        print(f"{len(plain)} test sentences without digits: {len(changed)} changed; {ms:.3f} ms per sentence")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
