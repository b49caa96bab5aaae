"""A multipart whose boundary parameter is folded inside its quoted string."""

# Content-Type: multipart/mixed; boundary="foo<CRLF> bar".  RFC 5322 §2.2.3: "Unfolding is
# accomplished by simply removing any CRLF that is immediately followed by WSP"; the space
# stays.  RFC 2045 §5.1: value := token / quoted-string, and RFC 5322 §3.2.4 makes the CRLF of
# FWS inside a quoted-string "semantically invisible": the boundary is "foo bar", which RFC
# 2046 §5.1.1 allows (bcharsnospace / " ", not last).  The parts are delimited by
# "--foo bar".  RFC 2046 §5.1.1: "The CRLF preceding the boundary delimiter line is
# conceptually attached to the boundary", so a part's body ends before it.
#
# Line counts: RFC 9051 §7.5.2 gives "the size of the body in text lines" and says no more of
# a last line whose CRLF belongs to the boundary; counting it (1 for "first part") and
# counting line ends (0) are both accepted.

EXPECTED = {
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        "folded boundary",
        (("Fred Foobar", None, "foobar", "example.org"),),
        (("Fred Foobar", None, "foobar", "example.org"),),
        (("Fred Foobar", None, "foobar", "example.org"),),
        ((None, None, "mooch", "example.net"),),
        None,
        None,
        None,
        "<folded-boundary@example.org>",
    ),
    "bodystructure": (
        ("TEXT", "PLAIN", ("CHARSET", "US-ASCII"), None, None, "7BIT", 10, {1, 0},
         None, None, None, None),
        ("TEXT", "PLAIN", ("CHARSET", "US-ASCII"), None, None, "7BIT", 21, {2, 1},
         None, None, None, None),
        "MIXED",
        # Extension data of a multipart: body parameter list, disposition, language, location.
        ("BOUNDARY", "foo bar"), None, None, None,
    ),
    "size": 426,
    "sections": {
        "BODY[1]": b"first part",
        "BODY[2]": b"second part\r\nline two",
        "BODY[1.MIME]": b"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
        "BODY[2]<7.10>": b"part\r\nline",
        # The preamble and the epilogue belong to the text of the message.
        "BODY[TEXT]":
            b"preamble\r\n--foo bar\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            b"first part\r\n--foo bar\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            b"second part\r\nline two\r\n--foo bar--\r\nepilogue\r\n",
        "BODY[HEADER.FIELDS (content-type)]":
            b'Content-Type: multipart/mixed; boundary="foo\r\n bar"\r\n\r\n',
    },
}
