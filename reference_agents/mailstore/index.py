"""The Maildir backend's SQLite index: one database per user holding mailboxes, UIDs, flags and mod-sequences."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from reference_agents.mailstore.errors import StorageError


@dataclass(frozen=True, slots=True)
class MailboxRow:
    name: str
    dirname: str
    uidvalidity: int
    uidnext: int
    version: int


@dataclass(frozen=True, slots=True)
class UserIndex:
    directory: Path
    conn: sqlite3.Connection
    #: The user's write lock (an fd to flock) while other processes share the store.
    lock_fd: int = -1


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mailboxes (
    name TEXT PRIMARY KEY,
    dirname TEXT NOT NULL UNIQUE,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    version INTEGER NOT NULL,
    recent INTEGER NOT NULL DEFAULT 0,
    special_use TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS messages (
    mailbox TEXT NOT NULL,
    uid INTEGER NOT NULL,
    filename TEXT NOT NULL,
    location TEXT NOT NULL,
    flags TEXT NOT NULL,
    internaldate TEXT NOT NULL,
    size INTEGER NOT NULL,
    modseq INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (mailbox, uid),
    UNIQUE (mailbox, filename)
);
CREATE TABLE IF NOT EXISTS subscriptions (
    name TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS deliveries (
    tag TEXT PRIMARY KEY,
    mailbox TEXT NOT NULL,
    uid INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS expunged (
    mailbox TEXT NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox, uid)
);
"""


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction; rolled back on any exception. SQLite errors become
    `StorageError`."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StorageError(f"mail index: {exc}") from exc


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction: its statements see one committed state, whatever other connections
    (other processes) commit meanwhile (SQLite WAL)."""
    try:
        conn.execute("BEGIN")
        try:
            yield
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StorageError(f"mail index: {exc}") from exc


def add_column(conn: sqlite3.Connection, table: str, column: str, declaration: str) -> None:
    """Add *column* to *table* of an index written before it existed."""
    if column not in {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def record_expunged(conn: sqlite3.Connection, name: str, uids: Iterable[int]) -> None:
    """Remember *uids* as expunged at the mailbox's current version (which the caller has just
    moved up), for VANISHED (RFC 7162 §3.2.6)."""
    conn.executemany("INSERT OR REPLACE INTO expunged (mailbox, uid, modseq)"
                     " VALUES (?, ?, (SELECT version FROM mailboxes WHERE name = ?))",
                     [(name, uid, name) for uid in uids])


def encode_flags(flags: frozenset[str]) -> str:
    return " ".join(sorted(flags))


def decode_flags(text: str) -> frozenset[str]:
    return frozenset(text.split())
