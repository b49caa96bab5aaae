"""The catalogue of replies an SMTP server sends: each a ``Reply`` with its code, enhanced status
code (RFC 3463) and text, named with the number in the name (``R550_NO_SUCH_USER``).

RFC 2034 §3: "the text part of all 2xx, 4xx, and 5xx SMTP responses other than the initial
greeting and any response to HELO or EHLO are prefaced with a status code"; those two are the
entries without one. A catalogue entry is exactly what a client parses from its wire bytes
(``reply.raw``)."""

from __future__ import annotations

from harness.protocol.smtp.replies import EnhancedStatus, Reply, format_reply, parse_replies


def server_reply(code: int, enhanced: str | None, *lines: str) -> Reply:
    """The reply *code* with *lines*, each prefaced by *enhanced* (RFC 2034 §3) when given."""
    status = EnhancedStatus.parse(enhanced) if enhanced is not None else None
    if enhanced is not None and status is None:
        raise ValueError(f"not an enhanced status code: {enhanced!r}")
    [reply] = parse_replies(format_reply(code, list(lines), status))
    return reply


def with_text(reply: Reply, *lines: str) -> Reply:
    """*reply*'s code and enhanced status code with other text (a host name, a queue id)."""
    return server_reply(reply.code, None if reply.enhanced is None else str(reply.enhanced), *lines)


# --- the greeting and the replies to EHLO and HELO: no enhanced status code (RFC 2034 §3) ------
#: Their texts carry the host name: use with_text().
H220_GREETING = server_reply(220, None, "ready")
H250_HELLO = server_reply(250, None, "hello")
H501_EHLO_DOMAIN = server_reply(501, None, "EHLO needs a domain or address literal")
H501_HELO_DOMAIN = server_reply(501, None, "HELO needs a domain")

