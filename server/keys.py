"""API keys: which are accepted, whose account each one draws on, and the keys file that can change while the server
runs.

A keys file has one key a line, optionally followed by options; blank lines and `#` comments are skipped:

    # key                          options
    3f9c2e7a0b1d4c58a6e2f0d9b7c1   name=acme   max_streams=20   redact=true
    9a8b7c6d5e4f30211f2e3d4c5b6a   name=acme   max_streams=20   redact=true   # acme's next key: the same account
    77e1c0ffee5a1ad0b0a7d15ea5e5   max_streams=2

- `name=NAME` names the account (letters, digits, `_.-`, at most 64): /metrics shows the name instead of a hash of
  the key, and keys with the same name share one account (their streams count together against its limit, their
  audio adds up to one series), which is how a tenant's key is rotated without a gap in its figures.
- `max_streams=N` is the account's limit of open streams (0: none), instead of the server's `--max-streams-per-key`.
- `redact=true` and `profanity_filter=true`: every stream and upload of the account is redacted (server/redact.py) or
  has its profanity masked (server/profanity.py), whatever it asks: a tenant's compliance rule, kept by the server
  rather than by each of its apps (`false`, the default, leaves it to the stream).

    ring = KeyRing(["k0"], Path("keys.txt"), default_max_streams=10)   # the flags' keys, and the file's
    ring.valid(key)                # True for an accepted key (or any request, on a server without keys)
    ring.tenant(key)               # Tenant(id="acme", max_streams=20)

The file is read again when it changes (its size or modification time; looked at, at most once a second, when a key
is checked), so keys are added, removed or given other limits without a restart. A key taken out refuses new
requests; its open streams go on to their end. A file that no longer reads, or reads with no key, is logged and
ignored: the server keeps the keys it had rather than running open or refusing everyone.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("parley.app")

_COMMENT = re.compile(r"(?:^|\s)#")
_OPTIONS = {  # option -> how the errors show it
    "name": "name=NAME",
    "max_streams": "max_streams=N",
    "redact": "redact=true",
    "profanity_filter": "profanity_filter=true",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
RELOAD_EVERY_S = 1.0


@functools.lru_cache(maxsize=4096)  # asked for every audio message of a stream with a key
def key_id(key: str) -> str:
    """How /metrics names a key without a name: the first 12 hex digits of its SHA-256 (`printf %s KEY | sha256sum
    | cut -c1-12`), so that usage can be told apart per tenant without the keys themselves in the metrics."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class KeyEntry:
    """One line of a keys file: the key, and its options (None: not given)."""

    key: str
    name: str | None = None
    max_streams: int | None = None
    redact: bool | None = None
    profanity_filter: bool | None = None

    @property
    def options(self) -> tuple[int | None, bool | None, bool | None]:
        """What the keys of one name must agree on."""
        return (self.max_streams, self.redact, self.profanity_filter)


@dataclass(frozen=True)
class Tenant:
    """The account a key draws on: `id` names it on /metrics and counts its streams; `max_streams` (0: no limit);
    `redact` and `profanity_filter`: every stream of the account is redacted, or masked, whatever it asks."""

    id: str
    max_streams: int
    redact: bool = False
    profanity_filter: bool = False


def parse_keys(text: str, source: str = "api_keys_file") -> list[KeyEntry]:
    """The entries of a keys file's text.

    Raises:
        ValueError: naming `source` and the line, for an unknown or bad option, a key given twice, or one name
            given two different limits.
    """
    entries: list[KeyEntry] = []
    first_line: dict[str, int] = {}
    agreed: dict[str, tuple[KeyEntry, int]] = {}  # name -> its first entry, and that entry's line
    for n, line in enumerate(text.splitlines(), 1):
        fields = _COMMENT.split(line, 1)[0].split()  # a `#` starts a comment at a line's start or after a space
        if not fields:
            continue
        key, options = fields[0], fields[1:]
        where = f"{source} line {n}"
        if key.startswith(("name=", "max_streams=")):
            raise ValueError(f"{where}: the line starts with an option; the key comes first")
        if key in first_line:
            raise ValueError(f"{where}: this key is already on line {first_line[key]}")
        first_line[key] = n
        given: dict[str, str | int | bool] = {}
        for option in options:
            opt, eq, value = option.partition("=")
            if not eq or opt not in _OPTIONS:
                raise ValueError(f"{where}: unknown option {option!r} ({', '.join(_OPTIONS.values())})")
            if opt in given:
                raise ValueError(f"{where}: {opt} given twice")
            if opt == "name":
                if not _NAME.fullmatch(value):
                    raise ValueError(f"{where}: name {value!r}: letters, digits and _.- only, at most 64")
                given[opt] = value
            elif opt == "max_streams":
                if not value.isdigit():
                    raise ValueError(f"{where}: max_streams {value!r}: a whole number >= 0 (0: no limit)")
                given[opt] = int(value)
            else:
                if value.lower() not in ("true", "false"):
                    raise ValueError(f"{where}: {opt} {value!r}: true or false")
                given[opt] = value.lower() == "true"
        entry = KeyEntry(key, **given)  # type: ignore[arg-type]
        if entry.name is not None:
            first, line = agreed.setdefault(entry.name, (entry, n))
            for field_name, mine, theirs in zip(
                ("max_streams", "redact", "profanity_filter"), entry.options, first.options, strict=True
            ):
                if mine != theirs:
                    raise ValueError(
                        f"{where}: name {entry.name} has {field_name}={_show(mine)} here and {_show(theirs)} on "
                        f"line {line}: the keys of one name share one account"
                    )
        entries.append(entry)
    return entries


