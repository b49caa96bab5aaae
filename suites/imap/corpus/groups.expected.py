"""RFC 5322 §3.4 groups in To, Cc and Bcc, one of them empty."""

EXPECTED = {
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        "groups",
        (("Fred Foobar", None, "foobar", "example.org"),),
        (("Fred Foobar", None, "foobar", "example.org"),),
        (("Fred Foobar", None, "foobar", "example.org"),),
        # RFC 9051 §7.5.2: "[RFC5322] group syntax is indicated by a special form of address
        # structure in which the hostname field is NIL.  If the mailbox name field is also
        # NIL, this is an end-of-group marker (semicolon in RFC 822 syntax).  If the mailbox
        # name field is non-NIL, this is the start of a group marker, and the mailbox name
        # field holds the group name phrase."
        (
            (None, None, "group", None),
            (None, None, "g1", "d1.org"),
            (None, None, "g2", "d2.org"),
            (None, None, None, None),
            (None, None, "group2", None),
            (None, None, "g3", "d3.org"),
            (None, None, None, None),
        ),
        # An empty group (RFC 5322 §3.4: group = display-name ":" [group-list] ";") is a
        # start marker followed at once by the end marker; the field is not "present but
        # empty", so the member is not NIL.
        ((None, None, "group", None), (None, None, None, None)),
        ((None, None, "undisclosed-recipients", None), (None, None, None, None)),
        None,
        "<groups@example.org>",
    ),
    "bodystructure": (
        "TEXT", "PLAIN", {None, ("CHARSET", "US-ASCII")}, None, None, "7BIT", 9, 1,
        None, None, None, None,
    ),
    "size": 238,
    "sections": {
        "BODY[HEADER.FIELDS (TO cc)]":
            b"To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\nCc: group:;\r\n\r\n",
    },
}
