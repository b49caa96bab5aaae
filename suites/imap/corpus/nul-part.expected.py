"""A part in Content-Transfer-Encoding binary holding a NUL octet (appended as literal8)."""

# RFC 9051 §9: "The ASCII NUL character, %x00, MUST NOT be used anywhere, with the exception
# of the OCTET production"; literal = "{" number64 ["+"] "}" CRLF *CHAR8 with CHAR8 = %x01-ff.
# Only literal8 (~{n}) carries NUL: the message is appended with it (RFC 3516 §4.4: "The
# APPEND command is extended to allow the client to append data containing NULs by using the
# <literal8> syntax").
#
# RFC 3516 §4.4: "The server MAY modify the CTE of the appended data, however any such
# transformation MUST NOT result in a loss of data"; §6: "the server MUST issue BODYSTRUCTURE
# responses that describe the message as though the binary-encoded sections are encoded in a
# CTE acceptable to the IMAP4 base specification.  Furthermore, the results of a FETCH BODY
# MUST return the message body content in the format described by the corresponding FETCH
# BODYSTRUCTURE response."  RFC 9051 §7.5.2 (BODY[<section>]): "Non-textual data such as
# binary data MUST be transfer encoded into a textual form, such as base64, prior to being
# sent to the client."  So part 2 is reported in base64 or quoted-printable, of a size that
# depends on the server, and BODY[2] decoded by that encoding is the three octets.

EXPECTED = {
    "append": "literal8",
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        "a NUL octet",
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "rcpt", "example.net"),),
        None,
        None,
        None,
        "<nul-part@example.org>",
    ),
    "bodystructure": (
        ("TEXT", "PLAIN", ("CHARSET", "US-ASCII"), None, None, "7BIT", 4, {1, 0},
         None, None, None, None),
        ("APPLICATION", "OCTET-STREAM", None, None, None, {"BASE64", "QUOTED-PRINTABLE"}, ...,
         None, None, None, None),
        "MIXED",
        ("BOUNDARY", "b1"), None, None, None,
    ),
    # The size follows the encoding the server chose; it is checked against BODY[].
    "size": ...,
    "sections": {
        "BODY[1]": b"text",
    },
    "decoded": {"2": b"A\x00B"},
    # RFC 9051 §7.5.2: BINARY is "An <nstring> or <literal8> expressing the content of the
    # specified section after removing any encoding"; with a NUL only literal8 can carry it.
    "binary": {
        "BINARY[1]": b"text",
        "BINARY[2]": b"A\x00B",
    },
    "binary_size": {"1": 4, "2": 3},
}
