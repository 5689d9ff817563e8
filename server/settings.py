"""Every knob of `parley serve`, in one dataclass: defaults, then `PARLEY_*` environment variables, then flags.

Each field `name` is read from the environment variable `PARLEY_<NAME>` (`PARLEY_MAX_BATCH=64`) and from the flag
`--name` with dashes (`--max-batch 64`); a flag wins over the environment, the environment over the default. Lists
(`api_keys`, `allowed_origins`) are comma-separated in the environment and repeated flags on the command line.

    parley serve --port 8000 --providers cuda --max-batch 64 --api-key "$KEY"
    PARLEY_API_KEYS_FILE=/run/secrets/parley-keys PARLEY_ALLOWED_ORIGINS=https://example.org parley serve

The names are in `Settings`' fields below; `parley serve --help` lists them with their variables and defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parley.contract import BEAM, SETTLE_MS
from parley.features import check_fbank_backend
from server.biasing import HOTWORD_BOOST, HOTWORD_FLOOR
from server.endpoint import EndpointConfig
from server.keys import read_keys_file
from server.logs import LOG_FORMATS
from server.profanity import PROFANITY, read_words
from server.protocol import DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_SEARCHES, MAX_BEAM
from server.respell import RESPELL_THRESHOLD, RESPELL_VERIFY_MARGIN, RESPELL_VERIFY_THRESHOLD

ENV_PREFIX = "PARLEY_"
DEFAULT_BUNDLES = Path(__file__).resolve().parents[1] / "bundles"
# The bundle a client gets when it names none and --default-model is not set, when it is loaded (else the first
# bundle by name): the README's quick start model.
DEFAULT_MODEL = "en-open"
PROVIDERS = ("auto", "cuda", "cpu")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise ValueError(f"expected one of {_TRUE + _FALSE}, got {text!r}")


def _list(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _meta(help: str, parse: Callable[[str], Any] = str, metavar: str | None = None) -> dict[str, Any]:
    """A Settings field's metadata: what argparse and the environment reader need."""
    return {"help": help, "parse": parse, "metavar": metavar}


