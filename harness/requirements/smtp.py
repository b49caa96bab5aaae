"""Requirements of SMTP in depth (RFC 5321, 6409, 4954, 4616, 3207, 8314, 1870, 2920, 6152, 3463, 2034, 6531): suites/smtp and suites/security."""

from __future__ import annotations

from harness.requirements import Level, Requirement

M, S, Y = Level.MUST, Level.SHOULD, Level.MAY

SMTP: tuple[Requirement, ...] = (
    # --- session and commands (RFC 5321) ----------------------------------------------------
    Requirement("SMTP-EHLO-SYNTAX", 5321, "4.3.2", M,
                "EHLO or HELO without a domain argument is refused with 501.", 1),
    Requirement("SMTP-HELO", 5321, "4.5.1", M,
                "HELO is supported: it is answered 250 and a mail transaction may follow.", 1),
    Requirement("SMTP-EHLO-RESET", 5321, "4.1.4", M,
                "EHLO in the middle of a transaction clears it exactly as RSET would.", 1),
    Requirement("SMTP-COMMAND-ORDER", 5321, "4.1.4", M,
                "Commands out of order (RCPT before MAIL, a nested MAIL, DATA before a "
                "recipient was accepted) are refused with 503 (554 allowed for DATA).", 1),
    Requirement("SMTP-REPLY-CODES", 5321, "4.3.2", M,
                "Each command is answered only with a reply code RFC 5321 lists for it "
                "(plus 500, 501, 421 for any command).", 1),
    Requirement("SMTP-PARAM-SYNTAX", 5321, "4.3.2", M,
                "MAIL and RCPT with malformed arguments are refused with 501 "
                "(555 for unrecognised MAIL/RCPT parameters).", 1),
    Requirement("SMTP-NO-PARAMETERS", 5321, "4.1.1", S,
                "RSET, DATA and QUIT with an argument are refused as invalid syntax (501), "
                "not carried out.", 1),
    Requirement("SMTP-RSET", 5321, "4.1.1.5", M,
                "RSET is answered 250 and discards the stored sender, recipients and data.", 1),
    Requirement("SMTP-NOOP", 5321, "4.1.1.9", M,
                "NOOP (with or without an argument) is answered 250 and changes nothing.", 1),
    Requirement("SMTP-VRFY-NO-FALSE-250", 5321, "3.5.3", M,
                "VRFY is never answered 250 for an address the server has not verified "
                "(a non-existent local user).", 6),
    Requirement("SMTP-UNKNOWN-COMMAND", 5321, "4.2.4", S,
                "An unrecognised command is refused with 500 (or 502), never accepted.", 1),
    Requirement("SMTP-QUIT", 5321, "4.1.1.10", M,
                "QUIT is answered 221 and the server then closes the connection.", 1),
    Requirement("SMTP-CLOSE-421", 5321, "3.8", M,
                "The server closes a connection on its own only after replying 421.", 1),
    Requirement("SMTP-NULL-SENDER", 1123, "5.2.9", M,
                "MAIL FROM:<> (the null reverse-path of notifications) is accepted.", 6),
    Requirement("SMTP-POSTMASTER", 5321, "4.5.1", M,
                "RCPT TO:<postmaster> (no domain) and postmaster at each local domain are "
                "accepted.", 6),
    Requirement("SMTP-LINE-COMMAND", 5321, "4.5.3.1.10", S,
                "A command line longer than 512 octets is either refused with 500 (line too "
                "long) or processed as one command; the session goes on.", 1),
    Requirement("SMTP-LINE-TEXT", 5321, "4.5.3.1.6", S,
                "A message with a text line longer than 1000 octets is refused (5yz) or "
                "delivered with the line intact — never cut or folded silently.", 1),
    Requirement("SMTP-RCPT-MIN-100", 5321, "4.5.3.1.8", M,
                "At least 100 recipients are accepted in one transaction.", 6),
    Requirement("SMTP-RCPT-LIMIT-452", 5321, "4.5.3.1.10", M,
                "Recipients over the server's limit are refused with 452, not 5yz.", 6),
    Requirement("SMTP-ERROR-LIMIT", 5321, "7.8", Y,
                "A client that keeps sending erroneous commands is cut off (421 and close) "
                "after a bounded number of errors.", 1),
    Requirement("SMTP-HOSTILE-SESSION", 5321, "7.8", S,
                "One hostile session (an endless line trickled slowly) does not stop the "
                "server from serving other sessions.", 6),
    Requirement("SMTP-BARE-LF-END", 5321, "4.1.1.4", M,
                "Only <CRLF>.<CRLF> ends mail data: variants with a bare LF or bare CR "
                "neither end DATA nor start a second transaction (SMTP smuggling).", 6),
    Requirement("RELAY-ADDRESS-FORMS", 5321, "3.6.2", S,
                "No relaying for unauthenticated clients through addresses that hide a "
                "foreign domain: percent hack, source route, quoted local part, bang path, "
                "trailing dot, IP literal.", 6),
    # --- AUTH (RFC 4954, 4616) --------------------------------------------------------------
    Requirement("AUTH-PLAIN", 4616, "2", M,
                "AUTH PLAIN with valid credentials succeeds (235), with the initial response "
                "on the AUTH line or after an empty 334 challenge.", 2),
    Requirement("AUTH-LOGIN", 4954, "3", M,
                "Where AUTH LOGIN is advertised (offering it is optional), valid credentials "
                "succeed (235): the AUTH keyword lists the available mechanisms.", 2),
    Requirement("AUTH-CANCEL", 4954, "4", M,
                "A client response of \"*\" cancels the exchange and is answered 501.", 2),
    Requirement("AUTH-BAD-BASE64", 4954, "4", M,
                "A client response that is not valid base64 is refused with 501.", 2),
    Requirement("AUTH-UNKNOWN-MECHANISM", 4954, "4", M,
                "AUTH with a mechanism the server does not support is refused with 504.", 2),
    Requirement("AUTH-ONCE", 4954, "4", M,
                "After a successful AUTH, a further AUTH is refused with 503.", 2),
    Requirement("AUTH-IN-TRANSACTION", 4954, "4", M,
                "AUTH during a mail transaction is refused with 503.", 2),
    Requirement("AUTH-FAILURE-THROTTLE", 4954, "14", Y,
                "Repeated authentication failures are slowed down or cut off (421, close).", 2),
    Requirement("AUTH-NO-EARLY-DROP", 4954, "14", S,
                "A server that drops connections after failed AUTH does not drop before "
                "3 attempts have failed.", 2),
    # --- STARTTLS (RFC 3207) and implicit TLS (RFC 8314) -------------------------------------
    Requirement("STARTTLS-SYNTAX", 3207, "4", S,
                "STARTTLS with an argument is refused with 501 (no parameters allowed).", 1),
    Requirement("STARTTLS-RESET", 3207, "4.2", M,
                "After the TLS handshake the server forgets the pre-TLS EHLO: MAIL before a "
                "new EHLO is refused with 503.", 1),
    Requirement("STARTTLS-DISCARD-BUFFER", 3207, "4.2", M,
                "Commands pipelined after STARTTLS in clear text are discarded, never "
                "executed after TLS starts (command injection).", 1),
    Requirement("STARTTLS-NOT-REOFFERED", 3207, "4.2", M,
                "EHLO over TLS does not advertise STARTTLS.", 1),
    Requirement("STARTTLS-ONCE", 3207, "4.2", S,
                "STARTTLS inside an active TLS session is refused (4yz/5yz), never 220.", 1),
    Requirement("STARTTLS-NOT-REQUIRED-MX", 3207, "4", M,
                "A publicly-referenced MX does not require STARTTLS for local delivery.", 6),
    # --- SIZE (RFC 1870) ---------------------------------------------------------------------
    Requirement("SIZE-MAIL-552", 1870, "6.1", M,
                "MAIL with SIZE= above the advertised fixed maximum is refused with 552.", 1),
    Requirement("SIZE-DATA-552", 1870, "6", S,
                "A message larger than the advertised fixed maximum is refused with 552 after "
                "the data, and the session goes on.", 6),
    # --- PIPELINING (RFC 2920) ---------------------------------------------------------------
    Requirement("PIPELINING-ORDER", 2920, "3.2", M,
                "With PIPELINING, a group MAIL/RCPT/RCPT/DATA sent in one write gets one reply "
                "per command, in order.", 6),
    # --- 8BITMIME (RFC 6152) -----------------------------------------------------------------
    Requirement("8BITMIME-PARAM", 6152, "3", M,
                "Where 8BITMIME is advertised, MAIL with BODY=8BITMIME or BODY=7BIT is "
                "accepted.", 1),
    Requirement("8BITMIME-PRESERVE", 6152, "3", M,
                "An 8-bit body submitted with BODY=8BITMIME is delivered with its octets "
                "intact.", 7),
    # --- SMTPUTF8 (RFC 6531) -----------------------------------------------------------------
    Requirement("SMTPUTF8-ADDRESS", 6531, "3.4", M,
                "Where SMTPUTF8 is advertised, MAIL FROM with a UTF-8 address and the "
                "SMTPUTF8 parameter is accepted.", 6),
    Requirement("SMTPUTF8-NO-DOWNGRADE", 6531, "3.2", M,
                "A relaying MTA never sends a UTF-8 address (or the SMTPUTF8 parameter) to a "
                "next hop that does not offer SMTPUTF8 (it bounces or holds the message).", 5),
    # --- ENHANCEDSTATUSCODES (RFC 2034, 3463) ------------------------------------------------
    Requirement("ENHANCED-CODES", 2034, "3", M,
                "Where ENHANCEDSTATUSCODES is advertised, every 2yz/4yz/5yz reply other than "
                "the greeting and EHLO/HELO carries an enhanced code whose class matches "
                "the reply code.", 6),
    # --- written down, not checkable from outside ----------------------------------------------
    Requirement("SMTP-RETAIN-QUEUE", 5321, "4.5.4.1", S,
                "Undeliverable mail is retried for at least 4-5 days before it is bounced.", 5,
                testable=False,
                untestable_reason="needs days of wall-clock time (the flow suite checks that "
                                  "a 4yz is retried, not how long)"),
    Requirement("SMTP-SERVER-TIMEOUT", 5321, "4.5.3.2.7", S,
                "The server waits at least 5 minutes for the next command.", 1,
                testable=False,
                untestable_reason="a 5-minute idle wait per target is out of the suite's run "
                                  "time budget"),
    Requirement("SMTP-DATA-TIMEOUT", 5321, "4.5.3.2.6", S,
                "The client waits at least 10 minutes for the reply to the end of data; "
                "servers should answer well within it.", 1,
                testable=False,
                untestable_reason="a client-side timer; a server cannot be observed keeping it"),
    Requirement("SMTP-RELAY-NO-HEADER-CHECKS", 5321, "4.5.3.1.8", M,
                "A relaying server does not validate header fields (e.g. count recipients "
                "shown in them).", 5,
                testable=False,
                untestable_reason="what a relay forwards downstream is policy that varies; "
                                  "no refusal is observable for a well-formed message"),
    Requirement("AUTH-SECURITY-LAYER", 4954, "4", M,
                "After a SASL security layer is negotiated, both sides discard knowledge "
                "obtained before it.", 2,
                testable=False,
                untestable_reason="targets offer PLAIN/LOGIN only; neither negotiates a "
                                  "security layer"),
    Requirement("IMPLICIT-TLS-CERT-CHECK", 8314, "4.1", M,
                "The client verifies the server certificate on implicit TLS.", 1,
                testable=False,
                untestable_reason="a client obligation: nothing a server does shows it"),
)
