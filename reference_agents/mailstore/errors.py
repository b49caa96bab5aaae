"""The mail store's errors. Each carries its IMAP response code (RFC 5530) and the text the
IMAP server answers with, so the server's dispatcher maps them to a tagged NO in one place."""

from __future__ import annotations

from typing import ClassVar


class MailStoreError(Exception):
    """Something the store refused or could not do; nothing was changed."""

    #: The RFC 5530 response code of the NO that reports it.
    response_code: ClassVar[str] = "SERVERBUG"
    #: The text of that NO, when the error carries no reason of its own.
    response_text: ClassVar[str] = "mail store error"

    def reason(self) -> str:
        """The human-readable text of the NO."""
        return self.response_text


class NoSuchMailbox(MailStoreError, KeyError):
    """The mailbox does not exist."""

    response_code = "NONEXISTENT"
    response_text = "no such mailbox"


class MailboxExists(MailStoreError, ValueError):
    """CREATE of a name that refers to an extant mailbox."""

    response_code = "ALREADYEXISTS"
    response_text = "mailbox already exists"


class NoSuchMessage(MailStoreError, KeyError):
    """No message with that UID in the mailbox (another session expunged it)."""

    response_code = "EXPUNGEISSUED"
    response_text = "message was expunged"


class InvalidMailboxName(MailStoreError, ValueError):
    """The name is not acceptable (syntax, length) or the operation is refused for it
    (deleting INBOX). The exception's message is the reason."""

    response_code = "CANNOT"
    response_text = "invalid mailbox name"

    def reason(self) -> str:
        return str(self) or self.response_text


class StorageError(MailStoreError, OSError):
    """The backing storage failed (I/O or index error); nothing was changed."""

    response_code = "UNAVAILABLE"
    response_text = "storage failure"


class StoreLocked(MailStoreError, RuntimeError):
    """Another MaildirStore (in this or another process) already has this root open."""

    response_code = "INUSE"
    response_text = "mail store in use"