@dataclass(frozen=True)
class Settings:
    """The server's configuration. Construct with keyword arguments, or `from_env_and_args` for the command.

    Raises:
        ValueError: a value out of range, naming the setting and what it accepts.
    """

    # Network.
    host: str = field(
        default="127.0.0.1", metadata=_meta("address to listen on (0.0.0.0 for every interface)", metavar="ADDR")
    )
    port: int = field(default=8000, metadata=_meta("TCP port (0: any free port)", int))
    ssl_certfile: Path | None = field(
        default=None, metadata=_meta("TLS certificate (PEM) for wss:// and https://", Path, "PEM")
    )
    ssl_keyfile: Path | None = field(
        default=None, metadata=_meta("TLS private key (PEM), with --ssl-certfile", Path, "PEM")
    )
    log_level: str = field(default="info", metadata=_meta(f"log level: {', '.join(LOG_LEVELS)}", str.lower, "LEVEL"))
    log_format: str = field(
        default="text",
        metadata=_meta(f"log lines: {', '.join(LOG_FORMATS)} (one JSON object a line, for log collectors)", str.lower),
    )

    # Models.
    bundles: Path = field(
        default=DEFAULT_BUNDLES,
        metadata=_meta("folder of model bundles (one sub-folder with a bundle.json each)", Path, "DIR"),
    )
    default_model: str | None = field(
        default=None,
        metadata=_meta(
            f"bundle used when a client names none (default: {DEFAULT_MODEL} when loaded, else the first by name)",
            str,
            "NAME",
        ),
    )
    providers: str = field(
        default="auto", metadata=_meta("onnxruntime providers: auto (CUDA when usable), cuda, cpu", str.lower, "P")
    )
    intra_op_threads: int = field(
        default=1,
        metadata=_meta(
            "onnxruntime threads per model run (0: onnxruntime's choice; 1 costs the least CPU per stream, and "
            "--parallel-steps runs batches side by side)",
            int,
            "N",
        ),
    )
    fbank: str = field(
        default="numpy",
        metadata=_meta(
            "what computes the fbank frames: numpy (the fastest) or kaldi-native-fbank (sherpa-onnx's frontend: "
            "its frames to the bit, so an int8 bundle's transcripts equal sherpa-onnx's; pip install "
            "kaldi-native-fbank)",
            str.lower,
            "NAME",
        ),
    )

    search: str = field(
        default="auto",
        metadata=_meta(
            "the search of streams that ask for none: auto (beam search with the model's general LM where its bundle "
            "has one, greedy elsewhere), greedy (the most streams per core) or beam",
            str.lower,
            "NAME",
        ),
    )

    beam: int = field(
        default=BEAM,
        metadata=_meta(
            f"hypotheses modified beam search keeps (default {BEAM}, as sherpa-onnx's max_active_paths; 8 gave en-open "
            "with its general LM 1.3-2.2 points less WER for 1.3 times the compute, docs/adaptation.md)",
            int,
            "N",
        ),
    )

    settle_ms: float = field(
        default=SETTLE_MS,
        metadata=_meta(
            "beam search settles the best hypothesis's words this many ms behind the audio: hypotheses that spell "
            "them otherwise are dropped, so partials' stable prefix and OpenAI Realtime deltas come sooner "
            f"(default {SETTLE_MS:g}; 0: never; docs/adaptation.md)",
            float,
            "MS",
        ),
    )

    # Batching engine.
    max_batch: int = field(default=32, metadata=_meta("most streams in one encoder run", int, "N"))
    max_wait_ms: float = field(
        default=10.0, metadata=_meta("longest wait for a fuller batch once a chunk is ready (ms)", float, "MS")
    )
    parallel_steps: int = field(
        default=2,
        metadata=_meta(
            "batches the model runs at once, each in its own thread (with --intra-op-threads 1, about one core each)",
            int,
            "N",
        ),
    )
    queue_chunks: int = field(
        default=8,
        metadata=_meta(
            "audio chunks a connection may have waiting for the engine; beyond that its socket is not read", int, "N"
        ),
    )

    # Limits.
    max_connections: int = field(
        default=256, metadata=_meta("open streams at most; more are refused with close code 1013", int, "N")
    )
    max_streams_per_key: int = field(
        default=0,
        metadata=_meta(
            "open streams at most per API key (a tenant's share; channels count; 0: no limit); more are refused "
            "with too_many_streams",
            int,
            "N",
        ),
    )
    max_message_bytes: int = field(
        default=DEFAULT_MAX_MESSAGE_BYTES, metadata=_meta("largest WebSocket message accepted (bytes)", int, "B")
    )
    ws_compression: bool = field(
        default=False,
        metadata=_meta(
            "accept WebSocket permessage-deflate when a client offers it (off: PCM audio hardly compresses, and "
            "inflating every message costs the server CPU)",
            _bool,
        ),
    )
    max_upload_bytes: int = field(
        default=64 << 20, metadata=_meta("largest POST /v1/transcribe body (bytes)", int, "B")
    )
    min_upload_bytes_per_s: int = field(
        default=4000,
        metadata=_meta(
            "a POST /v1/transcribe body must keep arriving: at least this many bytes a second on average once "
            "idle_timeout_s has passed, and no pause longer than idle_timeout_s (else 408 idle_timeout)",
            int,
            "B",
        ),
    )
    idle_timeout_s: float = field(
        default=30.0,
        metadata=_meta(
            "close a stream that sends less audio than this many seconds of wall time allow, or that does not read "
            "what the server sends for as long",
            float,
            "S",
        ),
    )
    max_header_bytes: int = field(
        default=32 << 10, metadata=_meta("largest HTTP request line and headers accepted (bytes)", int, "B")
    )
    header_timeout_s: float = field(
        default=10.0,
        metadata=_meta("seconds a connection gets to send its request's headers; then it is closed", float, "S"),
    )
    drain_timeout_s: float = field(
        default=30.0, metadata=_meta("on shutdown, seconds open streams get to finish", float, "S")
    )

    # Adaptation: hotwords per stream (docs/adaptation.md).
    max_hotwords: int = field(default=100, metadata=_meta("hotwords one stream may ask for", int, "N"))
    max_hotword_chars: int = field(default=64, metadata=_meta("characters in one hotword", int, "N"))
    max_hotword_tokens: int = field(
        default=32, metadata=_meta("tokens of one hotword under the model's tokenizer", int, "N")
    )
    hotword_boost: float = field(
        default=HOTWORD_BOOST,
        metadata=_meta("bonus per token of a hotword that names no boost (log-probability)", float, "B"),
    )
    hotword_floor: float = field(
        default=HOTWORD_FLOOR,
        metadata=_meta(
            "hotword acoustic floor F: no bonus for a token whose log-probability is below -F x its boost (0: off)",
            float,
            "F",
        ),
    )
    talker_threshold: float = field(
        default=0.0,
        metadata=_meta(
            "cosine to a talker's voice at or above which a final is theirs (0: each bundle's own; docs/talkers.md)",
            float,
            "C",
        ),
    )
    respell_threshold: float = field(
        default=RESPELL_THRESHOLD,
        metadata=_meta(
            "hotword respelling: least sound-key closeness for a run of doubtful words to become a hotword (0: off)",
            float,
            "C",
        ),
    )
    respell_verify_threshold: float = field(
        default=RESPELL_VERIFY_THRESHOLD,
        metadata=_meta(
            "hotword respelling in finals: least closeness of a run the transducer must hear as the hotword (1: off)",
            float,
            "C",
        ),
    )
    respell_verify_margin: float = field(
        default=RESPELL_VERIFY_MARGIN,
        metadata=_meta(
            "hotword respelling in finals: log-probability per token the hotword may fall short of the words heard",
            float,
            "M",
        ),
    )
    hotwords_file: Path | None = field(
        default=None,
        metadata=_meta(
            "hotwords every beam-search stream gets: one phrase per line, optionally a tab and its boost; # comments; "
            "or a .json list of start-message hotwords (`parley hotwords learn` writes their sounds_like)",
            Path,
            "FILE",
        ),
    )

    redact: bool = field(
        default=False,
        metadata=_meta(
            'replace spoken digit strings (card, account, phone numbers) by "[redacted]" in every stream, '
            "whatever it asks (English captions)",
            _bool,
        ),
    )

    profanity_filter: bool = field(
        default=False,
        metadata=_meta(
            'mask profanity ("d***") in every stream, whatever it asks (the built-in English list and '
            "--profanity-words)",
            _bool,
        ),
    )
    profanity_words: Path | None = field(
        default=None,
        metadata=_meta(
            "more words for the profanity filter, one a line (# comments): added to the built-in English list",
            Path,
            "FILE",
        ),
    )

    # Endpointing: sherpa-onnx's three rules (server/endpoint.py).
    endpointing: bool = field(
        default=True, metadata=_meta("close segments at endpoints (off: one segment until stop)", _bool)
    )
    rule1_min_trailing_silence: float = field(
        default=2.4, metadata=_meta("endpoint rule 1: seconds of trailing silence", float, "S")
    )
    rule2_min_trailing_silence: float = field(
        default=1.2, metadata=_meta("endpoint rule 2: seconds of silence after speech", float, "S")
    )
    rule3_min_utterance_length: float = field(
        default=20.0, metadata=_meta("endpoint rule 3: longest segment (s)", float, "S")
    )

    # Access.
    api_keys: tuple[str, ...] = field(
        default_factory=tuple, metadata=_meta("accepted API keys (none: no authentication)", _list, "KEY"), repr=False
    )
    api_keys_file: Path | None = field(
        default=None,
        metadata=_meta(
            "file of accepted API keys, one per line, each optionally with name=NAME max_streams=N (added to "
            "--api-key; read again when it changes)",
            Path,
            "FILE",
        ),
    )
    allowed_origins: tuple[str, ...] = field(
        default_factory=tuple,
        metadata=_meta(
            "browser origins allowed to connect, e.g. https://example.org (none: any; * any)", _list, "ORIGIN"
        ),
    )

    # Asterisk's AudioSocket (server/audiosocket.py, docs/asterisk.md).
    audiosocket_port: int | None = field(
        default=None,
        metadata=_meta(
            "also take Asterisk's calls over AudioSocket on this TCP port of --host (the dialplan's "
            "AudioSocket(UUID,HOST:PORT)); their captions at /v1/calls/UUID (none: off; 0: any free port)",
            int,
            "PORT",
        ),
    )
    audiosocket_model: str | None = field(
        default=None, metadata=_meta("the bundle AudioSocket calls are captioned with (none: the default model)")
    )
    calls_webhook: str = field(
        default="",
        metadata=_meta(
            "POST each AudioSocket call's captions (GET /v1/calls/UUID's body) to this http(s) URL when it ends, "
            "tried 3 times (none: no webhook)",
            metavar="URL",
        ),
    )
    calls_webhook_secret: str = field(
        default="",
        metadata=_meta(
            "sign --calls-webhook's POSTs with this secret: X-Parley-Signature: sha256=HMAC-SHA256(secret, body)",
            metavar="SECRET",
        ),
        repr=False,
    )
    audiosocket_api_key: str = field(
        default="",
        metadata=_meta(
            "the API key whose account AudioSocket calls use, needed when the server has keys: AudioSocket carries "
            "none, so anyone who reaches --audiosocket-port uses it (bind --host to a trusted network)",
            metavar="KEY",
        ),
        repr=False,
    )

    # Home Assistant's and Rhasspy's Wyoming protocol (server/wyoming.py, docs/wyoming.md).
    wyoming_port: int | None = field(
        default=None,
        metadata=_meta(
            "also speak the Wyoming protocol (Home Assistant's voice pipelines) on this TCP port of --host; 10300 is "
            "the usual one (none: off; 0: any free port)",
            int,
            "PORT",
        ),
    )
    wyoming_api_key: str = field(
        default="",
        metadata=_meta(
            "the API key whose account Wyoming connections use, needed when the server has keys: Wyoming carries "
            "none, so anyone who reaches --wyoming-port uses it (bind --host to a trusted network)",
            metavar="KEY",
        ),
        repr=False,
    )

    def __post_init__(self) -> None:
        # Normalize types so that Settings(bundles="x") and Settings(api_keys=["k"]) behave like the parsed forms.
        for name in ("bundles", "ssl_certfile", "ssl_keyfile", "api_keys_file", "hotwords_file", "profanity_words"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, Path):
                object.__setattr__(self, name, Path(v))
        for name in ("api_keys", "allowed_origins"):
            v = getattr(self, name)
            object.__setattr__(self, name, (v,) if isinstance(v, str) else tuple(v))
        object.__setattr__(self, "allowed_origins", tuple(o.rstrip("/") for o in self.allowed_origins))
        if self.api_keys_file is not None and self.api_keys_file.is_file():  # a missing one: validate names it
            # However the settings are made (flags, environment, Settings(...), dataclasses.replace), the file's keys
            # are accepted: a server given a keys file must never run open. Once each, as replace() reads it again.
            keys = _read_keys(self.api_keys_file)
            if not keys:
                raise ValueError(f"api_keys_file {self.api_keys_file}: no keys in it (the server would run open)")
            object.__setattr__(self, "api_keys", tuple(dict.fromkeys(self.api_keys + keys)))
        object.__setattr__(self, "log_level", self.log_level.lower())
        object.__setattr__(self, "log_format", self.log_format.lower())
        object.__setattr__(self, "providers", self.providers.lower())
        self.validate()

    def validate(self) -> None:
        """Raises ValueError naming the first bad setting."""

        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ValueError(f"{name} = {getattr(self, name)!r}: {what}")

        need(bool(self.host.strip()), "host", "must not be empty")
        need(0 <= self.port <= 65535, "port", "must be 0-65535")
        need(self.providers in PROVIDERS, "providers", f"must be one of {', '.join(PROVIDERS)}")
        need(self.log_level in LOG_LEVELS, "log_level", f"must be one of {', '.join(LOG_LEVELS)}")
        need(self.log_format in LOG_FORMATS, "log_format", f"must be one of {', '.join(LOG_FORMATS)}")
        need(self.default_model is None or bool(self.default_model.strip()), "default_model", "must not be empty")
        check_fbank_backend(self.fbank)  # its message names the setting
        need(1 <= self.beam <= MAX_BEAM, "beam", f"must be 1-{MAX_BEAM}")
        need(self.settle_ms >= 0, "settle_ms", "must be >= 0 (0: never)")
        need(self.search in DEFAULT_SEARCHES, "search", f"must be one of {', '.join(DEFAULT_SEARCHES)}")
        need(self.intra_op_threads >= 0, "intra_op_threads", "must be >= 0 (0: onnxruntime's choice)")
        need(self.max_batch >= 1, "max_batch", "must be >= 1")
        need(self.parallel_steps >= 1, "parallel_steps", "must be >= 1")
        need(self.max_wait_ms >= 0, "max_wait_ms", "must be >= 0")
        need(self.queue_chunks >= 1, "queue_chunks", "must be >= 1")
        need(self.max_connections >= 1, "max_connections", "must be >= 1")
        need(self.max_streams_per_key >= 0, "max_streams_per_key", "must be >= 0 (0: no limit)")
        need(1024 <= self.max_message_bytes <= 64 << 20, "max_message_bytes", "must be 1 KiB-64 MiB")
        need(self.max_upload_bytes >= 1024, "max_upload_bytes", "must be >= 1 KiB")
        need(self.min_upload_bytes_per_s >= 1, "min_upload_bytes_per_s", "must be >= 1")
        need(self.idle_timeout_s > 0, "idle_timeout_s", "must be > 0")
        need(self.max_header_bytes >= 1024, "max_header_bytes", "must be >= 1024")
        need(self.header_timeout_s > 0, "header_timeout_s", "must be > 0")
        need(self.drain_timeout_s >= 0, "drain_timeout_s", "must be >= 0")
        for name in ("wyoming_port", "audiosocket_port"):
            port = getattr(self, name)
            need(port is None or 0 <= port <= 65535, name, "must be 0-65535")
        need(
            not self.calls_webhook or self.calls_webhook.startswith(("http://", "https://")),
            "calls_webhook",
            "must be an http:// or https:// URL",
        )
        ports = [p for p in (self.port, self.wyoming_port, self.audiosocket_port) if p]  # 0, None: any, off
        if len(ports) != len(set(ports)):
            raise ValueError(
                f"port {self.port}, wyoming_port {self.wyoming_port} and audiosocket_port {self.audiosocket_port} "
                "must differ"
            )
        need(0 <= self.max_hotwords <= 10_000, "max_hotwords", "must be 0-10000")
        need(1 <= self.max_hotword_chars <= 1000, "max_hotword_chars", "must be 1-1000")
        need(1 <= self.max_hotword_tokens <= 1000, "max_hotword_tokens", "must be 1-1000")
        need(0 < self.hotword_boost <= 20, "hotword_boost", "must be in (0, 20]")
        need(0 <= self.hotword_floor <= 100, "hotword_floor", "must be in [0, 100]")
        need(0 <= self.respell_threshold <= 1, "respell_threshold", "must be in [0, 1]")
        need(0 <= self.talker_threshold < 1, "talker_threshold", "must be in [0, 1)")
        need(0 < self.respell_verify_threshold <= 1, "respell_verify_threshold", "must be in (0, 1]")
        need(0 <= self.respell_verify_margin <= 20, "respell_verify_margin", "must be in [0, 20]")
        need(self.rule1_min_trailing_silence >= 0, "rule1_min_trailing_silence", "must be >= 0")
        need(self.rule2_min_trailing_silence >= 0, "rule2_min_trailing_silence", "must be >= 0")
        need(self.rule3_min_utterance_length > 0, "rule3_min_utterance_length", "must be > 0")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together: give both or neither")
        for name in ("ssl_certfile", "ssl_keyfile", "api_keys_file", "hotwords_file", "profanity_words"):
            path = getattr(self, name)
            need(path is None or path.is_file(), name, "no such file")
        if self.hotwords_file is not None:
            read_hotwords(self.hotwords_file)  # a bad line fails at start-up, not in every stream
        if self.profanity_words is not None:
            read_words(self.profanity_words)
        for key in self.api_keys:
            if not key or key != key.strip() or any(c.isspace() for c in key):
                raise ValueError("api_keys: a key is empty or contains white space")
        for origin in self.allowed_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"allowed_origins: {origin!r} is not * or an origin like https://example.org")

    # ---- Construction ----

    @classmethod
    def from_env_and_args(
        cls, args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Defaults, overridden by `PARLEY_*` variables in `environ` (os.environ by default), overridden by the flags
        in `args` that were given (flags `add_arguments` defined default to None, meaning "not given").

        Keys in `api_keys_file` are added to `api_keys` (by the constructor, so `Settings(api_keys_file=...)` too).

        Raises:
            ValueError: an unparsable variable (named in the message) or an invalid setting.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            var = ENV_PREFIX + f.name.upper()
            text = environ.get(var)
            if text is not None and text.strip() != "":
                try:
                    values[f.name] = f.metadata["parse"](text.strip())
                except ValueError as e:
                    expected = {int: "expected an integer", float: "expected a number"}.get(f.metadata["parse"], e)
                    raise ValueError(f"{var}={text!r}: {expected}") from None
            if args is not None and getattr(args, f.name, None) is not None:
                values[f.name] = getattr(args, f.name)
        return cls(**values)

    # ---- What the rest of the server asks ----

    def server_hotwords(self) -> tuple[tuple[str, float | None], ...]:
        """The phrases of `hotwords_file` (none without one)."""
        return () if self.hotwords_file is None else read_hotwords(self.hotwords_file)

    def server_sounds_like(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The sounds_like of `hotwords_file`'s phrases (a JSON file's; none otherwise)."""
        return () if self.hotwords_file is None else read_sounds_like(self.hotwords_file)

    def profanity_list(self) -> frozenset[str]:
        """The profanity filter's words: the built-in English list and `profanity_words`'s."""
        extra = frozenset() if self.profanity_words is None else read_words(self.profanity_words)
        return PROFANITY | extra

    def endpoint_config(self) -> EndpointConfig:
        """The endpoint rules these settings describe."""
        return EndpointConfig.from_seconds(
            self.rule1_min_trailing_silence,
            self.rule2_min_trailing_silence,
            self.rule3_min_utterance_length,
            self.endpointing,
        )

    def origin_allowed(self, origin: str | None) -> bool:
        """Whether a request with this Origin header may connect. Requests without one (not from a browser page)
        always may: the origin check protects browser users, API keys protect the server."""
        if origin is None or not self.allowed_origins or "*" in self.allowed_origins:
            return True
        return origin.rstrip("/") in self.allowed_origins

    @property
    def auth_required(self) -> bool:
        return bool(self.api_keys)

    def uvicorn_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `uvicorn.run(app, ...)`.

        The transport's WebSocket size limit is twice `max_message_bytes`, so that a message a little over the
        limit reaches the app, which answers it with a `too_big` error before closing; far larger ones are cut off
        by the transport with close code 1009 alone.
        """
        kw: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "log_level": self.log_level,
            "ws_max_size": 2 * self.max_message_bytes,
            "ws_per_message_deflate": self.ws_compression,
            "timeout_graceful_shutdown": self.drain_timeout_s,
            # h11, not httptools: h11 bounds the request line and headers; the header deadline is server/serve.py's.
            "http": "h11",
            "h11_max_incomplete_event_size": self.max_header_bytes,
        }
        if self.ssl_certfile is not None:
            kw["ssl_certfile"] = str(self.ssl_certfile)
            kw["ssl_keyfile"] = str(self.ssl_keyfile)
        return kw


