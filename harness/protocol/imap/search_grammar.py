"""The SEARCH program (RFC 9051 §6.4.4): search keys parsed from the lexer."""

from __future__ import annotations

import re
from datetime import date

from harness.protocol.imap.chars import DIGIT
from harness.protocol.imap.command_values import (
    Search,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModseq,
    SearchNot,
    SearchObjectId,
    SearchOr,
    SearchSet,
    SearchSize,
    SearchText,
    SearchWithin,
    Sort,
    Thread,
)
from harness.protocol.imap.lexer import MONTHS, Lexer, ParseError

FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True), "UNANSWERED": ("\\Answered", False),
    "DELETED": ("\\Deleted", True), "UNDELETED": ("\\Deleted", False),
    "DRAFT": ("\\Draft", True), "UNDRAFT": ("\\Draft", False),
    "FLAGGED": ("\\Flagged", True), "UNFLAGGED": ("\\Flagged", False),
    "SEEN": ("\\Seen", True), "UNSEEN": ("\\Seen", False),
    "RECENT": ("\\Recent", True), "OLD": ("\\Recent", False),
}
HEADER_KEYS = ("BCC", "CC", "FROM", "SUBJECT", "TO")
DATE_KEYS = {"BEFORE": ("BEFORE", False), "ON": ("ON", False), "SINCE": ("SINCE", False),
             "SENTBEFORE": ("BEFORE", True), "SENTON": ("ON", True),
             "SENTSINCE": ("SINCE", True)}


def header_field(key: str) -> str:
    """The field a header key (FROM, TO, CC, BCC, SUBJECT) searches, spelled as in RFC 5322."""
    return key.capitalize()


#: RFC 8474 §7: objectid = 1*255(ALPHA / DIGIT / "_" / "-")
OBJECTID = re.compile(r"[A-Za-z0-9_-]{1,255}\Z")
_SEARCH_DATE = re.compile(rb'("?)(\d{1,2})-([A-Za-z]{3})-(\d{4})\1')
_MAX_SEARCH_DEPTH = 64
#: RFC 4731 §3.1 MIN MAX ALL COUNT, RFC 5182 §3 SAVE, RFC 5267 §5 CONTEXT UPDATE (PARTIAL,
#: which takes an argument, is read apart).
_SEARCH_RETURN = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE", "CONTEXT", "UPDATE"})


def _search_date(lx: Lexer) -> date:
    m = _SEARCH_DATE.match(lx.data, lx.pos)
    if m is None:
        raise ParseError("bad search date")
    lx.pos = m.end()
    mon = m.group(3).decode("ascii").upper()
    if mon not in MONTHS:
        raise ParseError("bad month")
    try:
        return date(int(m.group(4)), MONTHS.index(mon) + 1, int(m.group(2)))
    except ValueError as exc:
        raise ParseError("bad search date") from exc


def _search_key(lx: Lexer, depth: int = 0) -> SearchKey:
    if depth > _MAX_SEARCH_DEPTH:
        raise ParseError("search program nested too deeply")
    c = lx.peek()
    if c == ord("("):
        lx.pos += 1
        keys = _search_keys(lx, depth + 1)
        lx.expect(b")")
        return keys
    if c in DIGIT or c == ord("*") or c == ord("$"):  # RFC 5182 §3: sequence-set =/ "$"
        return SearchSet(lx.seqset(), uid=False)
    word = lx.atom().upper()
    if word == "ALL":
        return SearchAll()
    if word == "NEW":
        return SearchAnd((SearchFlag("\\Recent", True), SearchFlag("\\Seen", False)))
    if word in FLAG_KEYS:
        flag, present = FLAG_KEYS[word]
        return SearchFlag(flag, present)
    if word in ("KEYWORD", "UNKEYWORD"):
        lx.sp()
        return SearchFlag(lx.atom(), word == "KEYWORD")
    if word in HEADER_KEYS:
        lx.sp()
        return SearchHeader(header_field(word), lx.astring(), word)
    if word == "HEADER":
        lx.sp()
        field = lx.astring()
        lx.sp()
        return SearchHeader(field, lx.astring())
    if word in ("BODY", "TEXT"):
        lx.sp()
        return SearchText(lx.astring(), whole_message=word == "TEXT")
    if word in ("LARGER", "SMALLER"):
        lx.sp()
        return SearchSize(word == "LARGER", lx.number())
    if word in DATE_KEYS:
        lx.sp()
        op, sent = DATE_KEYS[word]
        return SearchDate(op, _search_date(lx), sent)
    if word == "UID":
        lx.sp()
        return SearchSet(lx.seqset(), uid=True)
    if word == "MODSEQ":
        # "MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer (RFC 7162 §7);
        # entry-name = entry-flag-name, a quoted "/flags/" attr-flag; the entry is not used.
        lx.sp()
        if lx.peek() == ord('"'):
            lx.quoted()
            lx.sp()
            if lx.atom().lower() not in ("priv", "shared", "all"):
                raise ParseError("bad entry-type-req")
            lx.sp()
        return SearchModseq(lx.mod_sequence(zero=True))
    if word in ("OLDER", "YOUNGER"):
        # RFC 5032 §3: search-key =/ ( "OLDER" / "YOUNGER" ) SP nz-number
        lx.sp()
        return SearchWithin(word == "OLDER", lx.nz_number())
    if word in ("EMAILID", "THREADID"):
        # RFC 8474 §6: "EMAILID" SP objectid / "THREADID" SP objectid
        lx.sp()
        value = lx.atom()
        if OBJECTID.match(value) is None:
            raise ParseError("an objectid is 1 to 255 letters, digits, '_' or '-'")
        return SearchObjectId(word, value)
    if word == "NOT":
        lx.sp()
        return SearchNot(_search_key(lx, depth + 1))
    if word == "OR":
        lx.sp()
        left = _search_key(lx, depth + 1)
        lx.sp()
        return SearchOr(left, _search_key(lx, depth + 1))
    raise ParseError(f"unknown search key {word}")


