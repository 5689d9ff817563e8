"""`parley serve`: starts the streaming recognition server on the bundles it finds.

    parley serve --host 0.0.0.0 --port 8000 --bundles bundles/
    PARLEY_API_KEYS=secret PARLEY_MAX_BATCH=64 parley serve --providers cuda
    parley serve --ssl-certfile cert.pem --ssl-keyfile key.pem     # wss:// and https://

Every setting is a flag and a `PARLEY_*` environment variable (server/settings.py); flags win. The app is
server/app.py, run by uvicorn. On SIGTERM or Ctrl-C the server drains: /readyz turns 503, new streams are refused
with `shutting_down`, open ones get up to --drain-timeout-s to finish, then the rest are closed (code 1001). A second
Ctrl-C stops at once.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from server.settings import DEFAULT_BUNDLES, Settings, add_arguments

if TYPE_CHECKING:
    import uvicorn

    from server.app import Service

__all__ = ["DEFAULT_BUNDLES", "main", "make_server"]


def make_server(settings: Settings) -> uvicorn.Server:
    """A uvicorn server running `create_app(settings)` that drains its streams before shutting down.

    `server.run()` blocks; `server.should_exit = True` (or a signal) starts the shutdown.
    """
    import uvicorn

    from server.app import create_app

    class DrainingServer(uvicorn.Server):
        """uvicorn closes every WebSocket (1012) as its shutdown begins; Parley first lets streams finish."""

        def __init__(self, config: uvicorn.Config, service: Service) -> None:
            super().__init__(config)
            self.service = service

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await self.service.drain(self.service.settings.drain_timeout_s, lambda: self.force_exit)
            await super().shutdown(sockets)

    app = create_app(settings)
    config = uvicorn.Config(app, lifespan="on", **settings.uvicorn_kwargs())
    return DrainingServer(config, app.state.parley)


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
    from server.app import bundle_folders

    if not bundle_folders(settings.bundles):
        print(
            f"parley serve: no model yet: no bundle (*/bundle.json) in {settings.bundles}.\n"
            "The default English bundle is trained and committed by the model and export issues.",
            file=sys.stderr,
        )
        return 2
    level = logging.DEBUG if settings.log_level == "trace" else getattr(logging, settings.log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    make_server(settings).run()
    return 0
