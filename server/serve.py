"""`parley serve`: starts the streaming recognition server on the bundles it finds.

    parley serve --host 0.0.0.0 --port 8000 --bundles bundles/
    PARLEY_API_KEYS=secret PARLEY_MAX_BATCH=64 parley serve --providers cuda

Every setting is a flag and a `PARLEY_*` environment variable (server/settings.py); flags win. Until a trained bundle
is committed (the export issue) and the WebSocket app lands (the server issue), this command only checks the settings,
looks for bundles and says what it found.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from server.settings import DEFAULT_BUNDLES, Settings, add_arguments

__all__ = ["DEFAULT_BUNDLES", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="parley serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        settings = Settings.from_env_and_args(args)
    except ValueError as e:
        p.error(str(e))
    found = sorted(settings.bundles.glob("*/bundle.json")) if settings.bundles.is_dir() else []
    if not found:
        print(
            f"parley serve: no model yet: no bundle (*/bundle.json) in {settings.bundles}.\n"
            "The default English bundle is trained and committed by the model and export issues.",
            file=sys.stderr,
        )
        return 2
    print(f"parley serve: found {len(found)} bundle(s) but the WebSocket server is not built yet.", file=sys.stderr)
    return 2
