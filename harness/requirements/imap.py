"""Requirements of IMAP in depth (RFC 9051, 3501, 2177, 4315, 6851, 5161, 2971, 2342, 7888, 7162): suites/imap."""

from __future__ import annotations

from harness.requirements import Level, Requirement

M, S, Y = Level.MUST, Level.SHOULD, Level.MAY

IMAP: tuple[Requirement, ...] = (
    # -- any state, capabilities, extensions announced at login -------------------------------
    Requirement("IMAP-RESPONSE-SYNTAX", 9051, "9", M,
                "Every server response follows the formal syntax of RFC 9051 §9 (RFC 3501 §9 "
                "for IMAP4rev1): \"the precise syntax of server responses\" (§7).", 9),
    Requirement("IMAP-CAPABILITY", 9051, "6.1.1", M,
                "CAPABILITY is answered with one untagged CAPABILITY response that lists "
                "IMAP4rev2 or IMAP4rev1, then a tagged OK.", 9),
    Requirement("IMAP-LOGOUT", 9051, "6.1.3", M,
                "LOGOUT is answered with an untagged BYE before the tagged OK.", 9),
    Requirement("IMAP-ENABLE", 5161, "3.1", M,
                "A successful ENABLE is answered with an untagged ENABLED response listing "
                "what was enabled.", 9),
    Requirement("IMAP-ID", 2971, "3.1", M,
                "The ID command is answered with an untagged ID response (a list or NIL) and "
                "a tagged OK, in any state.", 9),
    Requirement("IMAP-NAMESPACE", 2342, "5", M,
                "NAMESPACE reports a personal namespace whose hierarchy delimiter is the one "
                "LIST reports.", 9),
    # -- log in --------------------------------------------------------------------------------
    Requirement("IMAP-AUTHENTICATE-PLAIN", 9051, "6.2.2", M,
                "AUTHENTICATE PLAIN succeeds with valid credentials, both with a SASL-IR "
                "initial response and after an empty continuation request.", 8),
    Requirement("IMAP-AUTH-CANCEL", 9051, "6.2.2", M,
                "A client answering an AUTHENTICATE challenge with \"*\" gets a tagged BAD.", 8),
    Requirement("IMAP-AUTH-DELAY", 9051, "11.7", S,
                "Failed LOGIN attempts are limited or delayed.", 8),
    # -- mailboxes -------------------------------------------------------------------------------
    Requirement("IMAP-CREATE", 9051, "6.3.4", M,
                "CREATE makes a mailbox that LIST shows; CREATE of an existing name is NO.", 9),
    Requirement("IMAP-DELETE", 9051, "6.3.5", M,
                "DELETE removes a mailbox; deleting INBOX or a missing mailbox is NO.", 9),
    Requirement("IMAP-RENAME", 9051, "6.3.6", M,
                "RENAME moves a mailbox with its messages and inferiors to the new name; "
                "the old name no longer exists.", 9),
    Requirement("IMAP-RENAME-INBOX", 9051, "6.3.6", M,
                "RENAME of INBOX, when accepted, moves all its messages to the new mailbox "
                "and leaves INBOX empty.", 9),
    Requirement("IMAP-SUBSCRIBE", 9051, "6.3.7", M,
                "SUBSCRIBE adds a name to the subscription list (LSUB shows it); UNSUBSCRIBE "
                "removes it.", 9),
    Requirement("IMAP-LIST-DELIMITER", 9051, "6.3.9", M,
                "LIST \"\" \"\" returns the hierarchy delimiter, and every LIST response "
                "carries that same delimiter.", 9),
    Requirement("IMAP-LIST-WILDCARDS", 9051, "6.3.9", M,
                "In LIST patterns \"*\" matches any characters and \"%\" matches any but the "
                "hierarchy delimiter.", 9),
    Requirement("IMAP-INBOX-CASE", 9051, "5.1", M,
                "The mailbox name INBOX is case-insensitive.", 9),
    Requirement("IMAP-SPECIAL-USE", 9051, "7.3.1", S,
                "A server advertising SPECIAL-USE marks its special mailboxes in LIST with "
                "\\Sent, \\Trash, \\Drafts, \\Junk ... (RFC 6154 §2).", 9),
    Requirement("IMAP-SEARCH-ADDRESS", 9051, "6.4.4", M,
                "SEARCH FROM, TO, CC and BCC match the envelope's addresses (mailbox@host and "
                "name), whatever comments or folding the header field has.", 9),
    Requirement("IMAP-FLAGS-NEW-KEYWORD", 3501, "7.2.6", S,
                "When a keyword new to the mailbox is set, a selected session gets a FLAGS "
                "response listing it before any FETCH shows it.", 9),
    Requirement("IMAP-LSUB-PARENT", 3501, "6.3.9", M,
                "LSUB with % returns an unsubscribed parent of a subscribed mailbox the "
                "pattern does not match, flagged \\Noselect.", 9),
    Requirement("IMAP-SELECT-UNSEEN", 3501, "6.3.1", M,
                "An IMAP4rev1 SELECT or EXAMINE of a mailbox with an unseen message sends "
                "OK [UNSEEN n], n the sequence number of the first unseen message.", 9),
    Requirement("IMAP-STATUS", 9051, "6.3.11", M,
                "STATUS MESSAGES, UIDNEXT, UIDVALIDITY and UNSEEN agree with the mailbox.", 9),
    Requirement("IMAP-STATUS-RECENT", 3501, "6.3.10", M,
                "STATUS (RECENT) counts the messages with \\Recent: those no session has "
                "been told of yet.", 9),
    Requirement("IMAP-STATUS-SIZE", 8438, "3", M,
                "STATUS (SIZE) is at least the total of the messages' RFC822.SIZE "
                "(the size of the mailbox in octets).", 9),
    Requirement("IMAP-TRYCREATE", 9051, "6.3.12", M,
                "APPEND, COPY or MOVE to a missing mailbox fails with NO [TRYCREATE].", 9),
    Requirement("IMAP-NO-AUTOCREATE", 9051, "6.3.12", M,
                "APPEND, COPY or MOVE to a missing mailbox does not create it.", 9),
    # -- APPEND --------------------------------------------------------------------------------
    Requirement("IMAP-APPEND", 9051, "6.3.12", M,
                "APPEND stores the message byte for byte with the flags given.", 9),
    Requirement("IMAP-APPEND-DATE", 9051, "6.3.12", S,
                "APPEND with a date-time sets the message's INTERNALDATE to it.", 9),
    Requirement("IMAP-LITERAL-PLUS", 7888, "4", M,
                "A server advertising LITERAL+ accepts a non-synchronizing literal without "
                "a continuation request.", 9),
    Requirement("IMAP-APPENDUID", 4315, "3", S,
                "With UIDPLUS, APPEND OK carries APPENDUID with the mailbox's UIDVALIDITY and "
                "the new message's UID.", 9),
    Requirement("IMAP-APPEND-ATOMIC", 9051, "6.3.12", M,
                "An APPEND that does not complete (client gone mid-literal) leaves no partial "
                "message.", 9),
    Requirement("IMAP-TOOBIG", 7888, "4", M,
                "A literal larger than the server accepts is refused (NO/BAD, TOOBIG) before "
                "its octets are read: no continuation request is sent.", 9),
    # -- FETCH -----------------------------------------------------------------------------------
    Requirement("IMAP-FETCH-ENVELOPE", 9051, "7.5.2", M,
                "ENVELOPE carries the message's Date, Subject, From, To and Message-ID.", 9),
    Requirement("IMAP-FETCH-BODYSTRUCTURE", 9051, "7.5.2", M,
                "BODYSTRUCTURE describes the MIME structure: a multipart has its parts and "
                "subtype, each part its type and subtype.", 9),
    Requirement("IMAP-FETCH-SECTIONS", 9051, "6.4.5.1", M,
                "BODY[HEADER], BODY[TEXT], BODY[n] and BODY[HEADER.FIELDS (...)] return "
                "exactly those parts of the message.", 9),
    Requirement("IMAP-FETCH-PARTIAL", 9051, "6.4.5", M,
                "BODY[]<origin.octets> returns that substring, reported as BODY[]<origin>.", 9),
    Requirement("IMAP-ENVELOPE-GROUPS", 9051, "7.5.2", M,
                "ENVELOPE reports an RFC 5322 group as a start marker (NIL NIL \"name\" NIL), "
                "its members, and an end marker (NIL NIL NIL NIL); an empty group as the two "
                "markers.", 9),
    Requirement("IMAP-BODYSTRUCTURE-SIZES", 9051, "7.5.2", M,
                "BODYSTRUCTURE gives each part's size in octets in its transfer encoding, and "
                "the size in text lines of each text and message/rfc822 part.", 9),
    Requirement("IMAP-HEADER-FIELDS-NAMES", 9051, "6.4.5.1", M,
                "BODY[HEADER.FIELDS (...)] returns every field whose name matches one listed "
                "(ASCII case-insensitive; once, however often listed), as it is in the message, "
                "folded; HEADER.FIELDS.NOT returns the other fields.", 9),
    Requirement("IMAP-RFC822-SIZE", 9051, "2.3.4", M,
                "RFC822.SIZE is the number of octets of the message in RFC 5322 format: of the "
                "message appended, and of what BODY[] returns.", 9),
    Requirement("IMAP-UID-FETCH-UID", 9051, "6.4.9", M,
                "Every FETCH response to UID FETCH includes the UID.", 9),
    # -- STORE -----------------------------------------------------------------------------------
    Requirement("IMAP-STORE-MODES", 9051, "6.4.6", M,
                "STORE FLAGS replaces the flags, +FLAGS adds and -FLAGS removes them; keywords "
                "too.", 9),
    Requirement("IMAP-STORE-SILENT", 9051, "6.4.6", S,
                "STORE ...FLAGS.SILENT sends no untagged FETCH for the change.", 9),
    Requirement("IMAP-EXAMINE-READONLY", 9051, "6.3.3", M,
                "EXAMINE opens the mailbox read-only: [READ-ONLY], and reading a body does "
                "not set \\Seen.", 9),
    Requirement("IMAP-LIST-SELECT-SUBSCRIBED", 9051, "6.3.9.1", M,
                "LIST (SUBSCRIBED) lists exactly the subscribed names that match, each "
                "\\Subscribed, a name whose mailbox is gone \\NonExistent.", 9),
    Requirement("IMAP-LIST-RECURSIVEMATCH", 9051, "6.3.9.6", M,
                "LIST (SUBSCRIBED RECURSIVEMATCH) returns an unsubscribed mailbox that matches "
                "and has a subscribed child the pattern does not reach, with CHILDINFO "
                "(\"SUBSCRIBED\").", 9),
    Requirement("IMAP-LIST-STATUS", 9051, "6.3.9.2", M,
                "LIST ... RETURN (STATUS (...)) follows the LIST response of each selectable "
                "mailbox with a STATUS response that agrees with the STATUS command.", 9),
    Requirement("IMAP-FETCH-BINARY", 9051, "6.4.5", M,
                "FETCH BINARY[part] returns the leaf part with its Content-Transfer-Encoding "
                "(base64, quoted-printable) removed, a partial counting decoded octets; "
                "BINARY.PEEK does not set \\Seen.", 9),
    Requirement("IMAP-BINARY-SIZE", 9051, "7.5.2", M,
                "BINARY.SIZE[part] is the length of what FETCH BINARY[part] returns.", 9),
    Requirement("IMAP-BINARY-UNKNOWN-CTE", 9051, "7.5.2", M,
                "FETCH BINARY of a part whose Content-Transfer-Encoding the server cannot decode "
                "fails with NO [UNKNOWN-CTE].", 9),
    # -- SEARCH ----------------------------------------------------------------------------------
    Requirement("IMAP-SEARCH-KEYS", 9051, "6.4.4", M,
                "SEARCH keys (flags, header fields, BODY/TEXT, sizes, dates, UID, NOT, OR) "
                "select exactly the matching messages; string matching is case-insensitive.", 9),
    Requirement("IMAP-SEARCH-CHARSET", 9051, "6.4.4", M,
                "SEARCH CHARSET UTF-8 is supported; an unknown charset is NO [BADCHARSET].", 9),
    Requirement("IMAP-ESEARCH", 9051, "7.3.4", M,
                "After ENABLE IMAP4rev2, SEARCH answers with ESEARCH (with RETURN options "
                "honoured), never with SEARCH.", 9),
    Requirement("IMAP-SEARCH-CORRECT", 9051, "6.4.4", M,
                "SEARCH results match the mailbox's messages and flags at the time.", 9),
    # -- CONDSTORE (RFC 7162 §3.1), where offered --------------------------------------------
    Requirement("IMAP-CONDSTORE-HIGHESTMODSEQ", 7162, "3.1.2.1", M,
                "SELECT (CONDSTORE) reports HIGHESTMODSEQ, at least every message's MODSEQ; it "
                "grows after a change, and STATUS (HIGHESTMODSEQ) agrees.", 9),
    Requirement("IMAP-CONDSTORE-STORE-MODSEQ", 7162, "3.1.3", M,
                "A STORE that changes a message's flags raises its mod-sequence: FETCH MODSEQ "
                "reports a larger value afterwards, in this session and in another.", 9),
    Requirement("IMAP-CONDSTORE-MODSEQ-UNIQUE", 7162, "3.1", M,
                "Each STORE gets a mod-sequence of its own, \"including simultaneous stores to "
                "different metadata items from different connections\" (checked by "
                "mailharness load).", 9),
    Requirement("IMAP-CONDSTORE-UNCHANGEDSINCE", 7162, "3.1.3", M,
                "STORE (UNCHANGEDSINCE n) leaves a message whose mod-sequence is above n "
                "unchanged and names it in [MODIFIED]; the others are stored, each with an "
                "untagged FETCH carrying MODSEQ even with .SILENT.", 9),
    Requirement("IMAP-CONDSTORE-CHANGEDSINCE", 7162, "3.1.4.1", M,
                "FETCH (CHANGEDSINCE n) returns exactly the messages whose mod-sequence is "
                "above n, each with its MODSEQ.", 9),
    Requirement("IMAP-SEARCH-MODSEQ", 7162, "3.1.5", M,
                "SEARCH MODSEQ n finds the messages whose mod-sequence is at least n, and a "
                "non-empty result ends with (MODSEQ highest-of-them).", 9),
    # -- QRESYNC (RFC 7162 §3.2), where offered ----------------------------------------------
    Requirement("IMAP-QRESYNC-ENABLE-FIRST", 7162, "3.2.5", M,
                "SELECT/EXAMINE with the QRESYNC parameter is BAD before ENABLE QRESYNC, and "
                "accepted after it.", 9),
    Requirement("IMAP-QRESYNC-SELECT", 7162, "3.2.5.1", M,
                "SELECT (QRESYNC (uidvalidity modseq known-uids)) reports every message "
                "expunged since in VANISHED (EARLIER), naming none still there, and a FETCH "
                "with UID, FLAGS and a larger MODSEQ for each message changed since, none for "
                "the unchanged.", 9),
    Requirement("IMAP-QRESYNC-VANISHED", 7162, "3.2.10.2", M,
                "After ENABLE QRESYNC, expunges (the session's own and another session's) are "
                "announced with VANISHED, without (EARLIER), never with EXPUNGE.", 9),
    Requirement("IMAP-QRESYNC-FETCH-VANISHED", 7162, "3.2.6", M,
                "UID FETCH (CHANGEDSINCE n VANISHED) reports the UIDs of the set expunged since "
                "n in VANISHED (EARLIER), before any FETCH, and returns only messages changed "
                "since n.", 9),
    # -- COPY / MOVE -----------------------------------------------------------------------------
    Requirement("IMAP-COPY", 9051, "6.4.7", M,
                "COPY puts a copy in the destination with the same flags and INTERNALDATE; "
                "the source keeps its message.", 9),
    Requirement("IMAP-COPYUID", 4315, "3", S,
                "With UIDPLUS, COPY and MOVE report COPYUID mapping source to new UIDs.", 9),
    Requirement("IMAP-MOVE", 6851, "3.3", M,
                "MOVE puts the messages in the destination, removes them from the source and "
                "reports each with an untagged EXPUNGE.", 9),
    # -- EXPUNGE / CLOSE / UNSELECT --------------------------------------------------------------
    Requirement("IMAP-UID-EXPUNGE", 4315, "2.1", M,
                "UID EXPUNGE removes only the \\Deleted messages whose UIDs it names.", 9),
    Requirement("IMAP-CLOSE", 9051, "6.4.1", M,
                "CLOSE removes \\Deleted messages without sending untagged EXPUNGE.", 9),
    Requirement("IMAP-CLOSE-READONLY", 9051, "6.4.1", M,
                "CLOSE of a mailbox selected by EXAMINE answers OK and removes nothing.", 9),
    Requirement("IMAP-UNSELECT", 9051, "6.4.2", M,
                "UNSELECT leaves the selected state without removing \\Deleted messages.", 9),
    # -- IDLE, concurrency, UIDs -----------------------------------------------------------------
    Requirement("IMAP-IDLE-PROMPT", 2177, "3", S,
                "During IDLE a message added by another session is announced within about a "
                "second.", 9),
    Requirement("IMAP-CONCURRENT-UPDATES", 9051, "5.2", M,
                "A session learns of messages added by another session as untagged EXISTS at "
                "its next command (NOOP).", 9),
    Requirement("IMAP-RECENT", 3501, "2.3.2", M,
                "In IMAP4rev1 a message that arrives while two read-write sessions have the "
                "mailbox selected is \\Recent in exactly one of them (the first told of it; "
                "where unsure, a server SHOULD call it recent), and SEARCH RECENT agrees.", 9),
    Requirement("IMAP-EXAMINE-KEEPS-RECENT", 3501, "6.3.2", M,
                "EXAMINE does not take \\Recent away: a session that selects the mailbox "
                "afterwards still sees the new message as \\Recent.", 9),
    Requirement("IMAP-SESSIONS-AGREE", 9051, "5.2", S,
                "After NOOP in every session, concurrent sessions agree on message count, "
                "UIDs and flags.", 9),
    Requirement("IMAP-NO-EXPUNGE-DURING-FETCH", 9051, "7.5.1", M,
                "No untagged EXPUNGE is sent while responding to FETCH, STORE or SEARCH.", 9),
    Requirement("IMAP-SEQ-UID-STABLE", 9051, "2.3.1.2", M,
                "The sequence number to UID map changes only by announced EXPUNGE (and new "
                "messages at the end).", 9),
    Requirement("IMAP-STATIC-DATA", 9051, "2.3.1.1", M,
                "A message's data never changes: size, INTERNALDATE, ENVELOPE, BODYSTRUCTURE "
                "and body are the same at every fetch.", 9),
    Requirement("IMAP-UID-MONOTONIC", 9051, "2.3.1.1", M,
                "A new message gets a UID above every UID the mailbox ever had; an expunged "
                "UID is never reused.", 9),
    Requirement("IMAP-UIDVALIDITY-STABLE", 9051, "2.3.1.1", M,
                "UIDVALIDITY does not change between sessions while UIDs persist, and UIDNEXT "
                "grows with each new message.", 9),
    # -- mailbox names ---------------------------------------------------------------------------
    Requirement("IMAP-MUTF7", 3501, "5.1.3", M,
                "Outside IMAP4rev2, non-ASCII mailbox names travel in modified UTF-7, both "
                "ways.", 9),
    Requirement("IMAP-NAME-ROBUST", 9051, "11.7", M,
                "Mailbox names with \"..\", \"%\", \"*\", NUL or absurd length are refused or "
                "handled, and the session goes on.", 9),
    Requirement("IMAP-USER-ISOLATION", 9051, "11.5", M,
                "No mailbox name lets one user create or see another user's mailboxes.", 9),
    # -- bad input -------------------------------------------------------------------------------
    Requirement("IMAP-BAD-COMMAND", 9051, "2.2.2", S,
                "An unknown or malformed command is answered BAD and the session goes on; a "
                "server may end it after bad commands, with BYE (§3.4), never in place of "
                "the BAD.", 9),
    Requirement("IMAP-LINE-LIMIT", 9051, "11.7", S,
                "An endless command line is cut off (BAD or BYE) rather than buffered.", 9),
    # -- extensions: SORT, THREAD and ESORT (RFC 5256, RFC 5267 §3) ------------------------------
    Requirement("IMAP-SORT-KEYS", 5256, "3", M,
                "SORT orders by ARRIVAL (internal date and time) and SIZE, ascending; REVERSE "
                "descends for its criterion; several criteria apply in the order given.", 9),
    Requirement("IMAP-SORT-BASE-SUBJECT", 5256, "2.1", M,
                "SORT (SUBJECT) orders by the base subject: RFC 2047 words decoded, \"Re:\", "
                "\"Fwd:\", \"[blob]\" prefixes, \"(fwd)\" trailers and \"[fwd: ...]\" "
                "removed, compared with i;unicode-casemap.", 9),
    Requirement("IMAP-SORT-SENT-DATE", 5256, "2.2", M,
                "SORT (DATE) orders by the Date header normalised to UTC, and by the "
                "INTERNALDATE where the message has no Date header.", 9),
    Requirement("IMAP-SORT-ADDRESS", 5256, "3", M,
                "SORT (FROM), (TO) and (CC) order by the addr-mailbox of the first address, "
                "with i;unicode-casemap; a missing header is the empty string, sorted first.",
                9),
    Requirement("IMAP-SORT-TIES", 5256, "3", M,
                "Messages equal under the sort criteria come in mailbox order, also under "
                "REVERSE (which does not reverse the implicit sequence-number criterion).", 9),
    Requirement("IMAP-SORT-UID", 5256, "3", M,
                "UID SORT answers UIDs, and reads its search criteria as SORT does (a sequence "
                "set means sequence numbers).", 9),
    Requirement("IMAP-SORT-CHARSETS", 5256, "3", M,
                "SORT takes the US-ASCII and UTF-8 charsets (\"MUST be implemented\"), a UTF-8 "
                "search string included.", 9),
    Requirement("IMAP-SORT-BADCHARSET", 5256, "3", M,
                "SORT with a charset the server does not know is answered NO, not BAD.", 9),
    Requirement("IMAP-SORT-MODSEQ", 7162, "3.1.9", M,
                "A SORT with a MODSEQ criterion and a non-empty result ends its SORT response "
                "with the highest mod-sequence (MODSEQ n); with ESORT, a MODSEQ result.", 9),
    Requirement("IMAP-THREAD-ORDEREDSUBJECT", 5256, "3", M,
                "THREAD ORDEREDSUBJECT groups by base subject, sorts each group by sent date, "
                "makes the later messages children of the first, and orders the threads by the "
                "sent date of their first message.", 9),
    Requirement("IMAP-THREAD-REFERENCES", 5256, "3", M,
                "THREAD REFERENCES builds the trees of RFC 5256 §3: References and In-Reply-To "
                "links, missing parents pruned or kept as dummies, threads of one base subject "
                "merged, siblings by sent date.", 9),
    Requirement("IMAP-THREAD-MSGID", 5256, "3", M,
                "THREAD REFERENCES normalises msg-ids: <\"id\"@host> and <id@host> are the same "
                "Message ID.", 9),
    Requirement("IMAP-THREAD-UID", 5256, "3", M,
                "UID THREAD answers the trees of THREAD with UIDs in place of sequence numbers, "
                "its search criteria read as THREAD reads them.", 9),
    Requirement("IMAP-ESORT", 5267, "3.1", M,
                "SORT RETURN (...) answers an ESEARCH: MIN and MAX the first and last message in "
                "sort order, ALL every message in sort order, COUNT their number; RETURN () is "
                "ALL.", 9),
    # -- extensions: ESEARCH, SEARCHRES, WITHIN, CONTEXT=SEARCH (RFC 4731, 5182, 5032, 5267) -----
    Requirement("IMAP-ESEARCH-RETURN", 4731, "3.1", M,
                "SEARCH RETURN (MIN MAX ALL COUNT) from an IMAP4rev1 client is answered with one "
                "ESEARCH response carrying the command's TAG (UID for UID SEARCH) instead of "
                "SEARCH; RETURN () means ALL.", 9),
    Requirement("IMAP-ESEARCH-EMPTY", 4731, "3.1", M,
                "With no match the ESEARCH response is still sent, without MIN, MAX and ALL, "
                "and with COUNT 0.", 9),
    Requirement("IMAP-SEARCHRES-SAVE", 5182, "2.1", M,
                "SEARCH RETURN (SAVE) sets \"$\" to the messages found, usable as a message "
                "set by FETCH, STORE, COPY and SEARCH and their UID forms, whichever of SEARCH "
                "and UID SEARCH saved it.", 9),
    Requirement("IMAP-SEARCHRES-RESET", 5182, "2.1", M,
                "\"$\" is empty after SELECT and EXAMINE (and before any SAVE).", 9),
    Requirement("IMAP-SEARCHRES-EMPTY", 5182, "2.1", M,
                "An empty \"$\" is a valid but non-matching message set: FETCH $ and COPY $ "
                "answer OK with nothing.", 9),
    Requirement("IMAP-SEARCHRES-FAILED", 5182, "2.1", M,
                "A SEARCH without SAVE that fails leaves \"$\" unchanged; a SEARCH with SAVE "
                "answered NO empties it.", 9),
    Requirement("IMAP-SEARCHRES-MINMAX", 5182, "2.4", M,
                "SAVE with MIN and/or MAX alone saves only those messages; with ALL or COUNT, "
                "every message found.", 9),
    Requirement("IMAP-SEARCHRES-EXPUNGE", 5182, "2.1", M,
                "A message of \"$\" that is expunged leaves it; the others stay, whatever "
                "their new sequence numbers.", 9),
    Requirement("IMAP-WITHIN", 5032, "2", M,
                "SEARCH OLDER n and YOUNGER n compare INTERNALDATE with the server's time less "
                "n seconds.", 9),
    Requirement("IMAP-CONTEXT-UPDATE", 5267, "4.3", M,
                "UID SEARCH RETURN (UPDATE) is followed by unsolicited ESEARCH ADDTO and "
                "REMOVEFROM as messages start and stop matching (or NO [NOUPDATE]); a tag in use "
                "by an updating search is BAD.", 9),
    Requirement("IMAP-CONTEXT-ORDER", 5267, "4.3.3", M,
                "ADDTO with sequence numbers of new messages follows their EXISTS; REMOVEFROM "
                "with those of expunged messages precedes the EXPUNGE.", 9),
    Requirement("IMAP-CONTEXT-CANCEL", 5267, "4.3.5", M,
                "CANCELUPDATE stops the updates of the searches it names.", 9),
    Requirement("IMAP-CONTEXT-PARTIAL", 5267, "4.4", M,
                "RETURN (PARTIAL m:n) returns results m to n (1 the first) in mailbox order, as "
                "PARTIAL (m:n set) or NIL beyond the end.", 9),
    Requirement("IMAP-CONTEXT-SORT-UPDATE", 5267, "4.3", M,
                "With CONTEXT=SORT, UID SORT RETURN (UPDATE) is followed by unsolicited ESEARCH "
                "ADDTO and REMOVEFROM as messages start and stop matching (or NO [NOUPDATE]).", 9),
    Requirement("IMAP-CONTEXT-SORT-ORDER", 5267, "4.3.2", M,
                "The ADDTO and REMOVEFROM of a SORT context keep its results in the requested "
                "(sort) order: each pair's context position is where the set goes in or leaves "
                "that order, never 0 (0 is only for SEARCH, RFC 5267 §4.3.3).", 9),
    Requirement("IMAP-CONTEXT-SORT-PARTIAL", 5267, "4.4", M,
                "With CONTEXT=SORT, SORT RETURN (PARTIAL m:n) returns results m to n (1 the "
                "first) of the sort order, in that order, or NIL beyond the end.", 9),
    # -- extensions: MULTIAPPEND, CATENATE and mailbox-name encoding (RFC 3502, 4469, 3501 §5.1.3)
    Requirement("IMAP-MULTIAPPEND", 3502, "6.3.11", M,
                "An APPEND with several messages appends them all, in the order sent, as new "
                "messages of the mailbox.", 9),
    Requirement("IMAP-MULTIAPPEND-FLAGS", 3502, "6.3.11", S,
                "Each message of a MULTIAPPEND gets its own flag list and date-time.", 9),
    Requirement("IMAP-MULTIAPPEND-ATOMIC", 3502, "6.3.11", M,
                "A MULTIAPPEND that fails (a zero-length literal, a bad date-time or flag in "
                "one message) appends none of its messages: \"no partial appending is "
                "permitted\"; a zero-length literal is answered NO.", 9),
    Requirement("IMAP-MULTIAPPEND-APPENDUID", 4315, "3", S,
                "With UIDPLUS, a MULTIAPPEND's APPENDUID carries a UID set of exactly the "
                "messages appended, in the order sent.", 9),
    Requirement("IMAP-CATENATE-TEXT", 4469, "3", M,
                "APPEND ... CATENATE joins its TEXT literals, in order, into one new "
                "message.", 9),
    Requirement("IMAP-CATENATE-URL", 4469, "3", M,
                "A CATENATE URL part (a relative IMAP URL of a message or section on the same "
                "server, RFC 5092) contributes the octets FETCH BODY[section] returns; the "
                "source's \\Seen flag is not set.", 9),
    Requirement("IMAP-CATENATE-BADURL", 4469, "4.1", M,
                "A CATENATE URL that names no message or part fails the APPEND with NO "
                "[BADURL url] and nothing is appended.", 9),
    Requirement("IMAP-MUTF7-INVALID-NO", 3501, "5.1.3", S,
                "A mailbox name with \"&\" that is not valid modified UTF-7 is a well-formed "
                "astring: CREATE, SELECT and STATUS of it are answered NO (not BAD), promptly, "
                "and the session goes on.", 9),
    Requirement("IMAP-MUTF7-AMPERSAND", 3501, "5.1.3", M,
                "\"&-\" stands for \"&\": a mailbox created as \"a&-b\" is listed as \"a&-b\" "
                "and can be selected by that name; a name with \"&\" never hangs or ends the "
                "session.", 9),
    Requirement("IMAP-MUTF7-REV2", 9051, "A", M,
                "After ENABLE IMAP4rev2 names are UTF-8 and \"&\" is an ordinary character "
                "(§5.1); a server also offering IMAP4rev1 shows the same mailbox to an "
                "IMAP4rev1 client in modified UTF-7 (\"&-\").", 9),
    # -- extensions: QUOTA, OBJECTID, PREVIEW, CREATE-SPECIAL-USE (RFC 9208, 8474, 8970, 6154) ---
    Requirement("IMAP-QUOTA-ROOT", 9208, "4.1.2", M,
                "GETQUOTAROOT mailbox returns a QUOTAROOT response naming the mailbox's quota "
                "roots and a QUOTA response for each of them.", 9),
    Requirement("IMAP-QUOTA-GETQUOTA", 9208, "4.1.1", M,
                "GETQUOTA of a quota root returns its QUOTA response, the resources "
                "GETQUOTAROOT reported.", 9),
    Requirement("IMAP-QUOTA-RES", 9208, "3.1.1", M,
                "Every resource a QUOTA response names is advertised as a QUOTA=RES- "
                "capability.", 9),
    Requirement("IMAP-QUOTA-USAGE", 9208, "5.2", M,
                "The MESSAGE usage is the exact number of messages in the quota root's "
                "mailboxes: one APPEND adds one.", 9),
    Requirement("IMAP-QUOTA-DELETED-STORAGE", 9208, "5.1", M,
                "A server with QUOTA=RES-STORAGE supports STATUS DELETED-STORAGE: 0 without "
                "\\Deleted messages, more with one.", 9),
    Requirement("IMAP-QUOTA-OVERQUOTA", 9208, "4.3.1", S,
                "An APPEND or COPY that would exceed a quota limit is refused with NO "
                "[OVERQUOTA] and stores nothing.", 9),
    Requirement("IMAP-OBJECTID-CREATE", 8474, "4.1", M,
                "A server advertising OBJECTID includes the MAILBOXID response code in the "
                "tagged OK of every successful CREATE.", 9),
    Requirement("IMAP-OBJECTID-SELECT", 8474, "4.2", M,
                "Every successful SELECT and EXAMINE returns an untagged OK [MAILBOXID (...)], "
                "the same id for the same mailbox.", 9),
    Requirement("IMAP-OBJECTID-STATUS", 8474, "4.3", M,
                "STATUS supports the MAILBOXID attribute: MAILBOXID (objectid), the mailbox's "
                "id.", 9),
    Requirement("IMAP-OBJECTID-MAILBOXID-UNIQUE", 8474, "4", M,
                "The server does not report the same MAILBOXID for two mailboxes at the same "
                "time.", 9),
    Requirement("IMAP-OBJECTID-RENAME", 8474, "4", M,
                "RENAME of a mailbox (other than INBOX) keeps its MAILBOXID.", 9),
    Requirement("IMAP-OBJECTID-EMAILID", 8474, "5.1", M,
                "FETCH EMAILID returns EMAILID (objectid), the same for the same mailbox, "
                "UIDVALIDITY and UID in every session.", 9),
    Requirement("IMAP-OBJECTID-EMAILID-COPY", 8474, "5.1", M,
                "The message COPY or MOVE creates has the EMAILID of its source message.", 9),
    Requirement("IMAP-OBJECTID-THREADID", 8474, "5.2", M,
                "FETCH THREADID returns THREADID (objectid) or NIL; messages with the same "
                "EMAILID have the same THREADID, and no THREADID has the value of an EMAILID.",
                9),
    Requirement("IMAP-OBJECTID-SEARCH", 8474, "6", M,
                "SEARCH EMAILID id matches exactly the messages whose EMAILID is id; SEARCH "
                "THREADID matches by THREADID, and nothing where THREADID is NIL.", 9),
    Requirement("IMAP-CREATE-SPECIAL-USE", 6154, "3", M,
                "A CREATE name (USE (\\Archive)) that succeeds creates the mailbox with that "
                "special use: LIST shows the attribute.", 9),
    Requirement("IMAP-USEATTR", 6154, "3", M,
                "A CREATE whose special use cannot be assigned is answered NO and creates no "
                "mailbox.", 9),
    Requirement("IMAP-PREVIEW", 8970, "3.2", M,
                "FETCH PREVIEW without LAZY returns a string, never NIL.", 9),
    Requirement("IMAP-PREVIEW-LENGTH", 8970, "3.3", M,
                "A preview is at most 256 characters long.", 9),
    Requirement("IMAP-PREVIEW-DECODED", 8970, "3.3", M,
                "A preview is UTF-8 text, not content-transfer-encoded.", 9),
    Requirement("IMAP-PREVIEW-PLAIN", 8970, "3.3", S,
                "A preview of a formatted body has its markup removed.", 9),
    Requirement("IMAP-PREVIEW-LAZY", 8970, "4.1", M,
                "FETCH PREVIEW (LAZY) is accepted, answered with a preview string or NIL.", 9),
    # -- extensions: UTF8=ACCEPT, COMPRESS=DEFLATE, NOTIFY (RFC 6855, 4978, 5465) ----------------
    Requirement("IMAP-UTF8-ENABLE", 6855, "3", M,
                "ENABLE UTF8=ACCEPT succeeds and its untagged ENABLED response lists "
                "UTF8=ACCEPT (RFC 5161 §3.1).", 9),
    Requirement("IMAP-UTF8-NAMES", 6855, "3", M,
                "After ENABLE UTF8=ACCEPT a UTF-8 quoted mailbox name is accepted and converted "
                "to the internal name: LIST finds it, and a client without UTF-8 sees it in "
                "modified UTF-7.", 9),
    Requirement("IMAP-UTF8-BAD-UTF8", 6855, "3", M,
                "Octets with the high bit set that are not UTF-8 in a quoted string are "
                "answered BAD, and the session goes on.", 9),
    Requirement("IMAP-UTF8-APPEND", 6855, "4", M,
                "After ENABLE UTF8=ACCEPT, APPEND with the UTF8 data extension (UTF8 "
                "(literal8)) stores the message with UTF-8 header fields octet for octet.", 9),
    Requirement("IMAP-UTF8-APPEND-LEGACY", 6855, "4", M,
                "A client that did not enable UTF8=ACCEPT gets NO to an APPEND of a message "
                "with 8-bit octets in its header fields, and nothing is stored.", 9),
    Requirement("IMAP-UTF8-SEARCH", 6855, "3", M,
                "After ENABLE UTF8=ACCEPT a SEARCH string in UTF-8, with no CHARSET, finds the "
                "message whose header holds it.", 9),
    Requirement("IMAP-UTF8-SEARCH-CHARSET", 6855, "3", S,
                "After ENABLE UTF8=ACCEPT a SEARCH with a CHARSET specification is rejected "
                "with BAD.", 9),
    Requirement("IMAP-UTF8-QUOTED", 6855, "3", M,
                "A client that did not enable UTF8=ACCEPT is never sent UTF-8 in a quoted "
                "string: not in the ENVELOPE of a message with raw UTF-8 header fields.", 9),
    Requirement("IMAP-UTF8-NO-RAW-HEADERS", 6855, "7", Y,
                "A client that did not enable UTF8=ACCEPT gets no raw UTF-8 in the ENVELOPE of "
                "a message with UTF-8 header fields: the server hides the message or sends a "
                "surrogate.", 9),
    Requirement("IMAP-COMPRESS", 4978, "3", M,
                "After COMPRESS DEFLATE is answered OK, the server compresses from right after "
                "the OK's CRLF and reads the client's commands compressed: raw DEFLATE (RFC "
                "1951, no zlib header) both ways.", 9),
    Requirement("IMAP-COMPRESS-ACTIVE", 4978, "3", M,
                "A second COMPRESS is refused with BAD, or NO with the COMPRESSIONACTIVE code, "
                "and no second layer of compression is turned on.", 9),
    # RFC 4978 §3 lists BAD for an "unknown argument" in its Result list, with no keyword; the
    # one keyword is "the server MUST NOT turn on compression" after BAD or NO: SHOULD.
    Requirement("IMAP-COMPRESS-UNKNOWN", 4978, "3", S,
                "COMPRESS with an unknown algorithm is answered BAD and compression is not "
                "turned on.", 9),
    Requirement("IMAP-NOTIFY-STATUS", 5465, "3.1", M,
                "NOTIFY SET STATUS with MessageNew for a mailbox sends a STATUS response for it "
                "with MESSAGES, UIDNEXT and UIDVALIDITY before the tagged OK.", 9),
    Requirement("IMAP-NOTIFY-OTHER-MAILBOX", 5465, "5.2", M,
                "With MessageNew and MessageExpunge asked for another mailbox, a message "
                "appended or expunged there by another session is told, with no command in "
                "progress, by an unsolicited STATUS (UIDNEXT MESSAGES) (§5.2, §5.3).", 9),
    Requirement("IMAP-NOTIFY-SELECTED", 5465, "5.2", M,
                "With SELECTED MessageNew, a message appended to the selected mailbox by "
                "another session is told, with no command in progress, by an unsolicited "
                "EXISTS followed by a FETCH of the attributes asked for.", 9),
    Requirement("IMAP-NOTIFY-MAILBOXNAME", 5465, "5.4", M,
                "With MailboxName, a mailbox created by another session is told by an "
                "unsolicited LIST, and its deletion by a LIST with \\NonExistent.", 9),
    Requirement("IMAP-NOTIFY-SUBSCRIPTION", 5465, "5.5", M,
                "With SubscriptionChange, a SUBSCRIBE by another session is told by an "
                "unsolicited LIST with the \\Subscribed attribute.", 9),
    Requirement("IMAP-NOTIFY-NONE", 5465, "3.1", M,
                "After NOTIFY NONE the events asked for before are no longer told.", 9),
    Requirement("IMAP-NOTIFY-PAIRED", 5465, "5", M,
                "NOTIFY SET with MessageNew but not MessageExpunge (or the reverse) is answered "
                "BAD.", 9),
    Requirement("IMAP-NOTIFY-BADEVENT", 5465, "3.1", M,
                "NOTIFY SET with an event the server does not support is answered NO, not "
                "BAD.", 9),
)
