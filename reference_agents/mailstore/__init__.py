"""Users' mailboxes and messages: the `MailStore` protocol and its two backends, Maildir with a
SQLite index (`maildir`, `index`) and in memory (`memory`); values and name rules in `base`,
errors (with their IMAP response codes) in `errors`."""

from __future__ import annotations

from reference_agents.mailstore.base import (
    DELIMITER,
    INBOX,
    JUNK,
    MAX_NAME_LENGTH,
    MAX_UID,
    SYSTEM_FLAGS,
    Listener,
    MailboxInfo,
    MailStore,
    MessageInfo,
    normalize_flags,
    normalize_mailbox_name,
)
from reference_agents.mailstore.errors import (
    InvalidMailboxName,
    MailboxExists,
    MailStoreError,
    NoSuchMailbox,
    NoSuchMessage,
    StorageError,
    StoreLocked,
)
from reference_agents.mailstore.files import encode_path_component
from reference_agents.mailstore.maildir import MaildirStore
from reference_agents.mailstore.memory import MemoryStore

__all__ = [
    "DELIMITER", "INBOX", "JUNK", "MAX_NAME_LENGTH", "MAX_UID", "SYSTEM_FLAGS",
    "InvalidMailboxName", "Listener", "MailStore", "MailStoreError", "MailboxExists",
    "MailboxInfo", "MaildirStore", "MemoryStore", "MessageInfo", "NoSuchMailbox",
    "NoSuchMessage", "StorageError", "StoreLocked", "encode_path_component", "normalize_flags",
    "normalize_mailbox_name",
]
