"""A multipart whose closing delimiter ("--b1--") is missing."""

# RFC 2046 §5.1.1 requires the close-delimiter and says nothing of a message without one.
# Each part is still delimited by its own "--b1" line; the last one runs to the end of the
# message.  Whether the final CRLF belongs to it (no delimiter follows to claim it) is not
# said, so both "two" CRLF and "two" are accepted, with their sizes and line counts.

EXPECTED = {
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        "missing closing boundary",
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "rcpt", "example.net"),),
        None,
        None,
        None,
        "<missing-close@example.org>",
    ),
    "bodystructure": (
        ("TEXT", "PLAIN", {None, ("CHARSET", "US-ASCII")}, None, None, "7BIT", 3, {1, 0},
         None, None, None, None),
        ("TEXT", "PLAIN", {None, ("CHARSET", "US-ASCII")}, None, None, "7BIT", {5, 3}, {1, 0},
         None, None, None, None),
        "MIXED",
        ("BOUNDARY", "b1"), None, None, None,
    ),
    "size": 305,
    "sections": {
        "BODY[1]": b"one",
        "BODY[2]": {b"two\r\n", b"two"},
    },
}
