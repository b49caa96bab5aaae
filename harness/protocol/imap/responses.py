"""Strict incremental parser of IMAP server responses (RFC 9051 §9, RFC 3501 §9), for clients;
the one import point of the response values."""

from __future__ import annotations

import re
from typing import NoReturn

from harness.protocol.errors import IMAPSyntaxError, RemoteProtocolError
from harness.protocol.imap.chars import ATOM_CHAR, TAG_CHAR, TEXT_CHAR, byte_class, run_of
from harness.protocol.imap.response_data import ResponseCursor
from harness.protocol.imap.response_tokens import STRICT_CODES
from harness.protocol.imap.response_values import (
    MAX_NUMBER,
    MAX_NUMBER64,
    STATUS_BAD,
    STATUS_BYE,
    STATUS_NO,
    STATUS_OK,
    STATUS_PREAUTH,
    Capability,
    ContextUpdate,
    Continuation,
    Enabled,
    ESearch,
    Exists,
    Expunge,
    Fetch,
    Flags,
    Id,
    List,
    Namespace,
    NamespaceDescr,
    PartialResult,
    Recent,
    Response,
    ResponseCode,
    Search,
    Sort,
    Status,
    Tagged,
    Thread,
    ThreadNode,
    Untagged,
    UntaggedResponse,
    UntaggedStatus,
    Vanished,
)
from harness.protocol.imap.seqset import SequenceSet

__all__ = [
    "Capability",
    "Continuation",
    "ContextUpdate",
    "ESearch",
    "Enabled",
    "Exists",
    "Expunge",
    "Fetch",
    "Flags",
    "Id",
    "List",
    "MAX_NUMBER",
    "MAX_NUMBER64",
    "Namespace",
    "NamespaceDescr",
    "Recent",
    "Response",
    "ResponseCode",
    "ResponseParser",
    "STATUS_BAD",
    "STATUS_BYE",
    "STATUS_NO",
    "STATUS_OK",
    "STATUS_PREAUTH",
    "PartialResult",
    "Search",
    "Sort",
    "Status",
    "Tagged",
    "Thread",
    "ThreadNode",
    "Untagged",
    "UntaggedResponse",
    "UntaggedStatus",
    "Vanished",
    "parse_response",
]

_TAGGED_STATUSES = frozenset({STATUS_OK, STATUS_NO, STATUS_BAD})
_UNTAGGED_STATUSES = frozenset({STATUS_OK, STATUS_NO, STATUS_BAD, STATUS_BYE, STATUS_PREAUTH})
# tag = 1*<any ASTRING-CHAR except "+">
_TAG = run_of(TAG_CHAR)
_LITERAL_AT_LINE_END = re.compile(rb"~?\{([0-9]{1,19})(\+?)\}\Z")


def _parse(raw: bytes) -> Response:
    """One complete response (ending in CRLF): the fast path's value when it has one, else the
    grammar's."""
    response = _parse_fast(raw)
    if response is not None:
        return response
    return _parse_grammar(raw)


def _parse_grammar(raw: bytes) -> Response:
    """The full grammar (RFC 9051 §9): every response, and every error's message."""
    cur = ResponseCursor(raw)
    if cur.accept(b"+"):
        # continue-req = "+" SP (resp-text / base64) CRLF
        cur.sp()
        code, text = cur.resp_text()
        cur.finish()
        return Continuation(text, code)
    if cur.accept(b"*"):
        cur.sp()
        response = _untagged(cur)
        cur.finish()
        return response
    # response-tagged = tag SP resp-cond-state CRLF
    tag = cur.match(_TAG, 'tag, "*" or "+"').decode("ascii")
    cur.sp()
    status = cur.keyword()
    if status not in _TAGGED_STATUSES:
        cur.fail(f"tagged status must be OK, NO or BAD, not {status!r}")
    cur.sp()
    code, text = cur.resp_text()
    cur.finish()
    return Tagged(tag, status, code, text)


# ---------------------------------------------------------------------------------------------
# The fast path
#
# A load run's sessions spend most of their parsing on a few shapes: "* n FETCH (UID n FLAGS
# (...))" for every message a reader polls, "* n EXISTS" / "EXPUNGE" / "RECENT", and the tagged
# "OK text" that ends each command. The grammar reads them through a dozen cursor calls each;
# these patterns read them in one match and build the very values the grammar builds (==, the
# FETCH items in the same order). They are stricter than the grammar, never looser: upper-case
# keywords, no leading zeros, flags and text in ASCII, a response code only when it is a bare
# atom without a syntax of its own. What they do not match, and a number out of the grammar's
# range, goes to the grammar, so every other response and every error (its message, its offset)
# is the grammar's: the fast path never accepts what the grammar refuses, and never raises.
# tests/unit/test_imap_fast_path.py holds both sides to the same values.