def _search_keys(lx: Lexer, depth: int) -> SearchKey:
    keys = [_search_key(lx, depth)]
    while lx.peek() == ord(" "):
        lx.pos += 1
        keys.append(_search_key(lx, depth))
    return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))


def _partial_range(lx: Lexer) -> tuple[int, int]:
    # RFC 5267 §5: partial-range = nz-number ":" nz-number ("cannot contain "*"")
    first = lx.nz_number()
    lx.expect(b":")
    return first, lx.nz_number()


def _return_opts(lx: Lexer, allowed: frozenset[str] = _SEARCH_RETURN, what: str = "SEARCH"
                 ) -> tuple[tuple[str, ...], tuple[int, int] | None]:
    """``RETURN (opt *(SP opt))``: the options upper-cased, and PARTIAL's range."""
    lx.expect(b"(")
    options: list[str] = []
    partial: tuple[int, int] | None = None
    while not lx.accept(b")"):
        if options:
            lx.sp()
        option = lx.atom().upper()
        if option == "PARTIAL":
            lx.sp()
            partial = _partial_range(lx)
        elif option not in allowed:
            raise ParseError(f"unknown {what} return option {option[:40]}")
        options.append(option)
    # RFC 5267 §4.4: "A single command MUST NOT contain more than one PARTIAL or ALL search
    # return option -- that is, either one PARTIAL, one ALL, or neither PARTIAL nor ALL".
    if options.count("PARTIAL") + options.count("ALL") > 1:
        raise ParseError("more than one PARTIAL or ALL return option")
    return tuple(options), partial


def parse_search(lx: Lexer) -> Search:
    lx.sp()
    return_opts: tuple[str, ...] | None = None
    partial: tuple[int, int] | None = None
    if lx.accept_word("RETURN"):
        lx.sp()
        return_opts, partial = _return_opts(lx)
        lx.sp()
    charset: str | None = None
    if lx.accept_word("CHARSET"):
        lx.sp()
        charset = lx.astring().upper()
        lx.sp()
    return Search(charset, _search_keys(lx, 0), return_opts, partial)


# -- SORT and THREAD (RFC 5256 §5, RFC 5267 §3) --------------------------------------------------

#: RFC 5256 §5 sort-key
SORT_KEYS = frozenset({"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO"})
#: RFC 5267 §3.1: "the return options specified in [ESEARCH]": MIN, MAX, ALL, COUNT; §4.1:
#: servers advertising CONTEXT=SORT "accept three additional return options for this extended
#: SORT" (CONTEXT, UPDATE, and PARTIAL, read apart).
_SORT_RETURN = frozenset({"MIN", "MAX", "ALL", "COUNT", "CONTEXT", "UPDATE"})


def _charset(lx: Lexer) -> str:
    # search-criteria = charset 1*(SP search-key); charset = atom / quoted
    charset = (lx.quoted().decode("utf-8", "replace") if lx.peek() == ord('"')
               else lx.atom())
    lx.sp()
    return charset.upper()


def parse_sort(lx: Lexer) -> Sort:
    """sort = ["UID" SP] "SORT" [SP "RETURN" SP return-opts] SP sort-criteria SP
    search-criteria; sort-criteria = "(" sort-criterion *(SP sort-criterion) ")";
    sort-criterion = ["REVERSE" SP] sort-key"""
    lx.sp()
    return_opts: tuple[str, ...] | None = None
    partial: tuple[int, int] | None = None
    if lx.accept_word("RETURN"):
        lx.sp()
        return_opts, partial = _return_opts(lx, _SORT_RETURN, "SORT")
        lx.sp()
    lx.expect(b"(")
    criteria: list[tuple[str, bool]] = []
    while True:
        reverse = lx.accept_word("REVERSE")
        if reverse:
            lx.sp()
        key = lx.atom().upper()
        if key not in SORT_KEYS:
            raise ParseError(f"unknown sort key {key[:40]}")
        criteria.append((key, reverse))
        if lx.accept(b")"):
            break
        lx.sp()
    lx.sp()
    charset = _charset(lx)
    return Sort(tuple(criteria), charset, _search_keys(lx, 0), return_opts, partial)


def parse_thread(lx: Lexer) -> Thread:
    """thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria; thread-alg =
    "ORDEREDSUBJECT" / "REFERENCES" / thread-alg-ext; thread-alg-ext = atom"""
    lx.sp()
    algorithm = lx.atom().upper()
    lx.sp()
    charset = _charset(lx)
    return Thread(algorithm, charset, _search_keys(lx, 0))