# --- 2yz ------------------------------------------------------------------------------------
R220_TLS_READY = server_reply(220, "2.0.0", "Ready to start TLS")
R221_BYE = server_reply(221, "2.0.0", "Bye")
R235_AUTH_OK = server_reply(235, "2.7.0", "Authentication successful")
R250_OK = server_reply(250, "2.0.0", "OK")
#: With the queue id: with_text(R250_QUEUED, f"Ok: queued as {queue_id}").
R250_QUEUED = server_reply(250, "2.0.0", "Ok: queued")
R250_SENDER_OK = server_reply(250, "2.1.0", "Sender OK")
R250_RECIPIENT_OK = server_reply(250, "2.1.5", "Recipient OK")
R250_SUPPORTED_COMMANDS = server_reply(
    250, "2.0.0", "Supported commands: AUTH DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET STARTTLS VRFY"
)
R214_HELP = server_reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT STARTTLS AUTH")
R211_HELP = server_reply(211, "2.0.0", "mailharness: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT")
R252_CANNOT_VRFY = server_reply(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery")

# --- 3yz ------------------------------------------------------------------------------------
R354_START_DATA = server_reply(354, None, "End data with <CR><LF>.<CR><LF>")

# --- 4yz ------------------------------------------------------------------------------------
R421_SHUTTING_DOWN = server_reply(421, "4.3.2", "Service shutting down")
R421_AUTH_FAILURES = server_reply(421, "4.7.0", "Too many authentication failures, closing")
R421_TOO_MANY_ERRORS = server_reply(421, "4.7.0", "Too many errors, closing")
R421_TOO_MANY_CONNECTIONS = server_reply(421, "4.7.0", "Too many connections, try again later")
R451_LOCAL_ERROR = server_reply(451, "4.3.0", "Local error in processing; try again later")
R451_TEMPORARY_LOCAL_PROBLEM = server_reply(451, "4.3.0", "Temporary local problem, try again later")
R452_TOO_MANY_RECIPIENTS = server_reply(452, "4.5.3", "Too many recipients")
R454_TLS_NOT_AVAILABLE = server_reply(454, "4.7.0", "TLS not available")
# RFC 4954 §6: "454 4.7.0 Temporary authentication failure  This response to the AUTH command
# indicates that the authentication failed due to a temporary server failure."
R454_TEMP_AUTH_FAILURE = server_reply(454, "4.7.0", "Temporary authentication failure, try again later")

# --- 5yz ------------------------------------------------------------------------------------
R500_COMMAND_TOO_LONG = server_reply(500, "5.5.2", "Command line too long")
R500_LINE_TOO_LONG = server_reply(500, "5.5.2", "Line too long")
R500_AUTH_LINE_TOO_LONG = server_reply(500, "5.5.6", "Authentication Exchange line is too long")
R500_UNPARSABLE = server_reply(500, "5.5.2", "Command line not understood")
R500_NOT_ASCII = server_reply(500, "5.5.2", "Non-ASCII octets in a command")
R500_UNKNOWN_COMMAND = server_reply(500, "5.5.2", "Command not recognized")
R500_AUTH_NEEDS_EHLO = server_reply(500, "5.5.2", "AUTH is an extension: start with EHLO")
R501_MAIL_ARGUMENTS = server_reply(501, "5.5.4", "Expected MAIL FROM:<reverse-path> [parameters]")
R501_RCPT_ARGUMENTS = server_reply(501, "5.5.4", "Expected RCPT TO:<forward-path> [parameters]")
R501_BAD_PATH = server_reply(501, "5.5.4", "Path must be enclosed in <>")
R501_BAD_RECIPIENT = server_reply(501, "5.1.3", "Bad recipient address syntax")
R501_BODY_VALUE = server_reply(501, "5.5.4", "BODY must be 7BIT or 8BITMIME")
R501_SMTPUTF8_VALUE = server_reply(501, "5.5.4", "SMTPUTF8 takes no value")
R501_SMTPUTF8_DISABLED = server_reply(501, "5.5.4", "SMTPUTF8 not available")
R501_DATA_ARGUMENT = server_reply(501, "5.5.4", "DATA takes no parameters")
R501_RSET_ARGUMENT = server_reply(501, "5.5.4", "RSET takes no parameters")
R501_QUIT_ARGUMENT = server_reply(501, "5.5.4", "QUIT takes no parameters")
R501_STARTTLS_ARGUMENT = server_reply(501, "5.5.4", "STARTTLS takes no parameters")
R501_NOOP_ARGUMENT = server_reply(501, "5.5.4", "NOOP takes no parameters here")
R501_VRFY_ARGUMENT = server_reply(501, "5.5.4", "VRFY needs a user or mailbox")
R501_HELP_UNKNOWN = server_reply(501, "5.5.4", "No help for that")
R501_AUTH_ARGUMENTS = server_reply(501, "5.5.4", "Expected AUTH mechanism [initial-response]")
R501_BAD_AUTH_RESPONSE = server_reply(501, "5.5.2", "Cannot decode the authentication response")
R501_AUTH_CANCELLED = server_reply(501, "5.7.0", "Authentication cancelled")
R502_EHLO = server_reply(502, "5.5.1", "EHLO not implemented")
R502_HELO = server_reply(502, "5.5.1", "HELO not implemented")
R502_HELP = server_reply(502, "5.5.1", "HELP not implemented")
R502_EXPN = server_reply(502, "5.5.1", "EXPN not implemented")
R502_STARTTLS = server_reply(502, "5.5.1", "STARTTLS not implemented")
R502_AUTH_NOT_AVAILABLE = server_reply(502, "5.5.1", "AUTH not available on this port")
R502_VRFY_ADDRESS = server_reply(502, "5.5.1", "Cannot VRFY that address")
R503_HELLO_FIRST = server_reply(503, "5.5.1", "Send EHLO or HELO first")
R503_NESTED_MAIL = server_reply(503, "5.5.1", "A mail transaction is already open")
R503_NEED_MAIL = server_reply(503, "5.5.1", "Need MAIL before RCPT")
R503_NEED_RCPT = server_reply(503, "5.5.1", "Need RCPT before DATA")
R503_ALREADY_AUTHENTICATED = server_reply(503, "5.5.1", "Already authenticated")
R503_AUTH_IN_TRANSACTION = server_reply(503, "5.5.1", "AUTH not permitted during a mail transaction")
R503_REFUSED = server_reply(503, "5.5.1", "Bad sequence of commands: service refused, send QUIT")
R503_TLS_ACTIVE = server_reply(503, "5.5.1", "TLS already active")
R504_AUTH_MECHANISM = server_reply(504, "5.5.4", "Unrecognized authentication mechanism")
R530_AUTH_REQUIRED = server_reply(530, "5.7.0", "Authentication required")
R530_STARTTLS_FIRST = server_reply(530, "5.7.0", "Must issue a STARTTLS command first")
R535_AUTH_INVALID = server_reply(535, "5.7.8", "Authentication credentials invalid")
R538_ENCRYPTION_REQUIRED = server_reply(538, "5.7.11", "Encryption required for the authentication mechanism")
R550_NO_SUCH_USER = server_reply(550, "5.1.1", "No such user here")
R550_RELAY_DENIED = server_reply(550, "5.7.1", "Relay access denied")
R550_SENDER_NOT_OWNED = server_reply(550, "5.7.1", "Sender address not owned by the authenticated user")
R550_NULL_SENDER = server_reply(550, "5.7.1", "Null sender not accepted")
R550_TOO_MANY_RECIPIENTS = server_reply(550, "5.5.3", "Too many recipients")
R552_TOO_BIG = server_reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
R553_MALFORMED_ADDRESS = server_reply(553, "5.1.3", "Malformed address")
R554_BARE_LINE_ENDING = server_reply(554, "5.6.0", "Message contains a bare CR or LF (RFC 5321 section 2.3.8)")
R555_BODY = server_reply(555, "5.5.4", "BODY parameter not accepted")
R555_MAIL_PARAMETERS = server_reply(555, "5.5.4", "MAIL FROM parameters not recognized or not implemented")
R555_RCPT_PARAMETERS = server_reply(555, "5.5.4", "RCPT TO parameters not recognized or not implemented")

#: Replies that count as client errors toward a session's error limit (RFC 5321 §7.8).
CLIENT_ERROR_CODES = frozenset({500, 501, 502, 503, 504, 555})
