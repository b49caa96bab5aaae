"""A load profile: the mix of a `mailharness load` run in a TOML file, so that a run can be
repeated and kept beside the target file.

```toml
[load]
duration = 60          # seconds of load
max_messages = 5000
senders = 4            # submission sessions (STARTTLS + AUTH)
injectors = 1          # unauthenticated MX sessions
readers = 1            # IMAP readers per mailbox (IDLE, FETCH)
managers = 2           # IMAP managers per mailbox (STORE, COPY, MOVE, APPEND, EXPUNGE)
seed = 7
rate = 50              # messages per second over all senders (default: as fast as taken)
delivery_timeout = 30

# Message sizes in octets, with their weights: most small, a few large.
sizes = [[1500, 90], [30000, 9], [500000, 1]]
```

Every key is optional; an option given on the command line wins over the profile. A key that
is unknown, or a value of the wrong type, is one line naming the file and the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from harness.errors import FileProblem

#: Profile key -> (LoadOptions field, type).
KEYS: dict[str, tuple[str, type]] = {
    "duration": ("duration", float),
    "max_messages": ("max_messages", int),
    "senders": ("senders", int),
    "injectors": ("injectors", int),
    "readers": ("readers_per_mailbox", int),
    "managers": ("managers_per_mailbox", int),
    "size": ("size", int),
    "seed": ("seed", int),
    "rate": ("rate", float),
    "delivery_timeout": ("delivery_timeout", float),
}

#: The most octets a message of a profile may have (the reference agents take 25 MB).
MAX_SIZE = 10_000_000


class ProfileError(FileProblem):
    """A profile that cannot be used: ``<file>: <key>: <problem>``."""


def _number(value: Any, kind: type, source: str, key: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            kind is int and not isinstance(value, int)):
        raise ProfileError(f"must be {'an integer' if kind is int else 'a number'}",
                           source=source, key=key)
    return kind(value)  # type: ignore[no-any-return]


def _sizes(value: Any, source: str) -> tuple[tuple[int, float], ...]:
    key = "load.sizes"
    if not isinstance(value, list) or not value:
        raise ProfileError("must be a list of [octets, weight] pairs", source=source, key=key)
    pairs = []
    for i, pair in enumerate(value):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ProfileError(f"entry {i + 1} must be [octets, weight]", source=source, key=key)
        size = _number(pair[0], int, source, f"{key}[{i + 1}]")
        weight = _number(pair[1], float, source, f"{key}[{i + 1}]")
        if not 100 <= size <= MAX_SIZE or weight <= 0:
            raise ProfileError(f"entry {i + 1}: octets must be 100 to {MAX_SIZE}, the weight "
                               "positive", source=source, key=key)
        pairs.append((int(size), float(weight)))
    return tuple(pairs)


def load_profile(path: Path) -> dict[str, Any]:
    """The LoadOptions fields a profile sets (only those it names)."""
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"cannot read: {exc.strerror or exc}", source=source) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"not valid TOML: {exc}", source=source) from exc
    unknown = sorted(set(data) - {"load"})
    if unknown:
        raise ProfileError("unknown table (a profile has [load] only)", source=source,
                           key=unknown[0])
    table = data.get("load", {})
    if not isinstance(table, dict):
        raise ProfileError("must be a table", source=source, key="load")
    fields: dict[str, Any] = {}
    for key, value in table.items():
        if key == "sizes":
            fields["sizes"] = _sizes(value, source)
            continue
        if key not in KEYS:
            raise ProfileError(f"unknown key (known: {', '.join([*KEYS, 'sizes'])})",
                               source=source, key=f"load.{key}")
        name, kind = KEYS[key]
        fields[name] = _number(value, kind, source, f"load.{key}")
    return fields
