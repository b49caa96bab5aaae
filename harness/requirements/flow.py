"""Requirements checked by suites/flow: one or more per step of the email flow."""

from __future__ import annotations

from harness.requirements import Level, Requirement

M, S, Y = Level.MUST, Level.SHOULD, Level.MAY

FLOW: tuple[Requirement, ...] = (
    # 1 submit
    Requirement("SMTP-GREETING-220", 5321, "4.3.1", M,
                "A server accepting a connection greets with a 220 reply.", 1),
    Requirement("SMTP-REPLY-SYNTAX", 5321, "4.2", M,
                "Replies are three digits; every line of a multiline reply but the last "
                "has a hyphen after the code, and all lines carry the same code.", 1),
    Requirement("SMTP-EHLO-250", 5321, "4.1.1.1", M,
                "EHLO is answered 250, followed by the supported service extensions.", 1),
    Requirement("SUBMIT-STARTTLS", 3207, "4", M,
                "A submission server offering STARTTLS answers it 220 and negotiates TLS; "
                "the client must then EHLO again.", 1),
    Requirement("SUBMIT-IMPLICIT-TLS", 8314, "3.3", M,
                "On the submissions port TLS starts immediately on connection.", 1),
    # 2 authenticate
    Requirement("AUTH-REQUIRED", 6409, "4.3", M,
                "The MSA requires authentication: MAIL before AUTH is refused "
                "(530 5.7.0).", 2),
    Requirement("AUTH-BAD-CREDENTIALS", 4954, "6", M,
                "AUTH with wrong credentials fails with 535 5.7.8.", 2),
    Requirement("AUTH-NO-PLAINTEXT", 4954, "4", M,
                "Plaintext mechanisms (PLAIN, LOGIN) are not permitted before TLS "
                "(538 5.7.11 or not offered).", 2),
    Requirement("SUBMIT-SENDER-RIGHTS", 6409, "6.1", S,
                "The MSA checks that the authenticated user may use the MAIL FROM address.", 2),
    # 3 hand-off
    Requirement("HANDOFF-RESPONSIBILITY", 5321, "6.1", M,
                "After 250 to DATA the server has accepted responsibility: the message is "
                "delivered, not lost.", 3),
    Requirement("SUBMIT-ADD-DATE", 6409, "8.2", S,
                "The MSA adds a Date header field when the submitted message lacks one "
                "(RFC 5322 §3.6 requires it).", 3),
    Requirement("SUBMIT-ADD-MESSAGE-ID", 6409, "8.3", S,
                "The MSA adds a Message-ID header field when the submitted message lacks one.", 3),
    # 4 resolve
    Requirement("MX-PREFERENCE", 5321, "5.1", M,
                "The sender MTA tries MX hosts in order of preference, lowest first, and "
                "falls back to the next when one cannot be reached.", 4),
    Requirement("MX-IMPLICIT", 5321, "5.1", M,
                "When a domain has no MX records, its A record is treated as an implicit MX "
                "with preference 0.", 4),
    # 5 transfer
    Requirement("TRANSFER-RETRY", 5321, "4.5.4.1", M,
                "Mail that cannot be transmitted because of a temporary (4yz) failure is "
                "queued and retried later.", 5),
    Requirement("TRANSFER-BOUNCE", 5321, "6.1", M,
                "When relayed mail is refused permanently (5yz), the MTA sends an "
                "undeliverable-mail notification to the originator.", 5),
    Requirement("BOUNCE-NULL-SENDER", 5321, "4.5.5", M,
                "A delivery status notification is sent with a null reverse-path (MAIL FROM:<>).", 5),
    # 6 route
    Requirement("ROUTE-LOCAL-DELIVERY", 5321, "3.6", M,
                "The receiver MTA accepts mail for its local users on port 25.", 6),
    Requirement("ROUTE-NO-OPEN-RELAY", 5321, "3.6.2", S,
                "Mail for domains the server is not responsible for is refused from "
                "unauthenticated clients (no open relay).", 6),
    Requirement("ROUTE-UNKNOWN-USER", 5321, "3.3", M,
                "RCPT for an address of a local domain that is not deliverable is refused "
                "(550, or another 5yz); a server that accepts it (a catch-all) delivers the "
                "message or returns a notification, never drops it.", 6),
    Requirement("TRACE-RECEIVED", 5321, "4.4", M,
                "An SMTP server that receives a message inserts a Received trace header "
                "at the beginning of the message content.", 6),
    # 7 filter and deliver
    Requirement("DELIVER-INTACT", 5321, "4.5.2", M,
                "The message arrives byte-identical apart from prepended trace fields: "
                "lines starting with '.' are dot-stuffed in transfer (transparency), "
                "8-bit text and long lines are kept.", 7),
    Requirement("DELIVER-ONCE", 5321, "6.1", S,
                "Under load, a message accepted for a recipient arrives in that recipient's "
                "mailbox once: not twice, not in another mailbox, and not at all when DATA was "
                "refused (the 250 is where the server accepts responsibility for delivering "
                "it; checked by mailharness load).", 7),
    Requirement("FILTER-SPAM-VERDICT", 5598, "4.3.2", Y,
                "The MDA's spam filter files the GTUBE test message into Junk with "
                "X-Spam-Status: Yes, and a clean message into INBOX.", 7),
    # 8 log in
    Requirement("IMAP-STARTTLS", 9051, "6.2.1", M,
                "STARTTLS is answered OK and TLS negotiated; capabilities are re-announced.", 8),
    Requirement("IMAP-LOGINDISABLED", 9051, "6.2.3", M,
                "A server that advertises LOGINDISABLED refuses LOGIN; clear-text LOGIN "
                "is not accepted before TLS.", 8),
    Requirement("IMAP-LOGIN", 9051, "6.2.3", M,
                "LOGIN with valid credentials is answered OK and enters the authenticated state.", 8),
    Requirement("IMAP-LOGIN-BAD", 9051, "6.2.3", M,
                "LOGIN with wrong credentials is answered NO.", 8),
    # 9 read and manage
    Requirement("IMAP-SELECT", 9051, "6.3.2", M,
                "SELECT reports EXISTS, FLAGS, UIDVALIDITY and a UIDNEXT greater than every "
                "UID in the mailbox.", 9),
    Requirement("IMAP-FETCH-BODY", 9051, "6.4.5", M,
                "FETCH BODY[] returns the message exactly; RFC822.SIZE is its size in octets.", 9),
    Requirement("IMAP-PEEK", 9051, "6.4.5", M,
                "BODY.PEEK[] does not set \\Seen; BODY[] does.", 9),
    Requirement("IMAP-STORE", 9051, "6.4.6", M,
                "STORE +FLAGS adds flags and reports the new flag list in an untagged FETCH.", 9),
    Requirement("IMAP-EXPUNGE", 9051, "6.4.3", M,
                "EXPUNGE removes every \\Deleted message and reports each with an untagged "
                "EXPUNGE; the other messages keep their UIDs.", 9),
    Requirement("IMAP-IDLE", 2177, "3", M,
                "During IDLE the server reports a new message with an untagged EXISTS; "
                "DONE ends IDLE with a tagged OK.", 9),
)
