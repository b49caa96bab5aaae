"""Sender, Reply-To, Cc and Subject present but empty."""

EXPECTED = {
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        # RFC 9051 §7.5.2: "if these header fields are present but empty, the corresponding
        # member of the envelope is the empty string.  Note: some servers may return a NIL
        # envelope member in the "present but empty" case."  Both are accepted.
        {"", None},
        (("Fred Foobar", None, "foobar", "example.org"),),
        # "If the Sender or Reply-To header fields are absent in the [RFC5322] header, or are
        # present but empty, the server sets the corresponding member of the envelope to be
        # the same value as the from member".
        (("Fred Foobar", None, "foobar", "example.org"),),
        (("Fred Foobar", None, "foobar", "example.org"),),
        ((None, None, "rcpt", "example.net"),),
        # "If the From, To, Cc, and Bcc header fields are absent ..., or are present but
        # empty, the corresponding member of the envelope is NIL."
        None,
        None,
        None,
        "<sender-empty@example.org>",
    ),
    "bodystructure": (
        "TEXT", "PLAIN", {None, ("CHARSET", "US-ASCII")}, None, None, "7BIT", 41, 1,
        None, None, None, None,
    ),
    "size": 218,
    "sections": {
        "BODY[HEADER.FIELDS (Sender Reply-To Cc)]": b"Sender:\r\nReply-To:\r\nCc:\r\n\r\n",
    },
}