#: A flag of a FETCH response's FLAGS: flag-fetch = flag / "\Recent"; flag = "\" atom (the
#: system flags and flag-extension) / flag-keyword (atom).
_FAST_FLAG = rb"\\?" + byte_class(ATOM_CHAR) + rb"+"
#: nz-number and number, written without leading zeros; the value is checked against
#: MAX_NUMBER (and MAX_NUMBER64 for a mod-sequence) after the match, as the grammar does.
_FAST_NZ = rb"[1-9][0-9]{0,9}"
_FAST_MODSEQ = rb"(?:0|[1-9][0-9]{0,18})"
#: msg-att items of these three kinds only: "UID" SP uniqueid, "FLAGS" SP "(" [flag-fetch
#: *(SP flag-fetch)] ")", "MODSEQ" SP "(" permsg-modsequence ")" (RFC 7162 §7).
_FAST_ITEM = (
    rb"UID " + _FAST_NZ
    + rb"|FLAGS \((?:" + _FAST_FLAG + rb"(?: " + _FAST_FLAG + rb")*)?\)"
    + rb"|MODSEQ \(" + _FAST_MODSEQ + rb"\)"
)
#: "*" SP number SP ("EXISTS" / "RECENT" / "EXPUNGE" / "FETCH" SP msg-att) CRLF.
_FAST_NUMBERED = re.compile(
    rb"\* (0|" + _FAST_NZ + rb") (?:(EXISTS|RECENT|EXPUNGE)|FETCH \(((?:" + _FAST_ITEM
    + rb")(?: (?:" + _FAST_ITEM + rb"))*)\))\r\n"
)
#: The items of a FETCH the pattern above matched, one group for each kind (its value).
_FAST_ITEMS = re.compile(rb"UID ([0-9]+)|FLAGS \(([^)]*)\)|MODSEQ \(([0-9]+)\)")
#: text, in ASCII: TEXT-CHAR = <any CHAR except CR and LF>
_FAST_TEXT = byte_class(TEXT_CHAR)
#: tag SP ("OK" / "NO" / "BAD") SP resp-text CRLF, where resp-text is a text that does not
#: begin with "[", or a code that is a bare atom, alone or followed by SP text.
_FAST_TAGGED = re.compile(
    rb"(" + byte_class(TAG_CHAR) + rb"+) (OK|NO|BAD) (?:\[([A-Z][A-Z0-9-]*)\](?: (" + _FAST_TEXT
    + rb"*))?|(?!\[)(" + _FAST_TEXT + rb"*))\r\n"
)
_FAST_NUMBERED_KINDS: dict[bytes, type[Exists | Recent | Expunge]] = {
    b"EXISTS": Exists, b"RECENT": Recent, b"EXPUNGE": Expunge}
_FAST_STATUSES = {b"OK": STATUS_OK, b"NO": STATUS_NO, b"BAD": STATUS_BAD}


def _parse_fast(raw: bytes) -> Response | None:
    """The value of *raw* when it is one of the common responses the patterns above read;
    None when it is not (or a number is out of range), for the grammar to parse or refuse."""
    if raw.startswith(b"* "):
        m = _FAST_NUMBERED.fullmatch(raw)
        if m is None:
            return None
        number = int(m[1])
        if number > MAX_NUMBER:
            return None
        word = m[2]
        if word is not None:
            if number == 0 and word == b"EXPUNGE":
                return None
            return _FAST_NUMBERED_KINDS[word](number)
        if number == 0:
            return None
        items: dict[str, object] = {}
        for item in _FAST_ITEMS.finditer(m[3]):
            which = item.lastindex or 0
            value = item[which]
            if which == 2:
                items["FLAGS"] = tuple(value.decode("ascii").split(" ")) if value else ()
            elif which == 1:
                uid = int(value)
                if uid > MAX_NUMBER:
                    return None
                items["UID"] = uid
            else:
                modseq = int(value)
                if modseq > MAX_NUMBER64:
                    return None
                items["MODSEQ"] = modseq
        return Fetch(number, items)
    m = _FAST_TAGGED.fullmatch(raw)
    if m is None:
        return None
    name = m[3]
    if name is None:
        return Tagged(m[1].decode("ascii"), _FAST_STATUSES[m[2]], None, m[5].decode("ascii"))
    code = name.decode("ascii")
    if code in STRICT_CODES:
        return None  # a code with a syntax of its own: the grammar reads (or refuses) it
    text = m[4]
    return Tagged(m[1].decode("ascii"), _FAST_STATUSES[m[2]], ResponseCode(code),
                  "" if text is None else text.decode("ascii"))


