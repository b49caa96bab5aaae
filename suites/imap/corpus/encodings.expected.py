"""Quoted-printable and base64 parts, and what BINARY makes of them."""

# RFC 9051 §7.5.2: BINARY is "the content of the specified section after removing any
# encoding specified in the corresponding Content-Transfer-Encoding header field";
# BINARY.SIZE "The size of the section after removing any encoding ... MUST match the size of
# the <nstring> or <literal8> that will be returned by the corresponding FETCH BINARY request."
# BODYSTRUCTURE sizes and lines are "in its transfer encoding and not the resulting size after
# any decoding".

EXPECTED = {
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        "base64 and quoted-printable",
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "rcpt", "example.net"),),
        None,
        None,
        None,
        "<encodings@example.org>",
    ),
    "bodystructure": (
        ("TEXT", "PLAIN", ("CHARSET", "UTF-8"), None, None, "QUOTED-PRINTABLE", 45, {3, 2},
         None, None, None, None),
        ("APPLICATION", "OCTET-STREAM", None, None, None, "BASE64", 12,
         None, None, None, None),
        ("TEXT", "PLAIN", ("CHARSET", "US-ASCII"), None, None, "BASE64", 16, {1, 0},
         None, None, None, None),
        "MIXED",
        ("BOUNDARY", "b1"), None, None, None,
    ),
    "size": 577,
    "sections": {
        "BODY[1]": b"caf=C3=A9 =3D 3 soft=\r\n break\r\nsecond line=20",
        "BODY[2]": b"AAEC/w0KAA==",
        "BODY[3]": b"aGVsbG8NCndvcmxk",
    },
    "binary": {
        # RFC 2045 §6.7: "=" followed by two hexadecimal digits is the octet they name;
        # rule (5) "an equal sign as the last character on a encoded line indicates ... a
        # soft line break": "soft=" CRLF " break" is "soft break".
        "BINARY[1]": b"caf\xc3\xa9 = 3 soft break\r\nsecond line ",
        # RFC 2045 §6.8: AAEC/w0KAA== is 00 01 02 FF 0D 0A 00.
        "BINARY[2]": b"\x00\x01\x02\xff\r\n\x00",
        "BINARY[3]": b"hello\r\nworld",
        # RFC 9051 §6.4.5: "the <partial> arguments refer to the DECODED section data".
        "BINARY[2]<1.3>": b"\x01\x02\xff",
        "BINARY[1]<3.2>": b"\xc3\xa9",
    },
    "binary_size": {"1": 34, "2": 7, "3": 12},
}
