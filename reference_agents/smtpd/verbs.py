"""The SMTP verbs of a session (RFC 5321 §4.1.1, RFC 3207, RFC 4954, RFC 1870, RFC 6152,
RFC 6531), each checking its arguments and its place in the command order before the policy
(handlers.py) decides."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from harness.protocol.smtp import codes as R
from harness.protocol.smtp import format_reply
from harness.protocol.smtp.server import (
    ArgumentError,
    DataCollector,
    mail_parameters,
    parse_mailbox_argument,
    parse_path_argument,
    unclosed_path,
)
from reference_agents.serverlog import SMTP_LOG, describe, tls_text
from reference_agents.smtpd.handlers import AUTH_MECHANISMS, fold_long_lines

if TYPE_CHECKING:
    from reference_agents.smtpd.session import Session

#: What a lenient server takes for the end of data (quirks *_accept_bare_lf_end_of_data).
_BARE_LF_END_RE = re.compile(rb"(?<!\r)\n\.\r?\n")
_SIZE_PARAM_RE = re.compile(r"(?i)\s+SIZE=\d+")


async def ehlo(s: Session, arg: str | None) -> None:
    if s.listener.offer_auth and s.quirk("msa_ehlo_refused"):
        # Breaks RFC 5321 §4.1.1.1 (EHLO is answered 250 and the extensions the server
        # supports): this MSA does support extensions, yet refuses EHLO.
        await s.reply(R.R502_EHLO)
        return
    if not arg and s.quirk("msa_ehlo_no_domain_accepted"):
        # Breaks RFC 5321 §4.1.1.1 (ehlo = "EHLO" SP ( Domain / address-literal ) CRLF):
        # a missing argument is a syntax error, 501.
        arg = "unnamed"
    if not arg:
        await s.reply(R.H501_EHLO_DOMAIN, hello=True)
        return
    kept = (s.mail_from, s.mail_options, s.rcpt_tos, s.rcpt_options, s.smtp_utf8)
    # RFC 5321 §4.1.4: after EHLO "the SMTP server MUST clear all buffers and reset the state
    # exactly as if a RSET command had been issued."
    s.reset_transaction()
    if s.quirk("msa_ehlo_keeps_transaction"):
        # Breaks RFC 5321 §4.1.4 (above): the transaction survives the EHLO.
        s.mail_from, s.mail_options, s.rcpt_tos, s.rcpt_options, s.smtp_utf8 = kept
    s.extended = True
    s.host_name = arg
    keywords = [s.config.hostname]
    if s.size_limit:
        keywords.append(f"SIZE {s.size_limit}")  # RFC 1870
    keywords.append("8BITMIME")  # RFC 6152
    if s.utf8:
        keywords.append("SMTPUTF8")  # RFC 6531
    if s.listener.starttls is not None and not s.starttls_done:
        keywords.append("STARTTLS")  # RFC 3207
    if not s.listener.auth_require_tls or s.starttls_done:
        keywords.append("AUTH " + " ".join(AUTH_MECHANISMS))  # RFC 4954
    keywords.append("HELP")
    raw = format_reply(250, s.handler.handle_EHLO(s, keywords))
    if s.quirk("msa_ehlo_bad_continuation"):
        # Breaks RFC 5321 §4.2.1: "The format for multiline replies requires that every line,
        # except the last, begin with the reply code, followed immediately by a hyphen".
        first, _, rest = raw.partition(b"\r\n")
        raw = first + b"\r\n250 " + rest[4:]
    await s.connection.write(raw)
    await s.after_reply(250)


async def helo(s: Session, arg: str | None) -> None:
    if s.quirk("msa_helo_unsupported"):
        # Breaks RFC 5321 §4.5.1: HELO is among the commands that "MUST be supported".
        await s.reply(R.R502_HELO)
        return
    if not arg:
        await s.reply(R.H501_HELO_DOMAIN, hello=True)
        return
    s.reset_transaction()
    s.extended = False
    s.host_name = arg
    await s.reply(R.with_text(R.H250_HELLO, s.config.hostname), hello=True)


async def noop(s: Session, arg: str | None) -> None:
    if arg and s.quirk("msa_noop_with_argument_refused"):
        # Breaks RFC 5321 §4.1.1.9: "If a parameter string is specified, servers SHOULD
        # ignore it"; NOOP specifies no action other than a "250 OK" reply.
        await s.reply(R.R501_NOOP_ARGUMENT)
        return
    await s.reply(R.R250_OK)


async def quit_(s: Session, arg: str | None) -> None:
    if arg and s.quirk("msa_rset_data_quit_argument_accepted"):
        arg = None  # breaks RFC 5321 §4.1.1 (see rset)
    if not arg and s.quirk("msa_quit_keeps_connection"):
        # Breaks RFC 5321 §4.1.1.10: "the receiver MUST send a "221 OK" reply, and then
        # close the transmission channel."
        await s.reply(R.R221_BYE)
        return
    if arg:
        await s.reply(R.R501_QUIT_ARGUMENT)
        return
    s.close_after_reply()
    s.end_reason = "QUIT"
    await s.reply(R.R221_BYE)


async def rset(s: Session, arg: str | None) -> None:
    if not arg and s.quirk("msa_rset_keeps_transaction"):
        # Breaks RFC 5321 §4.1.1.5: "any stored sender, recipients, and mail data MUST be
        # discarded".
        await s.reply(R.R250_OK)
        return
    if arg and s.quirk("msa_rset_data_quit_argument_accepted"):
        # Breaks RFC 5321 §4.1.1: servers "SHOULD reject commands containing them [RSET,
        # DATA, QUIT with parameters] as having invalid syntax"; this one drops the argument.
        arg = None
    if arg:
        await s.reply(R.R501_RSET_ARGUMENT)
        return
    s.reset_transaction()
    await s.reply(R.R250_OK)


async def starttls(s: Session, arg: str | None) -> None:
    if s.allows("mx_no_starttls"):
        # Allowance: STARTTLS is an extension (RFC 3207 §2), so this MX neither lists it in
        # EHLO nor implements it. RFC 5321 §4.2.4: "502 SHOULD be used when the command is
        # actually recognized by the SMTP server, but not implemented" (RFC 3207's 454 is
        # for a "temporary reason").
        await s.reply(R.R502_STARTTLS)
        return
    if s.tls_active:
        # RFC 3207 §4.2: "A client MUST NOT attempt to start a TLS session if a TLS session
        # is already active."
        if s.quirk("msa_starttls_twice"):
            # Breaks RFC 3207 §4.2: a second TLS session inside the first is accepted.
            await s.reply(R.R220_TLS_READY)
            return
        await s.reply(R.R503_TLS_ACTIVE)
        return
    if arg and s.quirk("msa_starttls_with_argument"):
        # Breaks RFC 3207 §4: "501 Syntax error (no parameters allowed)".
        arg = None
    if arg:
        await s.reply(R.R501_STARTTLS_ARGUMENT)
        return
    context = s.listener.starttls
    if context is None:
        await s.reply(R.R454_TLS_NOT_AVAILABLE)
        return
    await s.reply(R.R220_TLS_READY)
    # RFC 3207 §4.2: "The server MUST discard any knowledge obtained from the client, such as
    # the argument to the EHLO command, which was not obtained from the TLS negotiation
    # itself."  Commands pipelined in clear text after STARTTLS are dropped with it.
    pending = s.parser.discard()
    host_name, extended = s.host_name, s.extended
    if not await s.connection.start_tls(context):
        error = s.connection.tls_error
        s.end_reason = "TLS handshake failed" + (f": {describe(error)}" if error else "")
        return
    if SMTP_LOG.isEnabledFor(20):
        transport = s.connection.transport
        SMTP_LOG.info("%s STARTTLS: %s", s.log_name,
                  tls_text(transport.get_extra_info("ssl_object") if transport else None))
    s.starttls_done = True
    s.reset_transaction()
    s.host_name, s.extended, s.account = None, False, None
    if pending and s.quirk("msa_keep_plaintext_after_starttls"):
        # Breaks RFC 3207 §4.2: clear-text commands sent after STARTTLS run inside TLS.
        s.parser.unread(pending)
    if s.quirk("msa_keep_ehlo_after_starttls"):
        # Breaks RFC 3207 §4.2: the pre-TLS EHLO argument is kept.
        s.host_name, s.extended = host_name, extended


async def auth(s: Session, arg: str | None) -> None:
    if not s.listener.offer_auth:
        await s.reply(R.R502_AUTH_NOT_AVAILABLE)
        return
    args = arg.split() if arg else []
    # SASL mechanism names are matched without regard to case.
    mechanism = args[0].upper() if args else ""
    if (mechanism and mechanism not in AUTH_MECHANISMS and s.extended
            and s.quirk("msa_auth_unknown_mechanism_535")):
        # Breaks RFC 4954 §4: "If the requested authentication mechanism is not supported,
        # the server rejects the AUTH command with a 504 reply."
        await s.reply(R.R535_AUTH_INVALID)
        return
    if s.account is not None and (
        s.quirk("msa_auth_twice") or (not s.in_sequence("AUTH") and s.quirk("msa_auth_in_transaction"))
    ):
        # Breaks RFC 4954 §4: "After a successful AUTH command completes, a server MUST
        # reject any further AUTH commands with a 503 reply."
        s.account = None
    if s.helo_needed():
        await s.reply(R.R503_HELLO_FIRST)
    elif not s.extended:
        await s.reply(R.R500_AUTH_NEEDS_EHLO)  # AUTH is an EHLO extension (RFC 4954 §3)
    elif s.listener.auth_require_tls and not s.starttls_done:
        # RFC 4954 §4 and RFC 8314 §3: no plaintext AUTH mechanisms without TLS (538, §6).
        await s.reply(R.R538_ENCRYPTION_REQUIRED)
    elif s.account is not None:
        await s.reply(R.R503_ALREADY_AUTHENTICATED)
    elif not args or len(args) > 2:
        await s.reply(R.R501_AUTH_ARGUMENTS)
    elif mechanism not in AUTH_MECHANISMS:
        await s.reply(R.R504_AUTH_MECHANISM)
    else:
        reply = await s.handler.handle_AUTH(s, mechanism, args[1] if len(args) > 1 else None)
        if reply is not None:
            await s.reply(reply)


async def mail(s: Session, arg: str | None) -> None:
    if not arg and s.quirk("msa_mail_without_argument_accepted"):
        # Breaks RFC 5321 §4.1.1.2 (mail = "MAIL FROM:" Reverse-path ...): 501 is due.
        arg = "FROM:<>"
    if arg and s.quirk("msa_size_param_ignored"):
        # Breaks RFC 1870 §6.1: a SIZE above the fixed maximum must get 552.
        arg = _SIZE_PARAM_RE.sub("", arg)
    if arg and unclosed_path(arg, "FROM:"):
        await s.reply(R.R501_BAD_PATH)
        return
    if s.mail_from is not None and s.quirk("msa_nested_mail_accepted"):
        # Breaks RFC 5321 §4.1.4: "a 503 failure reply MUST be returned" to a command out
        # of sequence; this restarts the transaction instead.
        s.reset_transaction()
    if s.helo_needed():
        await s.reply(R.R503_HELLO_FIRST)
        return
    try:
        path = parse_path_argument(arg, "FROM:", R.R501_MAIL_ARGUMENTS)
    except ArgumentError as error:
        await s.reply(error.reply)
        return
    if not s.extended and path.options:
        await s.reply(R.R501_MAIL_ARGUMENTS)  # parameters are ESMTP (RFC 5321 §4.1.1.2)
        return
    if not s.in_sequence("MAIL"):
        await s.reply(R.R503_NESTED_MAIL)
        return
    params = mail_parameters(path.options)
    # RFC 6152 §2: BODY=7BIT or BODY=8BITMIME.
    if params.pop("BODY", "7BIT") not in ("7BIT", "8BITMIME"):
        await s.reply(R.R501_BODY_VALUE)
        return
    if "SMTPUTF8" in params:
        # RFC 6531 §3.4: the SMTPUTF8 parameter has no value.
        if params.pop("SMTPUTF8") is not None:
            await s.reply(R.R501_SMTPUTF8_VALUE)
            return
        if not s.utf8:
            await s.reply(R.R501_SMTPUTF8_DISABLED)
            return
        s.smtp_utf8 = True
    else:
        s.smtp_utf8 = False
    if "SIZE" in params:
        size = params.pop("SIZE")
        if size is None or not size.isdigit():
            await s.reply(R.R501_MAIL_ARGUMENTS)
            return
        if s.size_limit and int(size) > s.size_limit:
            # RFC 1870 §6.1: a SIZE above the fixed maximum gets 552.
            await s.reply(R.R552_TOO_BIG)
            return
    if params:
        await s.reply(R.R555_MAIL_PARAMETERS)
        return
    await s.reply(await s.handler.handle_MAIL(s, path.address, path.options))


async def rcpt(s: Session, arg: str | None) -> None:
    if s.mail_from is None and s.host_name and s.quirk("msa_rcpt_before_mail_accepted"):
        # Breaks RFC 5321 §4.1.4: RCPT before MAIL is out of sequence (503).
        await s.reply(R.R250_RECIPIENT_OK)
        return
    if arg and unclosed_path(arg, "TO:"):
        await s.reply(R.R501_BAD_PATH)
        return
    if s.helo_needed():
        await s.reply(R.R503_HELLO_FIRST)
        return
    if not s.in_sequence("RCPT"):
        await s.reply(R.R503_NEED_MAIL)
        return
    try:
        path = parse_path_argument(arg, "TO:", R.R501_RCPT_ARGUMENTS)
    except ArgumentError as error:
        await s.reply(error.reply)
        return
    if not s.extended and path.options:
        await s.reply(R.R501_RCPT_ARGUMENTS)
        return
    if path.options:
        await s.reply(R.R555_RCPT_PARAMETERS)  # no RCPT parameters are offered (no DSN)
        return
    await s.reply(await s.handler.handle_RCPT(s, path.address, path.options))


async def vrfy(s: Session, arg: str | None) -> None:
    if arg and s.quirk("mta_vrfy_syntax_only"):
        # Breaks RFC 5321 §3.5.3: "a server MUST NOT return 250 if all it has done is to
        # verify that the syntax given is valid."
        await s.reply(R.with_text(R.R250_RECIPIENT_OK, f"<{arg.strip('<>')}>"))
        return
    if s.allows("smtp_vrfy_252"):
        # Allowance: RFC 5321 §3.5.3: where an address "cannot reasonably be verified in real
        # time ... reply code 252 SHOULD be returned"; §7.3 lets a server not verify at all.
        # This one answers every VRFY so, with or without an argument.
        await s.reply(R.R252_CANNOT_VRFY)
        return
    if not arg:
        await s.reply(R.R501_VRFY_ARGUMENT)
        return
    try:
        parse_mailbox_argument(arg)
    except ArgumentError:
        await s.reply(R.R502_VRFY_ADDRESS)
        return
    await s.reply(R.R252_CANNOT_VRFY)


async def help_(s: Session, arg: str | None) -> None:
    if s.quirk("msa_help_wrong_code"):
        # Breaks RFC 5321 §4.3.2: HELP is answered "S: 211, 214", never 250.
        unknown = arg is not None and arg.upper() not in VERBS
        await s.reply(R.R501_HELP_UNKNOWN if unknown else R.R250_SUPPORTED_COMMANDS)
        return
    # RFC 5321 §4.3.2: HELP "S: 211, 214  E: 502, 504". The allowances answer with the
    # other codes listed there: 211 (system status), or 502 where HELP is not implemented.
    if s.allows("smtp_help_502"):
        await s.reply(R.R502_HELP)
    elif s.allows("smtp_help_211"):
        await s.reply(R.R211_HELP)
    else:
        await s.reply(R.R214_HELP)


async def expn(s: Session, arg: str | None) -> None:
    await s.reply(R.R502_EXPN)  # RFC 5321 §3.5.2: EXPN is optional (§7.3)


async def data(s: Session, arg: str | None) -> None:
    if s.helo_needed():
        await s.reply(R.R503_HELLO_FIRST)
        return
    if not s.in_sequence("DATA"):
        await s.reply(R.R503_NEED_RCPT)
        return
    if arg and not s.quirk("msa_rset_data_quit_argument_accepted"):  # see rset
        # RFC 5321 §4.1.1: servers "SHOULD reject commands containing them as having invalid
        # syntax" (RSET, DATA and QUIT take no parameters).
        await s.reply(R.R501_DATA_ARGUMENT)
        return
    await s.reply(R.R354_START_DATA)
    size_limit = None if s.quirk("mta_size_not_enforced") else s.size_limit
    collector = DataCollector(size_limit)
    smuggle = s.quirk("msa_accept_bare_lf_end_of_data") or s.quirk("mta_accept_bare_lf_end_of_data")
    while True:
        piece = await s.next_input(s.parser.next_data_piece)
        if piece is None:
            # The client went away before CRLF.CRLF: nothing was accepted, nothing is queued.
            s.reset_transaction()
            s.connection.close()
            return
        if smuggle and (m := _BARE_LF_END_RE.search(piece)) is not None:
            # Breaks RFC 5321 §4.1.1.4: "the sequence "<LF>.<LF>" (bare line feeds, without
            # carriage returns) MUST NOT be treated as equivalent to <CRLF>.<CRLF> as the end
            # of mail data indication."  What follows is read as commands: a smuggled
            # transaction.
            s.parser.unread(piece[m.end():])
            collector.feed(piece[: m.start()] + b"\r\n")
            collector.feed(b".\r\n")
            break
        if collector.feed(piece):
            break
    if collector.overflow or collector.message is None:
        reply = R.R552_TOO_BIG
    elif collector.line_too_long and not s.quirk("msa_fold_long_lines"):
        reply = R.R500_LINE_TOO_LONG
    elif collector.bare_line_ending:
        reply = R.R554_BARE_LINE_ENDING
    else:
        content = collector.message
        if collector.line_too_long:
            # Quirk msa_fold_long_lines: takes the long line, then silently breaks it up,
            # changing the message it accepted (RFC 5321 §4.5.3.1.6 / SMTP-LINE-TEXT).
            content = fold_long_lines(content)
        try:
            reply = await s.handler.handle_DATA(s, content)
        except Exception as error:
            reply = s.handler.handle_exception(error)
    s.reset_transaction()
    await s.reply(reply)


#: The verbs this server knows, by upper-cased name.
VERBS: Mapping[str, Callable[[Session, str | None], Awaitable[None]]] = MappingProxyType({
    "EHLO": ehlo, "HELO": helo, "NOOP": noop, "QUIT": quit_, "RSET": rset, "STARTTLS": starttls,
    "AUTH": auth, "MAIL": mail, "RCPT": rcpt, "VRFY": vrfy, "HELP": help_, "EXPN": expn,
    "DATA": data,
})
