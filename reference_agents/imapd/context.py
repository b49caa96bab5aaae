"""What a command handler may use of its session: the ``HandlerContext`` protocol. Handlers
(cmd_*.py) are written against it, not against the concrete ``Session``, so the session's
loop, reader plumbing and dispatch stay its own; mypy checks that Session provides it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from harness.protocol.imap.commands import CommandReader
from harness.protocol.imap.state import State, Transition
from reference_agents.config import ProviderConfig
from reference_agents.imapd.connection import Connection
from reference_agents.imapd.selected import SelectedMailbox
from reference_agents.mailstore import MailStore

if TYPE_CHECKING:
    from reference_agents.imapd.cmd_notify import NotifyState


class HandlerContext(Protocol):
    config: ProviderConfig
    store: MailStore
    conn: Connection
    reader: CommandReader
    state: State
    #: The logged-in user (None before authentication).
    user: str | None
    selected: SelectedMailbox | None
    #: ENABLE IMAP4rev2 (RFC 9051 §6.3.1), a CONDSTORE enabling command (RFC 7162 §3.1) and
    #: ENABLE QRESYNC (RFC 7162 §3.2.3) were given in this session.
    rev2: bool
    condstore: bool
    qresync: bool
    #: ENABLE UTF8=ACCEPT (RFC 6855 §3) was given in this session.
    utf8: bool
    #: NOTIFY SET (RFC 5465 §3.1) in force, or None (never given, or NOTIFY NONE).
    notify: NotifyState | None
    auth_failures: int
    auth_failure_delay: float
    autologout: float
    #: Quirk imap_size_changes and imap_idle_slow: their per-session state.
    size_flip: int
    idle_next_look: float

    def advance(self, transition: Transition) -> None: ...

    def capabilities(self) -> list[str]: ...

    def login_disabled(self) -> bool: ...

    def write(self, data: bytes) -> None: ...

    async def flush(self) -> None: ...

    def untagged(self, keyword: str, text: str = "", code: str | None = None) -> None: ...

    async def wait_wakeup(self, seconds: float) -> bool: ...

    async def read_line(self) -> bytes | None: ...

    def enable_condstore(self) -> None: ...

    def notify_push(self) -> None: ...

    def sync_selected(self, *, allow_expunge: bool, force: bool = False,
                      announce_upto: int | None = None, report_flags: bool = True) -> None: ...

    def take_recent(self, name: str, read_only: bool, upto: int) -> int: ...
