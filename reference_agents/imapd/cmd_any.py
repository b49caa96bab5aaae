"""IMAP commands valid in any state (RFC 9051 §6.1): CAPABILITY, NOOP, LOGOUT, ID."""

from __future__ import annotations

from harness.protocol.imap.commands import Command
from harness.protocol.imap.formatting import format_capability, quote
from harness.protocol.imap.state import Transition
from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.state import Handler, Result


async def capability(s: HandlerContext, cmd: Command) -> Result:
    # RFC 9051 §6.1.1: "The server MUST send a single untagged CAPABILITY response"
    caps = s.capabilities()
    s.write(format_capability(caps))
    if s.config.has_quirk("imap_capability_twice"):  # quirk: a second CAPABILITY response
        s.write(format_capability(caps))
    return Result("OK", "CAPABILITY completed")


async def noop(s: HandlerContext, cmd: Command) -> Result:
    # RFC 9051 §6.1.2: NOOP "can be used as a periodic poll for new messages or message status
    # updates" — the dispatcher reports them before the tagged OK.
    return Result("OK", "NOOP completed")


async def logout(s: HandlerContext, cmd: Command) -> Result | None:
    # RFC 9051 §6.1.3: "The server MUST send a BYE untagged response before the (tagged) OK
    # response, and then close the network connection."
    if not s.config.has_quirk("imap_logout_no_bye"):  # quirk: no BYE
        s.untagged("BYE", "logging out")
    s.write(b"%s OK LOGOUT completed\r\n" % cmd.tag.encode("ascii"))
    s.advance(Transition.LOGOUT)
    return None


async def id_(s: HandlerContext, cmd: Command) -> Result:
    # RFC 2971 §3.1: "A server MUST send a tagged ID response to an ID command." (an untagged
    # ID response, then the tagged OK)
    if not s.config.has_quirk("imap_id_no_response"):  # quirk: no untagged ID
        s.write(b"* ID (" + quote("name") + b" " + quote("mailharness-imapd") + b")\r\n")
    return Result("OK", "ID completed")


COMMANDS: dict[str, Handler] = {
    "CAPABILITY": capability,
    "NOOP": noop,
    "LOGOUT": logout,
    "ID": id_,
}
