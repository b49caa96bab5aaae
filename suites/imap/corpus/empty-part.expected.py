"""Empty body parts: one with no header at all, one with a header and no body."""

# RFC 2046 §5.1.1: encapsulation := delimiter transport-padding CRLF body-part, with
# delimiter := CRLF dash-boundary and body-part := MIME-part-headers [CRLF *OCTET].
# "--b1" CRLF CRLF "--b1": the second CRLF belongs to the next delimiter, so part 1 is empty
# (no header, no body).  Part 2 has a header, its blank line, and an empty body.  RFC 2045
# §5.2: a part without Content-Type is text/plain; charset=us-ascii.

EXPECTED = {
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        "empty parts",
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "rcpt", "example.net"),),
        None,
        None,
        None,
        "<empty-part@example.org>",
    ),
    "bodystructure": (
        ("TEXT", "PLAIN", {None, ("CHARSET", "US-ASCII")}, None, None, "7BIT", 0, 0,
         None, None, None, None),
        ("TEXT", "PLAIN", ("CHARSET", "US-ASCII"), None, None, "7BIT", 0, 0,
         None, None, None, None),
        ("TEXT", "PLAIN", ("CHARSET", "US-ASCII"), None, None, "7BIT", 9, {1, 0},
         None, None, None, None),
        "MIXED",
        ("BOUNDARY", "b1"), None, None, None,
    ),
    "size": 344,
    "sections": {
        "BODY[1]": b"",
        "BODY[2]": b"",
        "BODY[3]": b"not empty",
        "BODY[2.MIME]": b"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
        # A part with no header and no blank line: RFC 9051 §7.5.2 includes the blank line
        # "except in the case of a message that has no body and no blank line"; whether the
        # rule reaches a MIME header is not said, so the empty string and a lone CRLF are
        # both accepted.
        "BODY[1.MIME]": {b"", b"\r\n"},
    },
}