def _read_keys(path: Path) -> tuple[str, ...]:
    return tuple(e.key for e in read_keys_file(path))  # the options are the KeyRing's (server/keys.py)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# Flags named differently from their field, for the command line's sake (repeated flags read as singular).
_FLAG_NAMES = {"api_keys": "--api-key", "allowed_origins": "--allowed-origin"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds one flag per Settings field. Every flag defaults to None ("not given"), so `from_env_and_args` can tell
    a flag from the environment and the defaults."""
    group = parser.add_argument_group("server settings (each also read from the environment variable shown)")
    for f in dataclasses.fields(Settings):
        var = ENV_PREFIX + f.name.upper()
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        shown = ", ".join(default) if isinstance(default, tuple) else default
        if f.name == "bundles":
            shown = "bundles/ in the repository"
        help = f"{f.metadata['help']} [{var}; default: {shown if shown not in ('', None) else 'none'}]"
        help = help.replace("%", "%%")
        flag = _FLAG_NAMES.get(f.name, _flag(f.name))
        if f.type in ("bool", bool):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help)
        elif f.name in _FLAG_NAMES:
            group.add_argument(
                flag, dest=f.name, action="append", default=None, metavar=f.metadata["metavar"], help=help
            )
        else:
            group.add_argument(
                flag, dest=f.name, type=f.metadata["parse"], default=None, metavar=f.metadata["metavar"], help=help
            )


def read_hotwords(path: Path) -> tuple[tuple[str, float | None], ...]:
    """A hotwords file: one phrase per line, optionally followed by a tab and its boost per token; blank lines and
    lines starting with # are skipped. A file named *.json holds a list of hotwords as a start message gives them
    (strings, or {"phrase", "boost", "sounds_like"} objects; `parley hotwords learn` writes one).

    Raises:
        ValueError: a boost that is not a number in (0, 20], naming the line; a JSON file that is not such a list.
    """
    if path.suffix == ".json":
        return _json_hotwords(path)[0]
    out: list[tuple[str, float | None]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        phrase, _, boost = line.partition("\t")
        value: float | None = None
        if boost.strip():
            try:
                value = float(boost)
            except ValueError:
                value = -1.0
            if not 0 < value <= 20:
                raise ValueError(f"hotwords_file {path}, line {n}: boost {boost.strip()!r} is not a number in (0, 20]")
        out.append((phrase.strip(), value))
    return tuple(out)


def read_sounds_like(path: Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The sounds_like of a JSON hotwords file's phrases (none for a text file).

    Raises:
        ValueError: a JSON file that is not a list of start-message hotwords.
    """
    return _json_hotwords(path)[1] if path.suffix == ".json" else ()


def _json_hotwords(path: Path) -> tuple[tuple[tuple[str, float | None], ...], tuple[tuple[str, tuple[str, ...]], ...]]:
    """A JSON hotwords file's (phrase, boost) pairs and sounds_like, checked as a start message's hotwords are."""
    from server.protocol import ProtocolError, parse_hotword_list

    try:
        return parse_hotword_list(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ProtocolError) as e:
        raise ValueError(f"hotwords_file {path}: {e}") from None
