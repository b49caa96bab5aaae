"""A multipart/alternative inside a multipart/mixed; names and encodings in odd cases."""

# RFC 2045 §5.1: "The type, subtype, and parameter names are not case sensitive"; §6.1 the
# Content-Transfer-Encoding values "are not case sensitive".  The expected values are in
# capitals and compared without case; parameter values keep their case (a boundary is
# case-sensitive: RFC 2046 §5.1.1 compares it octet by octet).

EXPECTED = {
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        "nested",
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "rcpt", "example.net"),),
        None,
        None,
        None,
        "<nested@example.org>",
    ),
    "bodystructure": (
        (
            ("TEXT", "PLAIN", ("CHARSET", "UTF-8"), None, None, "7BIT", 5, {1, 0},
             None, None, None, None),
            ("TEXT", "HTML", ("CHARSET", "UTF-8"), None, None, "7BIT", 11, {1, 0},
             None, None, None, None),
            "ALTERNATIVE",
            ("BOUNDARY", "inner"), None, None, None,
        ),
        # RFC 9051 §7.5.2: "body id: A string giving the Content-ID header field value"; a
        # non-text part has no line count.
        ("APPLICATION", "OCTET-STREAM", None, "<blob@example.org>", None, "BASE64", 8,
         None, None, None, None),
        "MIXED",
        ("BOUNDARY", "outer"), None, None, None,
    ),
    "size": 614,
    "sections": {
        "BODY[1.1]": b"plain",
        "BODY[1.2]": b"<p>html</p>",
        "BODY[2]": b"AAECAw==",
        # RFC 9051 §6.4.5.1: "If a particular part is of type message or multipart, its parts
        # MUST be indicated by a period followed by the part number within that nested
        # multipart part."  BODY[1] is the body of the multipart/alternative part: from after
        # its MIME header to the CRLF that belongs to the next "--outer".
        "BODY[1]":
            b"--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain\r\n"
            b"--inner\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 7bit\r\n\r\n<p>html</p>\r\n--inner--\r\n",
        # "The MIME part specifier refers to the [MIME-IMB] header for this part."
        "BODY[1.MIME]":
            b'Content-Type: multipart/alternative; boundary="inner"\r\n'
            b"Content-Description: two versions\r\n\r\n",
        "BODY[1.2.MIME]":
            b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
        "BODY[2.MIME]":
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: BASE64\r\n"
            b"Content-ID: <blob@example.org>\r\n\r\n",
        "BODY[2]<2.4>": b"ECAw",
    },
    "binary": {
        "BINARY[1.1]": b"plain",
        "BINARY[2]": b"\x00\x01\x02\x03",
    },
    "binary_size": {"1.1": 5, "2": 4},
}
