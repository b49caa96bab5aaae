"""A message/rfc822 part holding a multipart/alternative message."""

EXPECTED = {
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        "forwarded",
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "rcpt", "example.net"),),
        None,
        None,
        None,
        "<outer@example.org>",
    ),
    "bodystructure": (
        # "Content-Type: text/plain" without charset: RFC 2046 §4.1.2 "The default character
        # set, which must be assumed in the absence of a charset parameter, is US-ASCII";
        # reporting it is not required.
        ("TEXT", "PLAIN", {None, ("CHARSET", "US-ASCII")}, None, None, "7BIT", 25, {1, 0},
         None, None, None, None),
        # RFC 9051 §7.5.2: "A body type of type MESSAGE and subtype RFC822 contains,
        # immediately after the basic fields, the envelope structure, body structure, and
        # size in text lines of the encapsulated message."  The encapsulated message is 365
        # octets (up to the CRLF that belongs to "--b1--") in 17 lines, each ended by CRLF.
        ("MESSAGE", "RFC822", None, None, "the original", "7BIT", 365,
         ("Sun, 6 Feb 1994 10:00:00 +0100",
          "the inner message",
          (("Inner Sender", None, "inner", "example.com"),),
          (("Inner Sender", None, "inner", "example.com"),),
          (("Inner Sender", None, "inner", "example.com"),),
          ((None, None, "foobar", "example.org"),),
          None,
          None,
          None,
          "<inner@example.com>"),
         (("TEXT", "PLAIN", ("CHARSET", "US-ASCII"), None, None, "7BIT", 10, {1, 0},
           None, None, None, None),
          ("TEXT", "ENRICHED", {None, ("CHARSET", "US-ASCII")}, None, None, "7BIT", 18, {1, 0},
           None, None, None, None),
          "ALTERNATIVE",
          ("BOUNDARY", "b2"), None, None, None),
         17,
         None, None, None, None),
        "MIXED",
        ("BOUNDARY", "b1"), None, None, None,
    ),
    "size": 715,
    "sections": {
        "BODY[1]": b"See the attached message.",
        "BODY[2.MIME]": b"Content-Type: message/rfc822\r\nContent-Description: the original\r\n\r\n",
        # RFC 9051 §6.4.5.1: "The HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, and TEXT part
        # specifiers can be ... prefixed by one or more numeric part specifiers, provided
        # that the numeric part specifier refers to a part of type MESSAGE/RFC822"; "A part
        # of type MESSAGE/RFC822 ... also has nested part numbers, referring to parts of the
        # MESSAGE part's body."
        "BODY[2.HEADER]":
            b"Date: Sun, 6 Feb 1994 10:00:00 +0100\r\nFrom: Inner Sender <inner@example.com>\r\n"
            b"To: foobar@example.org\r\nSubject: the inner message\r\n"
            b"Message-ID: <inner@example.com>\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/alternative; boundary="b2"\r\n\r\n',
        "BODY[2.TEXT]":
            b"--b2\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\ninner text\r\n"
            b"--b2\r\nContent-Type: text/enriched\r\n\r\n<bold>inner</bold>\r\n--b2--\r\n",
        "BODY[2.1]": b"inner text",
        "BODY[2.2]": b"<bold>inner</bold>",
        "BODY[2.1.MIME]": b"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
        "BODY[2.HEADER.FIELDS (subject FROM)]":
            b"From: Inner Sender <inner@example.com>\r\nSubject: the inner message\r\n\r\n",
        "BODY[2.HEADER.FIELDS.NOT (Date From To Subject Message-ID)]":
            b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b2"\r\n\r\n',
        "BODY[2.TEXT]<6.12>": b"Content-Type",
        # BODY[2] is the whole encapsulated message, header and body.
        "BODY[2]<0.38>": b"Date: Sun, 6 Feb 1994 10:00:00 +0100\r\n",
    },
}
