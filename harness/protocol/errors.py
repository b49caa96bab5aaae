"""Protocol errors shared by every sans-IO core: who broke the rules, and the offending bytes."""

from __future__ import annotations


class ProtocolError(Exception):
    """A protocol rule was broken. ``data`` holds the offending bytes, when there are any.

    ``wire_hint`` is what the side that caught the error should send in answer, when the core
    knows it: the exact bytes of a server's reply (an SMTP ``501 5.5.4 ...`` line), as h11's
    ``error_status_hint`` gives the HTTP status for a malformed request. None: no answer is
    implied (a client that receives a malformed reply just reports it)."""

    def __init__(self, message: str, data: bytes = b"", *, wire_hint: bytes | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data
        self.wire_hint = wire_hint

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, {self.data!r})"


class LocalProtocolError(ProtocolError):
    """We (the caller of this core) tried to do something the protocol forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids: a finding, with its bytes. ``protocol``
    names the grammar it broke ("smtp", "imap"), so a check can name the right requirement."""

    protocol: str = ""


class SMTPSyntaxError(RemoteProtocolError):
    """A server reply that breaks the SMTP reply grammar (RFC 5321 §4.2)."""

    protocol = "smtp"


class IMAPSyntaxError(RemoteProtocolError):
    """A server response that breaks the IMAP response grammar (RFC 9051 §9, RFC 3501 §9)."""

    protocol = "imap"


def as_finding(exc: RemoteProtocolError, where: str = "") -> AssertionError:
    """A malformed message from the server as a test failure whose first line names the bytes."""
    shown = exc.data if len(exc.data) <= 400 else exc.data[:400] + b"..."
    place = f" ({where})" if where else ""
    return AssertionError(f"malformed response from the server{place}: {exc.message}: {shown!r}")
