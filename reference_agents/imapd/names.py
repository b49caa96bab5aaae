"""How a session reads the mailbox names of a command: modified UTF-7 for an IMAP4rev1
client (RFC 3501 §5.1.3), UTF-8 as sent after ENABLE IMAP4rev2 (RFC 9051 §5.1); a name that
is not valid modified UTF-7 gets NO."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from harness.protocol.imap.command_parser import resolve_names
from harness.protocol.imap.command_values import CommandArgs, WireName
from harness.protocol.imap.commands import Command
from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.state import Result

#: Commands that would make a mailbox of that name: CANNOT; the others look one up: NONEXISTENT.
_MAKING = frozenset({"CREATE", "RENAME"})


def resolve(s: HandlerContext, cmd: Command) -> Command | Result:
    """*cmd* with its names as this session reads them, or the Result that refuses it."""
    # quirk imap_mutf7_rev2_decodes: an IMAP4rev2 client's "&" still starts modified UTF-7
    utf8 = s.rev2 and not s.config.has_quirk("imap_mutf7_rev2_decodes")
    args = cmd.args
    if s.config.has_quirk("imap_mutf7_ampersand_literal") and args is not None:
        # quirk: "&-" is kept as the two characters instead of meaning "&"
        literal = {f.name: WireName(v.wire, v.wire, valid=True, pattern=v.pattern)
                   for f in dataclasses.fields(args)
                   if isinstance(v := getattr(args, f.name), WireName) and "&-" in v.wire}
        args = cast(CommandArgs, dataclasses.replace(cast(Any, args), **literal))
    resolved = resolve_names(args, utf8=utf8)
    if not isinstance(resolved, str):
        return dataclasses.replace(cmd, args=resolved)
    if s.config.has_quirk("imap_mutf7_invalid_bad"):
        return Result("BAD", "bad mailbox name")  # quirk: the grammar refuses the command
    # RFC 3501 §5.1.3: "Server implementations SHOULD verify that any mailbox name with an
    # embedded "&" character, used as an argument to CREATE, is: in the correctly modified
    # UTF-7 syntax"; the name is a well-formed astring (RFC 9051 §9: mailbox = "INBOX" /
    # astring), so this is an operational error, NO (§7.1.2), not a protocol-level one (§7.1.3).
    code = "CANNOT" if cmd.name in _MAKING else "NONEXISTENT"
    return Result("NO", "mailbox name is not valid modified UTF-7", code)
