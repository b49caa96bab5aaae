"""COMPRESS (RFC 4978), a command of the authenticated and selected states: DEFLATE both ways."""

from __future__ import annotations

from harness.protocol.imap.commands import Command, Compress
from harness.protocol.imap.deflate import DEFLATE
from harness.protocol.imap.formatting import format_tagged
from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.state import Handler, Result


async def compress(s: HandlerContext, cmd: Command) -> Result | None:
    assert isinstance(cmd.args, Compress)
    if cmd.args.algorithm != DEFLATE:
        if s.config.has_quirk("imap_compress_unknown_no"):
            return Result("NO", "unknown compression algorithm")  # quirk: NO, not BAD
        # RFC 4978 §3: "BAD Command unknown, invalid or unknown argument, or COMPRESS already
        # active"; "If the server issues a BAD or NO response, the server MUST NOT turn on
        # compression."
        return Result("BAD", f"unknown compression algorithm {cmd.args.algorithm[:40]}")
    if s.conn.compressed:
        if s.config.has_quirk("imap_compress_active_no_code"):
            return Result("NO", "DEFLATE active")  # quirk: NO without [COMPRESSIONACTIVE]
        # RFC 4978 §3: "If the server responds NO because it knows that the same mechanism is
        # active already ..., it MUST send COMPRESSIONACTIVE as resp-text-code ... and the
        # resp-text SHOULD say which layer compresses."
        return Result("NO", "DEFLATE active via COMPRESS", "COMPRESSIONACTIVE")
    s.write(format_tagged(cmd.tag, "OK", "DEFLATE active"))
    # RFC 4978 §3: "If the server issues an OK response, the server MUST compress starting
    # immediately after the CRLF which ends the tagged OK response."  The client "MUST NOT send
    # any further commands until it has seen the result of COMPRESS", so what the reader holds
    # after the command is no command: it is dropped.
    s.reader.discard_pending()
    # quirk imap_compress_zlib_header: a zlib stream (RFC 1950 header and checksum), not raw
    # DEFLATE (RFC 4978 §4: "The windowBits value must be in the range -8 to -15, or else
    # deflateInit2() uses the wrong format")
    s.conn.start_compression(window=15 if s.config.has_quirk("imap_compress_zlib_header") else -15)
    return None


COMMANDS: dict[str, Handler] = {"COMPRESS": compress}
