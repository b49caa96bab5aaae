"""RFC 2047 encoded words and quoted strings in display names and the subject."""

EXPECTED = {
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        # The ENVELOPE is "computed by the server by parsing the [RFC5322] header" (RFC 9051
        # §7.5.2); IMAP defines no RFC 2047 decoding, and RFC 3516 §5: "A server MUST NOT
        # perform any conversion of [MIME-MHE] encoded header text".  The encoded words
        # stay as they are.
        "=?UTF-8?B?R3LDvMOfZQ==?= and =?ISO-8859-1?Q?caf=E9?=",
        # From: =?UTF-8?Q?J=C3=B6rg?= "Doe, Jr." <jd@example.org>: the phrase is an encoded
        # word and a quoted string; the quoted string's value is "Doe, Jr." (RFC 5322 §3.2.4:
        # DQUOTEs and quoted-pair backslashes "are not semantically part of the value").
        (("=?UTF-8?Q?J=C3=B6rg?= Doe, Jr.", None, "jd", "example.org"),),
        (("=?UTF-8?Q?J=C3=B6rg?= Doe, Jr.", None, "jd", "example.org"),),
        (("=?UTF-8?Q?J=C3=B6rg?= Doe, Jr.", None, "jd", "example.org"),),
        # "Smith, \"Agent\" J.": quoted-pairs stand for the character they quote.
        (('Smith, "Agent" J.', None, "smith", "example.net"),
         ("=?ISO-8859-1?Q?Andr=E9?= Pirard", None, "pirard", "example.net")),
        None,
        None,
        None,
        "<encoded-words@example.org>",
    ),
    "bodystructure": (
        "TEXT", "PLAIN", {None, ("CHARSET", "US-ASCII")}, None, None, "7BIT", 45, 1,
        None, None, None, None,
    ),
    "size": 347,
    "sections": {
        "BODY[HEADER.FIELDS (Subject)]":
            b"Subject: =?UTF-8?B?R3LDvMOfZQ==?= and =?ISO-8859-1?Q?caf=E9?=\r\n\r\n",
    },
}
