"""Data of IMAP server responses (RFC 9051 §7.4, §7.5, §9): FETCH items, ENVELOPE,
BODYSTRUCTURE, LIST, STATUS, NAMESPACE, ESEARCH."""

from __future__ import annotations

import re

from harness.protocol.imap.chars import DATE_MONTHS
from harness.protocol.imap.response_tokens import TokenCursor
from harness.protocol.imap.response_values import (
    ContextUpdate,
    ESearch,
    List,
    NamespaceDescr,
    PartialResult,
    Status,
)
from harness.protocol.imap.seqset import SequenceSet

_ATT_NAME = re.compile(rb"[A-Za-z0-9.\-]+")
_SECTION_WORD = re.compile(rb"[A-Za-z.]+")
#: RFC 8474 §7: objectid = 1*255(ALPHA / DIGIT / "_" / "-")
_OBJECTID = re.compile(rb"[A-Za-z0-9_-]{1,255}")
# date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
_DATE_TIME = re.compile(
    rb'"( [0-9]|[0-9]{2})-(' + "|".join(DATE_MONTHS).encode("ascii") + rb')-([0-9]{4}) '
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-][0-9]{4})"',
    re.IGNORECASE,
)
# mbx-list-sflag: "Selectability flags; only one per LIST response"
_LIST_SFLAGS = frozenset({"\\NONEXISTENT", "\\NOSELECT", "\\MARKED", "\\UNMARKED"})


