"""No MIME header fields at all, and no Message-ID."""

EXPECTED = {
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        "no MIME header fields",
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "rcpt", "example.net"),),
        None,
        None,
        None,
        # RFC 9051 §7.5.2: "If the Date, Subject, In-Reply-To, and Message-ID header fields
        # are absent in the [RFC5322] header, the corresponding member of the envelope is NIL".
        None,
    ),
    # RFC 2045 §5.2: "default to plain US-ASCII text"; 21 octets in 2 lines, both ended.
    "bodystructure": (
        "TEXT", "PLAIN", {None, ("CHARSET", "US-ASCII")}, None, None, "7BIT", 21, 2,
        None, None, None, None,
    ),
    "size": 141,
    "sections": {
        "BODY[1]": b"Two lines\r\nof text.\r\n",
        "BODY[1]<4.10>": b"lines\r\nof ",
        # RFC 9051 §6.4.5: "If the starting octet is beyond the end of the text, an empty
        # string is returned."
        "BODY[1]<100.10>": b"",
        # "Any partial fetch that attempts to read beyond the end of the text is truncated".
        "BODY[1]<11.100>": b"of text.\r\n",
    },
}