_NUMBERED_RESPONSES = frozenset({"EXISTS", "RECENT", "EXPUNGE", "FETCH"})
_KEYWORD_RESPONSES = _UNTAGGED_STATUSES | {
    "CAPABILITY",
    "ENABLED",
    "FLAGS",
    "LIST",
    "LSUB",
    "STATUS",
    "SEARCH",
    "ESEARCH",
    "SORT",
    "THREAD",
    "NAMESPACE",
    "ID",
    "VANISHED",
}


def _untagged(cur: ResponseCursor) -> UntaggedResponse:
    if cur.peek() in range(0x30, 0x3A):
        start = cur.pos
        number = cur.number()
        cur.sp()
        kind = cur.keyword()
        if kind == "EXISTS":
            return Exists(number)
        if kind == "RECENT":
            return Recent(number)
        if kind in ("EXPUNGE", "FETCH"):
            # message-data = nz-number SP ("EXPUNGE" / ("FETCH" SP msg-att))
            if number == 0:
                cur.pos = start
                cur.fail(f"{kind} needs a non-zero message number")
            if kind == "EXPUNGE":
                return Expunge(number)
            cur.sp()
            return Fetch(number, cur.msg_att())
        if kind in _KEYWORD_RESPONSES:
            cur.fail(f"{kind} does not take a leading number")
        return Untagged(kind, number, _generic_rest(cur))
    kind = cur.keyword()
    if kind in _NUMBERED_RESPONSES:
        cur.fail(f"{kind} needs a leading number")
    if kind in _UNTAGGED_STATUSES:
        cur.sp()
        code, text = cur.resp_text()
        return UntaggedStatus(kind, code, text)
    if kind == "CAPABILITY":
        return Capability(cur.capability_data())
    if kind == "ENABLED":
        # enable-data = "ENABLED" *(SP capability)
        caps: list[str] = []
        while cur.accept(b" "):
            caps.append(cur.atom())
        return Enabled(tuple(caps))
    if kind == "FLAGS":
        cur.sp()
        return Flags(cur.flag_list())
    if kind in ("LIST", "LSUB"):
        cur.sp()
        return cur.mailbox_list(lsub=kind == "LSUB")
    if kind == "STATUS":
        cur.sp()
        return cur.status_data()
    if kind == "SEARCH":
        # obsolete-search-response = "SEARCH" *(SP nz-number); RFC 7162 §7 adds
        # "SEARCH" [1*(SP nz-number) SP search-sort-mod-seq].
        numbers, modseq = _numbers_and_modseq(cur)
        return Search(numbers, modseq)
    if kind == "ESEARCH":
        return cur.esearch()
    if kind == "SORT":
        # RFC 5256 §5: sort-data = "SORT" *(SP nz-number); RFC 7162 §7 adds
        # "SORT" [1*(SP nz-number) SP search-sort-mod-seq].
        sorted_numbers, sort_modseq = _numbers_and_modseq(cur)
        return Sort(sorted_numbers, sort_modseq)
    if kind == "THREAD":
        # RFC 5256 §5: thread-data = "THREAD" [SP 1*thread-list]
        threads: list[ThreadNode] = []
        if cur.accept(b" "):
            threads.append(_thread_list(cur, 0))
            while cur.peek() == 0x28:
                threads.append(_thread_list(cur, 0))
        return Thread(tuple(threads))
    if kind == "VANISHED":
        # expunged-resp = "VANISHED" [SP "(EARLIER)"] SP known-uids (RFC 7162 §7); known-uids
        # is a sequence-set of UIDs in which "*" is not allowed.
        cur.sp()
        earlier = cur.accept(b"(")
        if earlier:
            if cur.keyword() != "EARLIER":
                cur.fail("expected (EARLIER)")
            cur.expect(b")")
            cur.sp()
        return Vanished(earlier, SequenceSet.parse(str(cur.uid_set())))
    if kind == "NAMESPACE":
        # namespace-response = "NAMESPACE" SP namespace SP namespace SP namespace
        cur.sp()
        personal = cur.namespace()
        cur.sp()
        other = cur.namespace()
        cur.sp()
        return Namespace(personal, other, cur.namespace())
    if kind == "ID":
        # RFC 2971 §4: id_params_list ::= "(" #(string SPACE nstring) ")" / nil
        cur.sp()
        if cur.is_nil():
            return Id(None)
        cur.expect(b"(")
        params: list[tuple[str, str | None]] = []
        if not cur.accept(b")"):
            while True:
                key = cur.string_str()
                cur.sp()
                params.append((key, cur.nstring_str()))
                if cur.accept(b")"):
                    break
                cur.sp()
        return Id(tuple(params))
    return Untagged(kind, None, _generic_rest(cur))