class ResponseCursor(TokenCursor):
    """Recursive-descent reader over one complete response (ending in CRLF)."""

    __slots__ = ()

    # -- FETCH -----------------------------------------------------------------------------------

    def msg_att(self) -> dict[str, object]:
        # msg-att = "(" (msg-att-dynamic / msg-att-static) *(SP (...)) ")"
        self.expect(b"(")
        items: dict[str, object] = {}
        while True:
            key, value = self.fetch_item()
            items[key] = value
            if self.accept(b")"):
                return items
            self.sp()

    def fetch_item(self) -> tuple[str, object]:
        name = self.match(_ATT_NAME, "fetch attribute").decode("ascii").upper()
        if name in ("BODY", "BINARY", "BINARY.SIZE") and self.peek() == 0x5B:
            key = name + self.section(binary=name != "BODY")
            if name != "BINARY.SIZE" and self.accept(b"<"):
                # "BODY" section ["<" number ">"] SP nstring; "BINARY" section-binary
                # ["<" number ">"] SP (nstring / literal8)
                key += f"<{self.number()}>"
                self.expect(b">")
            self.sp()
            if name == "BINARY.SIZE":
                return key, self.number()
            if name == "BINARY":
                if self.peek() == 0x7E:
                    return key, self.literal(allow_literal8=True)
                return key, self.nstring()
            return key, self.nstring()
        if name in ("BINARY", "BINARY.SIZE"):
            self.fail(f"{name} without a section")
        self.sp()
        value: object
        if name == "FLAGS":
            value = self.flag_list()
        elif name == "UID":
            value = self.nz_number()
        elif name == "RFC822.SIZE":
            value = self.number64()
        elif name == "INTERNALDATE":
            m = _DATE_TIME.match(self.data, self.pos, self.stop)
            if m is None:
                self.fail("bad INTERNALDATE date-time")
            self.pos = m.end()
            value = m.group(0)[1:-1].decode("ascii")
        elif name == "ENVELOPE":
            value = self.envelope()
        elif name in ("BODY", "BODYSTRUCTURE"):
            value = self.body(0)
        elif name in ("RFC822", "RFC822.HEADER", "RFC822.TEXT"):
            value = self.nstring()
        elif name == "MODSEQ":
            # RFC 7162: "MODSEQ" SP "(" permsg-modsequence ")"
            self.expect(b"(")
            value = self.number64()
            self.expect(b")")
        elif name in ("EMAILID", "THREADID"):
            # RFC 8474 §7: "EMAILID" SP "(" objectid ")"; "THREADID" SP ("(" objectid ")" / nil)
            if name == "THREADID" and self.is_nil():
                value = None
            else:
                self.expect(b"(")
                value = self.match(_OBJECTID, "objectid").decode("ascii")
                self.expect(b")")
        elif name == "PREVIEW":
            # RFC 8970 §6: "PREVIEW" SP nstring
            value = self.nstring_str()
        else:
            value = self.generic()
        return name, value

    def section(self, *, binary: bool) -> str:
        # section = "[" [section-spec] "]"; section-binary = "[" [section-part] "]"
        start = self.pos
        self.expect(b"[")
        if self.peek() != 0x5D:
            if self.peek() in range(0x30, 0x3A):
                self.nz_number()
                while (
                    self.data.startswith(b".", self.pos)
                    and self.data[self.pos + 1 : self.pos + 2].isdigit()
                ):
                    self.pos += 1
                    self.nz_number()
                if not binary and self.accept(b"."):
                    self.section_text(after_part=True)
            elif binary:
                self.fail("expected section-part")
            else:
                self.section_text(after_part=False)
        self.expect(b"]")
        return self.data[start : self.pos].decode("ascii", errors="replace").upper()

    def section_text(self, *, after_part: bool) -> None:
        word = self.match(_SECTION_WORD, "section text").upper()
        if word in (b"HEADER.FIELDS", b"HEADER.FIELDS.NOT"):
            # "HEADER.FIELDS" [".NOT"] SP header-list; header-list = "(" header-fld-name
            # *(SP header-fld-name) ")"
            self.sp()
            self.expect(b"(")
            self.astring()
            while not self.accept(b")"):
                self.sp()
                self.astring()
        elif word in (b"HEADER", b"TEXT") or (word == b"MIME" and after_part):
            return
        else:
            self.fail(f"bad section text {word.decode('ascii', 'replace')!r}")

    def address_list(self) -> tuple[tuple[str | None, ...], ...] | None:
        # env-from = "(" 1*address ")" / nil
        if self.is_nil():
            return None
        self.expect(b"(")
        addresses: list[tuple[str | None, ...]] = []
        while True:
            # address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"
            self.expect(b"(")
            fields = [self.nstring_str()]
            for _ in range(3):
                self.sp()
                fields.append(self.nstring_str())
            self.expect(b")")
            addresses.append(tuple(fields))
            if self.accept(b")"):
                return tuple(addresses)

    def envelope(self) -> tuple[object, ...]:
        # envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP
        #            env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"
        self.expect(b"(")
        fields: list[object] = [self.nstring_str()]
        self.sp()
        fields.append(self.nstring_str())
        for _ in range(6):
            self.sp()
            fields.append(self.address_list())
        for _ in range(2):
            self.sp()
            fields.append(self.nstring_str())
        self.expect(b")")
        return tuple(fields)

    def body_fld_param(self) -> tuple[str, ...] | None:
        # body-fld-param = "(" string SP string *(SP string SP string) ")" / nil
        if self.is_nil():
            return None
        self.expect(b"(")
        values = [self.string_str()]
        self.sp()
        values.append(self.string_str())
        while not self.accept(b")"):
            self.sp()
            values.append(self.string_str())
            self.sp()
            values.append(self.string_str())
        return tuple(values)

    def body_extension(self, depth: int) -> object:
        # body-extension = nstring / number / number64 / "(" body-extension *(SP ...) ")"
        if depth > 64:
            self.fail("nesting too deep")
        c = self.peek()
        if c == 0x28:
            self.pos += 1
            items = [self.body_extension(depth + 1)]
            while not self.accept(b")"):
                self.sp()
                items.append(self.body_extension(depth + 1))
            return tuple(items)
        if c in range(0x30, 0x3A):
            return self.number64()
        return self.nstring_str()

    def body(self, depth: int) -> tuple[object, ...]:
        # body = "(" (body-type-1part / body-type-mpart) ")"
        if depth > 64:
            self.fail("body structure nested too deep")
        self.expect(b"(")
        fields: list[object] = []
        if self.peek() == 0x28:
            # body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
            while self.peek() == 0x28:
                fields.append(self.body(depth + 1))
            self.sp()
            fields.append(self.string_str())
        else:
            media_type = self.string_str()
            self.sp()
            subtype = self.string_str()
            fields += [media_type, subtype]
            # body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
            #               body-fld-octets
            self.sp()
            fields.append(self.body_fld_param())
            self.sp()
            fields.append(self.nstring_str())
            self.sp()
            fields.append(self.nstring_str())
            self.sp()
            fields.append(self.string_str())
            self.sp()
            fields.append(self.number())
            if media_type.upper() == "TEXT":
                # body-type-text = media-text SP body-fields SP body-fld-lines
                self.sp()
                fields.append(self.number64())
            elif media_type.upper() == "MESSAGE" and subtype.upper() in ("RFC822", "GLOBAL"):
                # body-type-msg = media-message SP body-fields SP envelope SP body SP
                #                 body-fld-lines
                self.sp()
                fields.append(self.envelope())
                self.sp()
                fields.append(self.body(depth + 1))
                self.sp()
                fields.append(self.number64())
        while self.accept(b" "):
            fields.append(self.body_extension(depth + 1))
        self.expect(b")")
        return tuple(fields)

    # -- mailbox data ----------------------------------------------------------------------------

    def mailbox_list(self, *, lsub: bool) -> List:
        # mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP
        #                mailbox [SP mbox-list-extended]
        self.expect(b"(")
        attributes: list[str] = []
        if not self.accept(b")"):
            while True:
                self.expect(b"\\", "\\ before a mailbox attribute")
                attributes.append("\\" + self.atom())
                if self.accept(b")"):
                    break
                self.sp()
        if sum(1 for a in attributes if a.upper() in _LIST_SFLAGS) > 1:
            self.fail("more than one selectability attribute (mbx-list-sflag)")
        self.sp()
        delimiter: str | None = None
        if not self.is_nil():
            start = self.pos
            raw = self.quoted()
            text = raw.decode("utf-8")
            if len(text) != 1:
                self.pos = start
                self.fail("hierarchy delimiter is not one QUOTED-CHAR")
            delimiter = text
        self.sp()
        mailbox = self.mailbox()
        extended: list[tuple[str, object]] = []
        if self.accept(b" "):
            # mbox-list-extended = "(" [mbox-list-extended-item *(SP ...)] ")"
            self.expect(b"(")
            if not self.accept(b")"):
                while True:
                    tag = self.astring().decode("utf-8", errors="replace").upper()
                    self.sp()
                    extended.append((tag, self.generic()))
                    if self.accept(b")"):
                        break
                    self.sp()
        return List(tuple(attributes), delimiter, mailbox, tuple(extended), lsub)

    def status_data(self) -> Status:
        # "STATUS" SP mailbox SP "(" [status-att-list] ")"
        mailbox = self.mailbox()
        self.sp()
        self.expect(b"(")
        items: dict[str, object] = {}
        if not self.accept(b")"):
            while True:
                name = self.keyword()
                self.sp()
                value: object
                if name in ("MESSAGES", "UNSEEN", "DELETED", "RECENT"):
                    value = self.number()
                elif name in ("UIDNEXT", "UIDVALIDITY"):
                    value = self.nz_number()
                elif name in ("SIZE", "HIGHESTMODSEQ"):
                    value = self.number64()
                elif name == "MAILBOXID":
                    # RFC 8474 §4.3: "MAILBOXID" SP "(" objectid ")"
                    self.expect(b"(")
                    value = self.match(_OBJECTID, "objectid").decode("ascii")
                    self.expect(b")")
                else:
                    value = self.generic()
                items[name] = value
                if self.accept(b")"):
                    break
                self.sp()
        return Status(mailbox, items)

    def esearch(self) -> ESearch:
        # esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)
        tag: str | None = None
        uid = False
        if self.data.startswith(b" (", self.pos):
            self.pos += 2
            if self.keyword() != "TAG":
                self.fail("expected TAG in search-correlator")
            self.sp()
            tag = self.astring().decode("utf-8", errors="replace")
            self.expect(b")")
        data: dict[str, object] = {}
        updates: list[ContextUpdate] = []
        first = True
        while self.accept(b" "):
            name = self.keyword()
            if first and name == "UID" and (self.at_end() or self.peek() == 0x20):
                uid = True
                first = False
                continue
            first = False
            self.sp()
            if name in ("MIN", "MAX"):
                data[name] = self.nz_number()
            elif name == "COUNT":
                data[name] = self.number()
            elif name == "ALL":
                data[name] = self.uid_set()
            elif name in ("ADDTO", "REMOVEFROM"):
                updates += self._context_updates(name)
            elif name == "PARTIAL":
                data[name] = self._partial_result()
            else:
                data[name] = self.generic()
        return ESearch(tag, uid, data, tuple(updates))

    def _sequence_set(self) -> SequenceSet:
        raw = self.uid_set()
        return SequenceSet.parse(str(raw))

    def _context_updates(self, kind: str) -> list[ContextUpdate]:
        # RFC 5267 §5: ret-data-addto = "ADDTO" SP "(" context-position SP sequence-set
        #                  *(SP context-position SP sequence-set) ")"  (REMOVEFROM alike)
        self.expect(b"(")
        pairs: list[ContextUpdate] = []
        while True:
            position = self.number()
            self.sp()
            pairs.append(ContextUpdate(kind, position, self._sequence_set()))
            if self.accept(b")"):
                return pairs
            self.sp()

    def _partial_result(self) -> PartialResult:
        # RFC 5267 §5: ret-data-partial = "PARTIAL" SP "(" partial-range SP partial-results ")"
        # partial-range = nz-number ":" nz-number; partial-results = sequence-set / "NIL"
        self.expect(b"(")
        first = self.nz_number()
        self.expect(b":")
        last = self.nz_number()
        self.sp()
        numbers = None if self.is_nil() else self._sequence_set()
        self.expect(b")")
        return PartialResult(first, last, numbers)

    def namespace(self) -> tuple[NamespaceDescr, ...] | None:
        # namespace = nil / "(" 1*namespace-descr ")"
        if self.is_nil():
            return None
        self.expect(b"(")
        descrs: list[NamespaceDescr] = []
        while True:
            # namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil)
            #                   [namespace-response-extensions] ")"
            self.expect(b"(")
            prefix = self.string_str()
            self.sp()
            delimiter: str | None = None
            if not self.is_nil():
                delimiter = self.quoted().decode("utf-8")
                if len(delimiter) != 1:
                    self.fail("namespace delimiter is not one QUOTED-CHAR")
            extensions: list[tuple[str, tuple[str, ...]]] = []
            while self.accept(b" "):
                # namespace-response-extension = SP string SP "(" string *(SP string) ")"
                name = self.string_str()
                self.sp()
                self.expect(b"(")
                values = [self.string_str()]
                while not self.accept(b")"):
                    self.sp()
                    values.append(self.string_str())
                extensions.append((name, tuple(values)))
            self.expect(b")")
            descrs.append((prefix, delimiter, tuple(extensions)))
            if self.accept(b")"):
                return tuple(descrs)
