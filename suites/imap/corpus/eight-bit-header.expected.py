"""Raw UTF-8 octets in header fields (RFC 6532) and an 8bit body."""

EXPECTED = {
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        # The octets are sent as they are (RFC 9051 §7.5.2: headers "MAY be in UTF-8"); the
        # strings here are those octets read as UTF-8.
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