def _numbers_and_modseq(cur: ResponseCursor) -> tuple[tuple[int, ...], int | None]:
    # *(SP nz-number), or 1*(SP nz-number) SP search-sort-mod-seq (RFC 7162 §7);
    # search-sort-mod-seq = "(" "MODSEQ" SP mod-sequence-value ")"
    numbers: list[int] = []
    while cur.accept(b" "):
        if numbers and cur.accept(b"("):
            if cur.keyword() != "MODSEQ":
                cur.fail("expected MODSEQ in search-sort-mod-seq")
            cur.sp()
            modseq = cur.number64()
            cur.expect(b")")
            return tuple(numbers), modseq
        numbers.append(cur.nz_number())
    return tuple(numbers), None


#: Deepest thread-list nesting accepted ("There is no limit to the nesting of threads", RFC 5256
#: §4; a bound keeps the parser's recursion finite).
_MAX_THREAD_DEPTH = 200


def _thread_list(cur: ResponseCursor, depth: int) -> ThreadNode:
    """RFC 5256 §5: thread-list = "(" (thread-members / thread-nested) ")";
    thread-members = nz-number *(SP nz-number) [SP thread-nested]; thread-nested = 2*thread-list.
    A run of numbers is a chain of parent and child; a nested set, the children of the number
    before it (or of a parent not in the answer, when no number comes first)."""
    if depth > _MAX_THREAD_DEPTH:
        cur.fail("THREAD nested too deeply")
    cur.expect(b"(")
    chain: list[int] = []
    nested: tuple[ThreadNode, ...] = ()
    if cur.peek() == 0x28:
        nested = _thread_nested(cur, depth)
    else:
        chain.append(cur.nz_number())
        while cur.accept(b" "):
            if cur.peek() == 0x28:
                nested = _thread_nested(cur, depth)
                break
            chain.append(cur.nz_number())
    cur.expect(b")")
    if not chain:
        return ThreadNode(None, nested)
    children = nested
    for number in reversed(chain):
        node = ThreadNode(number, children)
        children = (node,)
    return node


def _thread_nested(cur: ResponseCursor, depth: int) -> tuple[ThreadNode, ...]:
    # thread-nested = 2*thread-list
    nested = [_thread_list(cur, depth + 1)]
    while cur.peek() == 0x28:
        nested.append(_thread_list(cur, depth + 1))
    if len(nested) < 2:
        cur.fail("thread-nested needs at least two thread-lists")
    return tuple(nested)


def _generic_rest(cur: ResponseCursor) -> tuple[object, ...]:
    values: list[object] = []
    while cur.accept(b" "):
        values.append(cur.generic())
    return tuple(values)


def parse_response(raw: bytes) -> Response:
    """Parse one complete response (ending in CRLF); raise RemoteProtocolError if invalid."""
    if not raw.endswith(b"\r\n"):
        raise IMAPSyntaxError("response does not end in CRLF", data=raw)
    return _parse(raw)


