"""How the Maildir backend names files and directories: flag letters in file names, and
directory names that cannot escape their parent."""

from __future__ import annotations

import hashlib
import types

#: System flag -> Maildir info letter (cr.yp.to/proto/maildir.html); letters are written in
#: ASCII order.
MAILDIR_LETTERS: types.MappingProxyType[str, str] = types.MappingProxyType(
    {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}
)
LETTER_FLAGS: types.MappingProxyType[str, str] = types.MappingProxyType(
    {v: k for k, v in MAILDIR_LETTERS.items()}
)
SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_DIRNAME = 200
NAME_FILE = "mailharness-name"
VALIDITY_FILE = "mailharness-uidvalidity"
LOCK_FILE = "mailharness.lock"
INDEX_FILE = "index.sqlite3"
#: Beside a user's index: the lock every change takes while processes share the store.
USER_LOCK_FILE = "write.lock"
TRASH_PREFIX = "~"


def encode_path_component(name: str) -> str:
    """A directory name for *name* that cannot escape its parent: bytes outside
    ``[A-Za-z0-9_-]`` become ``%XX`` (so ``.``, ``/`` and NUL are encoded and the result never
    starts with a dot); a long result is cut and suffixed with ``+`` and a hash."""
    raw = name.encode("utf-8")
    encoded = "".join(chr(b) if b in SAFE_BYTES else f"%{b:02X}" for b in raw)
    if len(encoded) > MAX_DIRNAME:
        encoded = encoded[:160] + "+" + hashlib.sha256(raw).hexdigest()[:32]
    return encoded


def maildir_info(flags: frozenset[str]) -> str:
    return "".join(sorted(MAILDIR_LETTERS[f] for f in flags if f in MAILDIR_LETTERS))


def file_location(base: str, flags: frozenset[str], *, in_new: bool) -> str:
    """Where a message file lives inside its mailbox directory: ``new/<base>`` while it has no
    flags and was never moved, else ``cur/<base>:2,<letters>``."""
    if in_new and not flags:
        return f"new/{base}"
    return f"cur/{base}:2,{maildir_info(flags)}"


def flags_from_filename(filename: str) -> frozenset[str]:
    _, sep, info = filename.partition(":2,")
    if not sep:
        return frozenset()
    return frozenset(LETTER_FLAGS[c] for c in info if c in LETTER_FLAGS)
