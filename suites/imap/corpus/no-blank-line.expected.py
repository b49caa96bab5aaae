"""A header with no blank line after it and no body."""

EXPECTED = {
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        "no body",
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "rcpt", "example.net"),),
        None,
        None,
        None,
        "<no-blank-line@example.org>",
    ),
    # RFC 5322 §3.5: message = fields *( CRLF body ): the body and its CRLF are optional.  The
    # body is empty: zero octets, zero lines.
    "bodystructure": (
        "TEXT", "PLAIN", {None, ("CHARSET", "US-ASCII")}, None, None, "7BIT", 0, 0,
        None, None, None, None,
    ),
    "size": 145,
    "sections": {
        # RFC 9051 §7.5.2: "the blank line is always included as part of the header data,
        # except in the case of a message that has no body and no blank line."
        "BODY[HEADER]":
            b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nFrom: foobar@example.org\r\n"
            b"To: rcpt@example.net\r\nSubject: no body\r\n"
            b"Message-ID: <no-blank-line@example.org>\r\n",
        "BODY[HEADER.FIELDS (SUBJECT)]": b"Subject: no body\r\n",
        "BODY[TEXT]": b"",
        # RFC 9051 §6.4.5.1: "Every message has at least one part number."
        "BODY[1]": b"",
    },
}
