"""What the app holds for every route and session: the settings, the metrics, one engine per bundle, the open
connections (for admission and draining), and the choice of engine for a stream or a request.

    service = Service(Settings(bundles="bundles/"))
    await service.start()                               # the app's lifespan does this
    engine, search, plan = service.resolve(model=None, search=None, language=None, translate=())

Sessions (server/session.py, server/vosk.py) and the routes get it from the app (`server.deps.get_service`); it knows
nothing of HTTP or WebSockets. Every sub-folder of `settings.bundles` with a bundle.json is loaded; one that fails to
load is logged and skipped, and the service is not `ready` until at least one is loaded (nor while it drains).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from server.bundle import BUNDLE_JSON, Bundle, BundleError, load_bundle
from server.engine import Engine, EngineConfig
from server.keys import KeyRing, read_keys_file
from server.metrics import ServerMetrics
from server.plan import Adaptation, HeadPlan, InvalidOptionError, UnsupportedOptionError
from server.protocol import (
    INVALID_VALUE,
    SEARCH_METHODS,
    SERVER_FULL,
    SHUTTING_DOWN,
    TOO_MANY_STREAMS,
    UNKNOWN_MODEL,
    UNSUPPORTED_OPTION,
    ProtocolError,
    StartRequest,
)
from server.settings import DEFAULT_MODEL, Settings
from server.tsot import NUM_CHANNELS

log = logging.getLogger("parley.app")


# On shutdown, seconds the aborted sessions get to send their open segment's final (server/session.py's
# FLUSH_TIMEOUT_S, 5 s) and close, before the drain stops waiting for them. A constant of its own: the sessions
# import this module, so it cannot import theirs (tests/test_app.py checks that it stays the longer).
ABORTED_SESSIONS_WAIT_S = 7.0


def default_model(names: Iterable[str], wanted: str | None = None) -> str | None:
    """The model a client that names none gets, among the loaded `names`: `wanted` (the `default_model` setting)
    when it is one, else DEFAULT_MODEL when it is one, else the first by name; None when there is none.
    `parley transcribe` picks its model the same way."""
    names = set(names)
    if wanted in names:
        return wanted
    return DEFAULT_MODEL if DEFAULT_MODEL in names else min(names, default=None)


class Abortable(Protocol):
    """An open session, as the service sees it: something a drain can end."""

    def abort(self, error: ProtocolError) -> None: ...


def bundle_folders(path: Path) -> list[Path]:
    """The bundle folders under `path`: its sub-folders with a bundle.json, sorted; or `path` itself if it is one."""
    if (path / BUNDLE_JSON).is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if (p / BUNDLE_JSON).is_file())


def load_bundles(settings: Settings) -> dict[str, Bundle]:
    """Loads every bundle `settings.bundles` holds, by name; a bundle that fails is logged and skipped."""
    bundles: dict[str, Bundle] = {}
    for folder in bundle_folders(settings.bundles):
        try:
            b = load_bundle(folder, providers=settings.providers, threads=settings.intra_op_threads)
        except (BundleError, ValueError, OSError) as e:
            log.error("skipping bundle %s: %s", folder, e)
            continue
        except Exception:  # a failure the loader does not foresee must not take the healthy bundles down with it
            log.exception("skipping bundle %s: unexpected error while loading it", folder)
            continue
        if b.name in bundles:
            log.error("skipping bundle %s: the name %r is taken by %s", folder, b.name, bundles[b.name].path)
            continue
        log.info("loaded bundle %s from %s (%s, %s)", b.name, folder, b.precision, b.encoder.get_providers()[0])
        bundles[b.name] = b
    if not bundles:
        log.error("no bundle loaded from %s: /readyz stays 503", settings.bundles)
    return bundles


def key_ring(settings: Settings) -> KeyRing:
    """The `KeyRing` of `settings`: its flags' keys (`api_keys` less the file's, which the file gives again, with
    their options) and `api_keys_file`, read again as it changes."""
    path, keys = settings.api_keys_file, settings.api_keys
    if path is not None and path.is_file():
        in_file = {e.key for e in read_keys_file(path)}
        keys = tuple(k for k in keys if k not in in_file)
    else:
        path = None  # Settings.validate refuses a missing file
    return KeyRing(keys, path, settings.max_streams_per_key)


class Service:
    """What the app holds: settings, metrics, one engine per bundle, the open connections, and whether it drains.

    Args:
        settings: the server settings.
        metrics: the registry /metrics serves (a fresh one by default).
    """

    def __init__(self, settings: Settings, metrics: ServerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or ServerMetrics()
        self.engines: dict[str, Engine] = {}
        self.default_model: str | None = None
        self.draining = False
        self.connections = 0  # open streams and running transcriptions (a multichannel one: one per channel)
        self.keys = key_ring(settings)  # which API keys are accepted, and each one's account
        self.by_key: Counter[str] = Counter()  # the same, per account (`Tenant.id`) of requests that carry a key
        self.sessions: set[Abortable] = set()

    # ---- Lifecycle ----

    async def start(self) -> None:
        """Loads the bundles (in a thread: it reads and hashes files) and starts their engines."""
        bundles = await asyncio.to_thread(load_bundles, self.settings)
        config = EngineConfig.from_settings(self.settings)
        for name, bundle in bundles.items():
            engine = Engine(bundle, config, self.metrics)
            await engine.start()
            self.engines[name] = engine
        wanted = self.settings.default_model
        self.default_model = default_model(self.engines, wanted)
        if wanted is not None and wanted != self.default_model:
            log.error("default model %r is not loaded; using %s", wanted, self.default_model)

    async def stop(self) -> None:
        for engine in self.engines.values():
            await engine.close()
        self.engines.clear()

    @property
    def ready(self) -> bool:
        return bool(self.engines) and not self.draining

    async def drain(self, timeout: float, force: Callable[[], bool] = lambda: False) -> None:
        """Stops taking new streams, lets open ones finish for up to `timeout` seconds, then ends the rest with
        their open segment's final (however short `timeout` is) and `shutting_down` (close 1001)."""
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self.connections:
            log.info("draining: waiting up to %g s for %d connection(s)", timeout, self.connections)
        while self.connections and loop.time() < deadline and not force():
            await asyncio.sleep(0.05)
        for s in list(self.sessions):
            s.abort(ProtocolError(SHUTTING_DOWN, "the server is shutting down: reconnect, to another replica"))
        deadline = loop.time() + ABORTED_SESSIONS_WAIT_S
        while self.sessions and loop.time() < deadline:
            await asyncio.sleep(0.02)

    # ---- Connections ----

    def admit(self, key: str | None = None) -> ProtocolError | None:
        """Why a new stream or transcription with API key `key` may not start now (the server drains, is full, or
        the key has its `max_streams_per_key` open), or None.

        API keys and origins are checked before this, by the routes' dependencies (server/deps.py).
        """
        if self.draining:
            return ProtocolError(SHUTTING_DOWN, "the server is shutting down: reconnect, to another replica")
        if self.connections >= self.settings.max_connections:
            return ProtocolError(
                SERVER_FULL, f"the server has {self.settings.max_connections} streams open: try again later"
            )
        if key is not None:
            t = self.keys.tenant(key)
            if t.max_streams and self.by_key[t.id] >= t.max_streams:
                return ProtocolError(
                    TOO_MANY_STREAMS,
                    f"this API key has {t.max_streams} streams open, its limit: close one, or try again later",
                )
        return None

    def take(self, slots: int, key: str | None = None) -> None:
        """Counts `slots` more streams open (with API key `key`, on its account); `give` gives them back."""
        self.connections += slots
        if key is not None:
            tid = self.keys.tenant(key).id
            self.by_key[tid] += slots
            self.metrics.key_streams.labels(tid).set(self.by_key[tid])

    def give(self, slots: int, key: str | None = None) -> None:
        self.connections -= slots
        if key is not None:
            tid = self.keys.tenant(key).id
            self.by_key[tid] -= slots
            self.metrics.key_streams.labels(tid).set(max(self.by_key[tid], 0))
            if self.by_key[tid] <= 0:
                del self.by_key[tid]

    def count_audio(self, seconds: float, key: str | None) -> None:
        """`seconds` of audio received with API key `key` (usage per tenant, `parley_key_audio_seconds_total`)."""
        if key is not None:
            self.metrics.key_audio_seconds.labels(self.keys.tenant(key).id).inc(seconds)

    def policy(self, start: StartRequest, key: str | None) -> StartRequest:
        """`start` as API key `key`'s account allows it: redacted, or with its profanity masked, where the keys file
        says so for the account (server/keys.py), whatever the start asked."""
        if key is None:
            return start
        t = self.keys.tenant(key)
        if (t.redact and not start.redact) or (t.profanity_filter and not start.profanity_filter):
            return replace(
                start, redact=start.redact or t.redact, profanity_filter=start.profanity_filter or t.profanity_filter
            )
        return start

    def hold_channels(self, channels: int, key: str | None = None) -> None:
        """Takes the further slots a stream or transcription of `channels` channels needs beyond the one it holds
        (each channel is decoded as a stream of its own); the caller gives them back (`give`).

        Raises:
            ProtocolError: server_full, when there are not that many free; too_many_streams, when the key has not.
        """
        free = self.settings.max_connections - self.connections
        if channels - 1 > free:
            raise ProtocolError(
                SERVER_FULL,
                f"{channels} channels need {channels} of the server's {self.settings.max_connections} stream slots "
                f"and {free + 1} are free: try again later, or with fewer channels",
            )
        t = self.keys.tenant(key) if key is not None else None
        if t is not None and t.max_streams and self.by_key[t.id] + channels - 1 > t.max_streams:
            raise ProtocolError(
                TOO_MANY_STREAMS,
                f"{channels} channels need {channels} of this API key's {t.max_streams} stream slots and "
                f"{t.max_streams - self.by_key[t.id] + 1} are free: close a stream, or send fewer channels",
            )
        self.take(channels - 1, key)

    def session_opened(self, session: Abortable, key: str | None = None) -> None:
        self.take(1, key)
        self.sessions.add(session)
        self.metrics.active_streams.inc()

    def session_closed(self, session: Abortable, key: str | None = None) -> None:
        self.give(1, key)
        self.sessions.discard(session)
        self.metrics.active_streams.dec()

    def count_error(self, code: str) -> None:
        self.metrics.errors.labels(code).inc()

    def resolve(
        self,
        model: str | None,
        search: str | None,
        language: str | None,
        translate: Sequence[str],
        languages: Sequence[str] = (),
        adaptation: Adaptation | None = None,
        talkers: bool = False,
        alternatives: int = 0,
        redact: bool = False,
    ) -> tuple[Engine, str, HeadPlan]:
        """The engine, search and heads for a start's (or a request's) choices; hotwords and an LM are checked
        against the server's limits and the model (`Engine.adapt`), and make beam search the default.

        Raises:
            ProtocolError: unknown_model; unsupported_option for a language, translation, restriction, LM or talker
                model the model lacks, or redaction (asked, or the server's) of what it cannot redact; invalid_value
                for hotwords the server refuses or greedy search with adaptation.
        """
        name = model or self.default_model
        engine = self.engines.get(name) if name is not None else None
        if engine is None:
            if not self.engines:
                raise ProtocolError(UNKNOWN_MODEL, "this server has no model loaded")
            raise ProtocolError(UNKNOWN_MODEL, f"no model {name!r}; this server has {sorted(self.engines)}")
        if talkers and not engine.talkers:
            raise ProtocolError(UNSUPPORTED_OPTION, f"model {engine.name} has no talker model: talkers cannot be asked")
        try:
            plan = engine.plan(language, translate, languages)
            search = engine.search_for(search, adaptation, alternatives, plan)
            if adaptation is not None and adaptation.active:
                engine.adapt(plan, adaptation)
            engine.check_redaction(plan, redact)
        except UnsupportedOptionError as e:
            raise ProtocolError(UNSUPPORTED_OPTION, f"model {engine.name} {e}") from None
        except InvalidOptionError as e:
            raise ProtocolError(INVALID_VALUE, str(e)) from None
        return engine, search, plan

    def models(self) -> dict:
        """The body of GET /v1/models: Parley's `default` and `models`, and the same names as OpenAI's API lists its
        models (`object`, `data`), so that its SDK's `models.list()` reads them too."""
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "parley"} for name in sorted(self.engines)
            ],
            "default": self.default_model,
            "models": [
                {
                    "name": e.name,
                    "languages": e.languages,
                    "translate": e.translate_languages,
                    "chunk_ms": e.chunk_ms,
                    "search": list(SEARCH_METHODS),
                    "decoding": e.decoding,
                    "lms": e.lms,
                    **({"auto": e.auto_languages} if e.auto_languages else {}),
                    **({"speakers": NUM_CHANNELS} if e.multi_talker else {}),
                    **({"punctuation": e.punctuation} if e.punctuation else {}),
                    **({"talkers": True} if e.talkers else {}),
                }
                for _, e in sorted(self.engines.items())
            ],
        }