class ResponseParser:
    """Incremental parser: ``feed()`` bytes, then ``next_response()`` until it returns None.

    Each line (the bytes between literals) is bounded by ``max_line``, and so is the sum of the
    lines of one response; each literal, and the sum of the literals of one response, by
    ``max_literal``. The offending bytes of the last response are kept in ``last_raw``."""

    def __init__(
        self,
        max_line: int = 1_000_000,
        max_literal: int = 100 * 1024 * 1024,
        *,
        expect_greeting: bool = False,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.last_raw = b""
        self._buf = bytearray()
        self._line_start = 0  # where the current line of the current response starts
        self._scan = 0  # where to look for the next LF
        self._literal_end = 0  # when > 0: the literal must be buffered up to here
        self._line_total = 0
        self._literal_total = 0
        self._awaiting_greeting = expect_greeting
        self._greeting_only_once = expect_greeting
        self._broken: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a response."""
        return len(self._buf)

    @property
    def pending(self) -> bytes:
        """The bytes received but not yet returned as a response."""
        return bytes(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def take_pending(self) -> bytes:
        """Remove and return the bytes received after the last response, when the stream's
        encoding changes there (RFC 4978 §3: compression starts "immediately after the CRLF
        which ends the tagged OK response")."""
        data = bytes(self._buf)
        self._buf.clear()
        self._line_start = self._scan = self._literal_end = 0
        self._line_total = self._literal_total = 0
        return data

    def _error(self, message: str, data: bytes) -> NoReturn:
        # The stream cannot be resynchronised after a framing error: stay broken.
        self._broken = IMAPSyntaxError(message, data=data)
        raise self._broken

    def next_response(self) -> Response | None:
        """The next complete response, or None when more bytes are needed."""
        if self._broken is not None:
            raise self._broken
        buf = self._buf
        while True:
            if self._literal_end:
                if len(buf) < self._literal_end:
                    return None
                self._line_start = self._scan = self._literal_end
                self._literal_end = 0
            lf = buf.find(b"\n", self._scan)
            if lf < 0:
                pending = len(buf) - self._line_start
                if pending > self.max_line or self._line_total + pending > self.max_line:
                    self._error(f"line longer than {self.max_line} octets", bytes(buf[:200]))
                self._scan = len(buf)
                return None
            if lf == self._line_start or buf[lf - 1] != 0x0D:
                self._error("line ends in a bare LF, not CRLF", bytes(buf[: lf + 1]))
            line_length = lf + 1 - self._line_start
            self._line_total += line_length
            if line_length > self.max_line or self._line_total > self.max_line:
                self._error(f"response longer than {self.max_line} octets", bytes(buf[:200]))
            # A literal's announcement ends the line ("{n}" before CRLF): a line that does not
            # end in "}" has none, and is neither copied nor searched for one.
            if (
                lf - 2 >= self._line_start
                and buf[lf - 2] == 0x7D
                and self._may_have_literals(bytes(buf[: min(lf, 32)]))
            ):
                m = _LITERAL_AT_LINE_END.search(buf, self._line_start, lf - 1)
                if m is not None:
                    size = int(m.group(1))
                    self._literal_total += size
                    if size > self.max_literal or self._literal_total > self.max_literal:
                        self._error(
                            f"literal of {size} octets exceeds the limit of {self.max_literal}",
                            bytes(buf[: lf + 1]),
                        )
                    self._literal_end = lf + 1 + size
                    continue
            raw = bytes(buf[: lf + 1])
            del buf[: lf + 1]
            self._line_start = self._scan = 0
            self._line_total = self._literal_total = 0
            self.last_raw = raw
            return self._check_greeting(_parse(raw), raw)

    @staticmethod
    def _may_have_literals(head: bytes) -> bool:
        """Only untagged data responses carry literals: status responses, tagged responses and
        continuation requests end in resp-text, whose text may well end in "{5}"."""
        if not head.startswith(b"* "):
            return False
        word = head[2:].split(b" ", 1)[0].upper()
        return word.rstrip(b"\r\n") not in (b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH")

    def _check_greeting(self, response: Response, raw: bytes) -> Response:
        if self._awaiting_greeting:
            self._awaiting_greeting = False
            # greeting = "*" SP (resp-cond-auth / resp-cond-bye) CRLF
            if not (
                isinstance(response, UntaggedStatus)
                and response.status in (STATUS_OK, STATUS_PREAUTH, STATUS_BYE)
            ):
                raise IMAPSyntaxError("greeting must be * OK, * PREAUTH or * BYE", data=raw)
        elif (
            self._greeting_only_once
            and isinstance(response, UntaggedStatus)
            and response.status == STATUS_PREAUTH
        ):
            # RFC 9051 §9: PREAUTH is only in "greeting"; response-data has resp-cond-state.
            raise IMAPSyntaxError("PREAUTH after the greeting", data=raw)
        return response
