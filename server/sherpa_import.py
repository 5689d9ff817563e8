"""`parley import-sherpa`: a bundle from a streaming transducer that icefall exported for sherpa-onnx.

    parley import-sherpa sherpa-onnx-streaming-zipformer-en-2023-06-26 --out bundles/zipformer-en --language en

The folder holds `encoder*.onnx`, `decoder*.onnx`, `joiner*.onnx` (each optionally also as `*.int8.onnx`) and
`tokens.txt`, as sherpa-onnx's releases ship them. The encoder's `model_type` metadata names its family (`zipformer2`
or `lstm`, server/encoders.py). This writes the bundle.json that Parley's server needs and sherpa-onnx does not: the
files with their sizes and hashes, the streaming settings read from the encoder, and the fbank frontend, which icefall's
files do not record: sherpa-onnx's defaults (80 bins, mel range 20 Hz to Nyquist - 400 Hz), what icefall trains with.
The head decodes like sherpa-onnx's greedy search (one token per frame, `max_symbols_per_frame` 1) and writes its
text from tokens.txt (no bpe.model needed). The bundle is then loaded once, so what is written is known to work.

Without `--out`, bundle.json is written into the folder itself; with it, the chosen files are copied there.
No torch: this runs where the server runs.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

from parley.features import FbankConfig
from server.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_JSON,
    BundleError,
    load_bundle,
    read_encoder_spec,
    sha256_of,
    streaming_settings,
)
from server.encoders import SHERPA_FAMILIES

SHERPA_FEATURES = FbankConfig(high_freq=-400.0)  # sherpa-onnx's (and lhotse's) fbank defaults, icefall's frontend
ROLES = ("encoder", "decoder", "joiner")


class SherpaImportError(Exception):
    """A folder that cannot be imported; the message says why."""


def find_models(folder: Path) -> dict[str, dict[str, str]]:
    """The ONNX file of each role per precision: {"fp32": {"encoder": name, ...}, "int8": {...}}.

    A precision is offered when its encoder exists; a role without an int8 file uses its fp32 one there (releases
    often ship the decoder in fp32 only).

    Raises:
        SherpaImportError: a role has no file, or several that differ in more than precision.
    """
    found: dict[str, dict[str, str]] = {"fp32": {}, "int8": {}}
    for role in ROLES:
        for precision, pattern in (("int8", rf"^{role}.*\.int8\.onnx$"), ("fp32", rf"^{role}(?!.*\.int8\.).*\.onnx$")):
            names = sorted(p.name for p in folder.iterdir() if p.is_file() and re.match(pattern, p.name))
            if len(names) > 1:
                raise SherpaImportError(f"{folder}: several {precision} {role} files ({', '.join(names)}); keep one")
            if names:
                found[precision][role] = names[0]
    if "encoder" not in found["fp32"] and "encoder" not in found["int8"]:
        raise SherpaImportError(f"{folder}: no encoder*.onnx")
    for role in ROLES[1:]:
        if role not in found["fp32"] and role not in found["int8"]:
            raise SherpaImportError(f"{folder}: no {role}*.onnx")
        found["int8"].setdefault(role, found["fp32"].get(role, ""))
        found["fp32"].setdefault(role, found["int8"][role])
    return {p: roles for p, roles in found.items() if roles.get("encoder")}


def _metadata(path: Path) -> dict[str, str]:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise SherpaImportError(f"{path.name}: onnxruntime cannot load it: {str(e).splitlines()[0][:300]}") from e
    return dict(session.get_modelmeta().custom_metadata_map)


def import_sherpa(folder: Path, out: Path | None = None, name: str | None = None, language: str = "und") -> Path:
    """Writes bundle.json for the sherpa-onnx model in `folder` (into `out`, with the files copied, if given).

    Returns:
        The bundle folder.

    Raises:
        SherpaImportError: no model files, another family, or a bundle that does not load (the loader's message).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SherpaImportError(f"{folder}: not a folder")
    models = find_models(folder)
    if not (folder / "tokens.txt").is_file():
        raise SherpaImportError(f"{folder}: no tokens.txt")
    first = next(iter(models.values()))
    meta = _metadata(folder / first["encoder"])
    family = meta.get("model_type", "")
    if family not in SHERPA_FAMILIES:
        raise SherpaImportError(
            f"{first['encoder']}: model_type {family!r}; this imports {list(SHERPA_FAMILIES)} "
            "(Parley's own conformer bundles come with their bundle.json)"
        )
    try:
        spec = read_encoder_spec(folder / first["encoder"], SHERPA_FEATURES)
    except BundleError as e:
        raise SherpaImportError(str(e)) from e
    vocab = _metadata(folder / first["decoder"]).get("vocab_size")

    target = Path(out) if out is not None else folder
    files = sorted({f for roles in models.values() for f in roles.values()} | {"tokens.txt"})
    if target.resolve() != folder.resolve():
        target.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copyfile(folder / f, target / f)
    low_freq, high_freq = SHERPA_FEATURES.mel_range()
    name = name or target.resolve().name
    manifest = {
        "format": BUNDLE_FORMAT,
        "name": name,
        "kind": "transducer",
        "languages": [language],
        "precisions": list(models),
        "encoder": {p: roles["encoder"] for p, roles in models.items()},
        "heads": [
            {
                "name": language,
                "language": language,
                "vocab_size": int(vocab) if vocab and vocab.isdigit() else None,
                "post_processing": "none",
                "max_symbols_per_frame": 1,  # sherpa-onnx's greedy search
                "decoder": {p: roles["decoder"] for p, roles in models.items()},
                "joiner": {p: roles["joiner"] for p, roles in models.items()},
                "tokens": "tokens.txt",
            }
        ],
        "streaming": streaming_settings(spec),
        "features": {**SHERPA_FEATURES.to_dict(), "low_freq": low_freq, "high_freq": high_freq},
        "model": {"family": family, "metadata": meta},
        "training": {},
        "measured": {"wer": []},
        "source": {"imported_from": str(folder.resolve()), "tool": "parley import-sherpa"},
        "files": {f: {"bytes": (target / f).stat().st_size, "sha256": sha256_of(target / f)} for f in files},
    }
    (target / BUNDLE_JSON).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for precision in models:
        try:
            load_bundle(target, precision, providers="cpu", threads=1)
        except BundleError as e:
            (target / BUNDLE_JSON).unlink()
            raise SherpaImportError(f"the imported bundle does not load ({precision}): {e}") from e
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="parley import-sherpa",
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "folder", type=Path, help="the sherpa-onnx model folder (encoder/decoder/joiner .onnx, tokens.txt)"
    )
    parser.add_argument(
        "--out", type=Path, help="bundle folder to create, the files copied (default: write bundle.json into FOLDER)"
    )
    parser.add_argument(
        "--name", help="the bundle's name, what clients select it by (default: the bundle folder's name)"
    )
    parser.add_argument("--language", default="und", help="the head's language code (default: und)")
    args = parser.parse_args(argv)
    try:
        target = import_sherpa(args.folder, args.out, args.name, args.language)
    except SherpaImportError as e:
        print(f"parley import-sherpa: {e}", file=sys.stderr)
        return 1
    manifest = json.loads((target / BUNDLE_JSON).read_text(encoding="utf-8"))
    s = manifest["streaming"]
    print(
        f"{target / BUNDLE_JSON}: {manifest['model']['family']} transducer {manifest['name']!r}, "
        f"{s['chunk_ms']} ms chunks, precisions {', '.join(manifest['precisions'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
