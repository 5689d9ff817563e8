"""A bundle's model card (README.md): the sections that commands other than `parley export` put into it.

`parley export` writes the whole card from bundle.json (export/bundle.py); `parley punct add`, `parley lm train` and
`parley bundle-eval --card` each put one section of their own into it with `update_card_section`. Kept apart from
export/bundle.py, which imports those commands' card renderers to carry their sections over to a new export.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from server.bundle import BUNDLE_JSON

CARD = "README.md"
FILES_HEADING = "## Files"  # the last section: the table of bundle.json's files


def update_card_section(folder: Path, title: str, body: str) -> None:
    """Puts the section `## {title}` (`body` below it) into a bundle's README.md before its "## Files" table,
    replacing a section of that title, and rewrites the table from bundle.json's "files": what `parley punct add`,
    `parley lm train` and `parley bundle-eval --card` add to the card that `parley export` wrote. The card is
    replaced, not written through: a README.md that links to another bundle's is left alone."""
    readme = folder / CARD
    if not readme.exists():
        return
    head, sep, _ = readme.read_text(encoding="utf-8").partition(FILES_HEADING)
    heading = f"## {title}"
    if heading in head:
        start = head.index(heading)
        end = head.find("\n## ", start + len(heading))
        head = head[:start] + (head[end + 1 :] if end >= 0 else "")
    text = head.rstrip("\n") + f"\n\n{heading}\n\n" + body.strip("\n") + "\n\n"
    _replace(readme, text + (_files_section(folder) if sep else ""))


def refresh_files_table(folder: Path) -> None:
    """Rewrites the "## Files" table of a bundle's README.md from bundle.json's "files" (after a command changed
    files in place: `python -m export.quantize`), the rest of the card as it was; replaced, not written through."""
    readme = folder / CARD
    if not readme.exists():
        return
    head, sep, _ = readme.read_text(encoding="utf-8").partition(FILES_HEADING)
    if sep:
        _replace(readme, head + _files_section(folder))


def _files_section(folder: Path) -> str:
    files = json.loads((folder / BUNDLE_JSON).read_text(encoding="utf-8")).get("files", {})
    rows = [f"| {n} | {e['bytes']:,} | `{e['sha256']}` |" for n, e in sorted(files.items())]
    return f"{FILES_HEADING}\n\n| file | bytes | sha256 |\n| --- | ---: | --- |\n" + "\n".join(rows) + "\n"


def _replace(readme: Path, text: str) -> None:
    """Writes `text` to a new file that replaces `readme` (a link to another bundle's card is not written through)."""
    tmp = readme.with_name(readme.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, readme)


def talkers_card_section(card: dict) -> str:
    """The bundle card's "Talkers" section (below its heading) from a talker model's card (models/train/talkers.py
    writes it into the model's file; `parley talkers add` and an export's `--carry-from` put the section in)."""
    lines = [
        '`talkers.npz` numbers who speaks across a stream\'s segments (start message `"talkers": true`; '
        "server/talkers.py, docs/protocol.md): linear discriminant analysis of the mean and standard deviation of "
        f"the voiced log-mel frames, {card['dims']} dimensions, fitted by `parley talkers train` on "
        f"{card['utterances']:,} utterances of {card['speakers']:,} synthetic voices "
        f"({', '.join(Path(m).name for m in card['manifests'])}).",
        "",
        f"Threshold (cosine to a talker's centroid): {card['threshold']:g}"
        + (f", chosen on {card['threshold_chosen_on']}" if card.get("threshold_chosen_on") else "")
        + f". Equal error rate on {card['held_out_speakers']} held-out training voices (each utterance with its own "
        f"augmentation): {100 * card['held_out_equal_error_rate']:.1f} %.",
    ]
    if card.get("measured"):
        lines += ["", card["measured"]]
    return "\n".join(lines)
