"""The reference IMAP server (RFC 9051, RFC 3501, RFC 2177): `IMAPServer`."""

from reference_agents.imapd.server import IMAPServer

__all__ = ["IMAPServer"]
