"""Folded header fields (RFC 5322 §2.2.3), a field name in capitals, repeated and empty fields."""

EXPECTED = {
    "envelope": (
        # RFC 5322 §2.2.3: "Unfolding is accomplished by simply removing any CRLF that is
        # immediately followed by WSP."  The WSP stays: "Mon,<CRLF> 7 Feb" -> "Mon, 7 Feb".
        "Mon, 7 Feb 1994 21:52:25 -0800",
        # The field is named "SUBJECT": RFC 5322 §1.2.2 "header field names are
        # case-insensitive".  The TAB that began the third line stays (only CRLF is removed).
        "This is a folded\tsubject",
        (("Fred Foobar", None, "foobar", "example.org"),),
        # RFC 9051 §7.5.2: "If the Sender or Reply-To header fields are absent ... the server
        # sets the corresponding member of the envelope to be the same value as the from
        # member".
        (("Fred Foobar", None, "foobar", "example.org"),),
        (("Fred Foobar", None, "foobar", "example.org"),),
        ((None, None, "one", "example.net"), (None, None, "two", "example.net")),
        None,
        None,
        "<parent@example.org>",
        # Folded before its only word: unfolded and stripped of the leading FWS.
        "<folded-headers@example.org>",
    ),
    "bodystructure": (
        # RFC 2045 §5.2: "This default is assumed if no Content-Type header field is
        # specified ... Content-type: text/plain; charset=us-ascii".  Reporting the default
        # CHARSET is not required ("defaulting various fields as necessary", RFC 9051 §7.5.2),
        # so NIL is accepted as well.
        "TEXT", "PLAIN", {None, ("CHARSET", "US-ASCII")}, None, None,
        # RFC 2045 §6.1: "Content-Transfer-Encoding: 7BIT" is assumed if the
        # Content-Transfer-Encoding header field is not present."
        "7BIT", 12, 1,
        None, None, None, None,
    ),
    "size": 428,
    "sections": {
        "BODY[TEXT]": b"Body line.\r\n",
        "BODY[1]": b"Body line.\r\n",
        # RFC 9051 §6.4.5.1: "The field-matching is ASCII-range case insensitive"; a name
        # listed three times still selects the one field once, as it is in the message:
        # folded, with its CRLFs.  "Subsetting does not exclude the [RFC5322] delimiting
        # blank line between the header and the body".
        "BODY[HEADER.FIELDS (Subject SUBJECT subject)]":
            b"SUBJECT: This is\r\n a folded\r\n\tsubject\r\n\r\n",
        # Every field whose name matches, in message order.
        "BODY[HEADER.FIELDS (received)]":
            b"Received: from a.example.org by b.example.net;\r\n Mon, 7 Feb 1994 21:52:20 -0800\r\n"
            b"Received: from c.example.org by a.example.org;\r\n\tMon, 7 Feb 1994 21:52:10 -0800\r\n"
            b"\r\n",
        "BODY[HEADER.FIELDS (X-Empty)]": b"X-Empty:\r\n\r\n",
        # No field matches: what is left is the blank line.
        "BODY[HEADER.FIELDS (X-Absent)]": b"\r\n",
        "BODY[HEADER.FIELDS.NOT (Received DATE x-empty RECEIVED)]":
            b"From: Fred Foobar\r\n <foobar@example.org>\r\n"
            b"To: one@example.net,\r\n\ttwo@example.net\r\n"
            b"SUBJECT: This is\r\n a folded\r\n\tsubject\r\n"
            b"Message-ID:\r\n <folded-headers@example.org>\r\n"
            b"In-Reply-To: <parent@example.org>\r\n"
            b"\r\n",
        # RFC 9051 §6.4.5: "A substring fetch of a HEADER.FIELDS or HEADER.FIELDS.NOT part
        # specifier is calculated after subsetting the header."
        "BODY[HEADER.FIELDS (subject)]<0.9>": b"SUBJECT: ",
        "BODY[HEADER.FIELDS (subject)]<15.7>": b"s\r\n a f",
    },
}
