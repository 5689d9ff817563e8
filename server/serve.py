"""`parley serve`: starts the streaming recognition server on the bundles it finds.

    parley serve --host 0.0.0.0 --port 8000 --bundles bundles/

Until a trained bundle is committed (the export issue) and the WebSocket server lands (the server issue), this
command only looks for bundles and says what it found.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_BUNDLES = Path(__file__).resolve().parents[1] / "bundles"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="parley serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--host", default=os.environ.get("PARLEY_HOST", "127.0.0.1"), help="address to listen on")
    p.add_argument("--port", type=int, default=int(os.environ.get("PARLEY_PORT", "8000")), help="TCP port")
    p.add_argument(
        "--bundles",
        type=Path,
        default=Path(os.environ.get("PARLEY_BUNDLES", DEFAULT_BUNDLES)),
        help="folder of model bundles (one sub-folder with a bundle.json each)",
    )
    args = p.parse_args(argv)
    found = sorted(args.bundles.glob("*/bundle.json")) if args.bundles.is_dir() else []
    if not found:
        print(
            f"parley serve: no model yet: no bundle (*/bundle.json) in {args.bundles}.\n"
            "The default English bundle is trained and committed by the model and export issues.",
            file=sys.stderr,
        )
        return 2
    print(f"parley serve: found {len(found)} bundle(s) but the WebSocket server is not built yet.", file=sys.stderr)
    return 2
