"""Raw UTF-8 octets in header fields (RFC 6532) and an 8bit body."""

# RFC 9051 Appendix E: "Mailbox names and message headers now allow for UTF-8."  A server
# that offers IMAP4rev1 too "MUST NOT generate UTF-8-quoted strings unless the client has
# issued "ENABLE IMAP4rev2"" (Appendix D), and for a client that has not, RFC 6855 §7 lets it
# hide the message or give a surrogate of it: nothing is asserted of an IMAP4rev1 session.
# The session enables IMAP4rev2 first (the test is skipped where the server lacks it).

EXPECTED = {
    "enable": "IMAP4rev2",
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        # The header's octets as they are; the strings here are those octets read as UTF-8.
        "Grüße aus Köln",
        (("Jörg Müller", None, "joerg", "example.org"),),
        (("Jörg Müller", None, "joerg", "example.org"),),
        (("Jörg Müller", None, "joerg", "example.org"),),
        ((None, None, "rcpt", "example.net"),),
        None,
        None,
        None,
        "<eight-bit-header@example.org>",
    ),
    "bodystructure": (
        # RFC 2045 §5.1: "The type, subtype, and parameter names are not case sensitive";
        # RFC 2046 §4.1.2: charset values are not case sensitive either.
        "TEXT", "PLAIN", ("CHARSET", "UTF-8"), None, None, "8BIT", 10, 1,
        None, None, None, None,
    ),
    "size": 278,
    "sections": {
        "BODY[HEADER.FIELDS (subject)]": b"Subject: Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n\r\n",
        "BODY[1]": b"Gr\xc3\xbc\xc3\x9fe.\r\n",
    },
}