def read_keys_file(path: Path) -> list[KeyEntry]:
    """`parse_keys` of a file. Raises ValueError for an unreadable file too."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"api_keys_file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"api_keys_file {path}: not UTF-8 text") from None
    return parse_keys(text, f"api_keys_file {path}")


def _show(value: int | bool | None) -> str:
    return "(not given)" if value is None else str(value).lower()


class KeyRing:
    """The accepted keys: the `api_keys` given as flags, and `api_keys_file`'s, read again when the file changes.

    Args:
        keys: keys accepted with no options (the `--api-key` flags and `PARLEY_API_KEYS`).
        path: the keys file, or None.
        default_max_streams: the limit of a key without `max_streams=` (`--max-streams-per-key`; 0: none).
    """

    def __init__(self, keys: Iterable[str] = (), path: Path | None = None, default_max_streams: int = 0) -> None:
        self.path = path
        self.default_max_streams = default_max_streams
        self._flags = tuple(keys)
        self._tenants: dict[str, Tenant] = {}
        self._encoded: tuple[bytes, ...] = ()
        self._past: dict[str, Tenant] = {}  # keys taken out of the file: their open streams still count
        self._stamp: tuple[int, int] | None = None
        self._looked = time.monotonic()
        self.reloads = 0  # times the file was read again and taken
        self.reload_errors = 0  # times it changed and was ignored (unreadable, no keys, a bad line)
        self.stale = False  # the file's last change was ignored: the keys served are older than the file
        self._set(read_keys_file(path) if path is not None else [])
        self._stamp = self._file_stamp()

    # ---- Lookups ----

    @property
    def required(self) -> bool:
        """Whether requests need a key (the server has at least one)."""
        return bool(self._encoded)

    def valid(self, key: str | None) -> bool:
        """True when the server has no keys or `key` is one of them (compared in constant time)."""
        self.reload_if_changed()
        if not self._encoded:
            return True
        if not key:
            return False
        given = key.encode()
        return any([hmac.compare_digest(given, k) for k in self._encoded])  # all compared: no early exit

    def tenant(self, key: str) -> Tenant:
        """The account `key` draws on (a key taken out of the file keeps its last one, for its open streams)."""
        t = self._tenants.get(key) or self._past.get(key)
        return t if t is not None else Tenant(key_id(key), self.default_max_streams)

    def accepted(self) -> list[str]:
        """The accepted keys, flags' first."""
        return list(self._tenants)

    # ---- The file ----

    def reload_if_changed(self, now: float | None = None) -> bool:
        """Reads the file again if it changed since it was last read (looked at, at most once a `RELOAD_EVERY_S`).
        True when new keys were taken."""
        if self.path is None:
            return False
        now = time.monotonic() if now is None else now
        if now - self._looked < RELOAD_EVERY_S:
            return False
        self._looked = now
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        return self.reload()

    def reload(self) -> bool:
        """Reads the file now. True when its keys were taken; on a file that does not read or has no key, logs the
        reason and keeps the keys it had (False)."""
        assert self.path is not None
        try:
            entries = read_keys_file(self.path)
            if not entries and not self._flags:
                raise ValueError(f"api_keys_file {self.path}: no keys in it (the server would run open)")
        except ValueError as e:
            self.reload_errors += 1
            self.stale = True
            log.error("%s: keeping the %d keys of before", e, len(self._tenants))
            return False
        before = set(self._tenants)
        self._set(entries)
        self.reloads += 1
        self.stale = False
        added, removed = len(set(self._tenants) - before), len(before - set(self._tenants))
        log.info(
            "api keys read again from %s: %d keys (%d new, %d taken out)", self.path, len(self._tenants), added, removed
        )
        return True

    def _set(self, entries: list[KeyEntry]) -> None:
        tenants: dict[str, Tenant] = {}
        for key in self._flags:
            tenants[key] = Tenant(key_id(key), self.default_max_streams)
        for e in entries:
            limit = self.default_max_streams if e.max_streams is None else e.max_streams
            tenants[e.key] = Tenant(e.name or key_id(e.key), limit, bool(e.redact), bool(e.profanity_filter))
        for key, t in self._tenants.items():
            if key not in tenants:
                self._past[key] = t
        for key in tenants:
            self._past.pop(key, None)
        self._tenants = tenants
        self._encoded = tuple(k.encode() for k in tenants)

    def _file_stamp(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return (-1, -1)
        return (st.st_mtime_ns, st.st_size)
