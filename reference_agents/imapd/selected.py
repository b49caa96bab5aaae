"""A session's view of its selected mailbox: the sequence-number map and the flags it has seen."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.protocol.imap.command_values import SearchKey
from harness.protocol.imap.formatting import (
    FetchValue,
    Raw,
    format_fetch_response,
    format_flags,
    format_vanished,
)
from harness.protocol.imap.seqset import SequenceSet
from reference_agents.mailstore import SYSTEM_FLAGS, MessageInfo

if TYPE_CHECKING:
    from reference_agents.imapd.context_sort import SortedContext


@dataclass(slots=True)
class UpdateContext:
    """A searching command with RETURN (UPDATE) (RFC 5267 §4.3): its program, with the sequence
    numbers in it fixed to the messages they named when it was received, and the UIDs it
    matched when the client was last told (mailbox order; for SORT, RFC 5267 §4.1 CONTEXT=SORT,
    the sort order that *sort* keeps)."""

    uid: bool
    key: SearchKey
    results: list[int]
    sort: SortedContext | None = None


class SelectedMailbox:
    """What the client has been told: ``uids[i]`` is message sequence number i+1 (RFC 9051
    §2.3.1.2), ``flags[uid]`` the flags last reported. Changes made by anyone are reported by
    :meth:`sync` only at the moments the session allows."""

    def __init__(self, name: str, read_only: bool, uidvalidity: int,
                 messages: Sequence[MessageInfo], version: int, *,
                 recent_above: int | None = None, freeze_modseq: bool = False) -> None:
        self.name = name
        self.read_only = read_only
        self.uidvalidity = uidvalidity
        #: The mailbox version of the last sync (quirk imap_modseq_race takes it as current).
        self.seen_version = version
        self.uids: list[int] = [m.uid for m in messages]
        self.flags: dict[int, frozenset[str]] = {m.uid: m.flags for m in messages}
        self.version = version
        #: IMAP4rev1 only (None in IMAP4rev2, which has no \Recent): the UIDs that are
        #: \Recent in this session — those above the mailbox's recent mark when it was told
        #: of them (RFC 3501 §2.3.2).
        self.recent: set[int] | None = None
        if recent_above is not None:
            self.recent = {u for u in self.uids if u > recent_above}
        #: Quirk imap_modseq_frozen: the MODSEQ first reported for a UID, reported ever after.
        self.frozen_modseq: dict[int, int] | None = {} if freeze_modseq else None
        #: The keywords the last FLAGS response listed (SELECT lists those in use).
        self.keywords: set[str] = {f for m in messages for f in m.flags if not f.startswith("\\")}
        #: Quirk imap_no_flags_for_new_keyword: a keyword new to the mailbox gets no FLAGS.
        self.announce_keywords = True
        #: RFC 5182 §2.1: the search result variable "$" (UIDs), empty after SELECT/EXAMINE.
        #: Quirk imap_searchres_seqs_kept: sequence numbers instead, never adjusted.
        self.search_result: frozenset[int] = frozenset()
        self.search_result_seqs: frozenset[int] | None = None
        #: Quirk imap_searchres_empty_bad: an empty "$" is refused as a bad message set.
        self.empty_search_result_bad = False
        #: RFC 5267 §4.3: the updating searches (cmd_search.UpdateContext) by their tag; they
        #: end with the selection.
        self.search_contexts: dict[str, UpdateContext] = {}
        #: Quirk imap_expunge_unannounced: a message another session expunged leaves the view
        #: without an EXPUNGE; *own_expunges* are this session's, announced as they should be.
        self.others_expunges_silent = False
        self.own_expunges: set[int] = set()

    def flags_response(self) -> bytes:
        """``* FLAGS`` with the system flags and every keyword of the mailbox announced."""
        return b"* FLAGS " + format_flags([*SYSTEM_FLAGS.values(), *sorted(self.keywords)]) + b"\r\n"

    def keywords_update(self, flags: Iterable[frozenset[str]]) -> list[bytes]:
        """A FLAGS response when *flags* hold a keyword this session was not told of, to be
        sent before anything shows it. RFC 3501 §7.2.6: the FLAGS list "identifies the flags
        ... that are applicable for this mailbox"; once a new keyword is in use, the list the
        client recorded is out of date."""
        new = {f for fs in flags for f in fs if not f.startswith("\\")} - self.keywords
        if not new or not self.announce_keywords:
            return []
        self.keywords |= new
        return [self.flags_response()]

    def modseq_value(self, info: MessageInfo) -> Raw:
        """The MODSEQ fetch value, ``(n)`` (RFC 7162 §7 permsg-modsequence)."""
        modseq = info.modseq
        if self.frozen_modseq is not None:
            modseq = self.frozen_modseq.setdefault(info.uid, modseq)
        return Raw(b"(%d)" % modseq)

    def shown_flags(self, uid: int, flags: frozenset[str]) -> frozenset[str]:
        """*flags* as this session reports them: with the session flag \\Recent added."""
        return flags | {"\\Recent"} if self.is_recent(uid) else flags

    def is_recent(self, uid: int) -> bool:
        return self.recent is not None and uid in self.recent

    def mark_recent(self, uids: Sequence[int], above: int) -> bytes:
        """Record which of the newly announced *uids* are recent here (those above the mark);
        the RECENT response that goes with the EXISTS (RFC 3501 §7.3.2)."""
        assert self.recent is not None
        self.recent.update(u for u in uids if u > above)
        return b"* %d RECENT\r\n" % len(self.recent)

    def describe(self, infos: Sequence[MessageInfo], *, modseq: bool) -> list[bytes]:
        """FETCH (UID FLAGS) responses for messages of this view, with MODSEQ once CONDSTORE is
        enabled (RFC 7162 §3.1)."""
        out: list[bytes] = []
        for info in infos:
            seq = self.seq_of(info.uid)
            if seq is None:
                continue
            values: list[tuple[str, FetchValue]] = [
                ("UID", info.uid), ("FLAGS", Raw(format_flags(self.shown_flags(info.uid, info.flags))))]
            if modseq:
                values.append(("MODSEQ", self.modseq_value(info)))
            out.append(format_fetch_response(seq, values))
        return out

    @property
    def exists(self) -> int:
        return len(self.uids)

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def resolve(self, seqset: SequenceSet, *, uid: bool) -> list[tuple[int, int]] | None:
        """(sequence number, UID) pairs of the messages *seqset* names, ascending. For sequence
        numbers, None when a number is not in use (the command gets BAD); UIDs that name no
        message are ignored (RFC 9051 §6.4.8: "A non-existent unique identifier is ignored")."""
        if seqset.saved:
            pairs = self.saved_pairs()
            return None if not pairs and self.empty_search_result_bad else pairs
        if not self.uids:
            return [] if uid else (None if seqset.ranges else [])
        largest = self.uids[-1] if uid else len(self.uids)
        picked: set[int] = set()  # indexes into uids
        for start, end in seqset.ranges:
            a = largest if start is None else start
            b = largest if end is None else end
            if a > b:
                a, b = b, a
            if uid:
                lo = bisect.bisect_left(self.uids, a)
                hi = bisect.bisect_right(self.uids, b)
                picked.update(range(lo, hi))
            else:
                if b > len(self.uids):
                    return None
                picked.update(range(a - 1, b))
        return [(i + 1, self.uids[i]) for i in sorted(picked)]

    def saved_pairs(self) -> list[tuple[int, int]]:
        """The messages of "$" (RFC 5182 §2.1), ascending: "When a message listed in the search
        result variable is EXPUNGEd, it is automatically removed from the list"; empty "$" is
        "a valid, but non-matching list of messages"."""
        if self.search_result_seqs is not None:  # quirk imap_searchres_seqs_kept
            return [(n, self.uids[n - 1]) for n in sorted(self.search_result_seqs)
                    if n <= len(self.uids)]
        return [(i + 1, uid) for i, uid in enumerate(self.uids) if uid in self.search_result]

    def sync(self, current: Sequence[MessageInfo], version: int, *, allow_expunge: bool,
             report_flags: bool = True, modseq: bool = False,
             vanished: bool = False, announce_upto: int | None = None,
             flags_with_uid: bool = False) -> list[bytes]:
        """Untagged responses that bring the client up to date with *current* (ascending UIDs):
        EXPUNGE (highest first, so each number is right when sent) or, with *vanished*, one
        VANISHED naming their UIDs (RFC 7162 §3.2.10.2); FETCH FLAGS (with UID and MODSEQ once
        CONDSTORE is enabled); EXISTS. With *announce_upto*, new messages above that UID are
        left for a later sync."""
        out: list[bytes] = []
        present = {m.uid: m for m in current}
        pending_expunge = False
        if allow_expunge:
            gone_uids: list[int] = []
            for i in range(len(self.uids) - 1, -1, -1):
                gone = self.uids[i]
                if gone not in present:
                    silent = self.others_expunges_silent and gone not in self.own_expunges
                    self.own_expunges.discard(gone)
                    if not vanished and not silent:
                        out.append(b"* %d EXPUNGE\r\n" % (i + 1))
                    gone_uids.append(gone)
                    del self.uids[i]
                    del self.flags[gone]
                    if self.recent is not None:
                        self.recent.discard(gone)
            if vanished and gone_uids:
                out.append(format_vanished(gone_uids, earlier=False))
        changed: list[frozenset[str]] = []  # flags that differ from what was reported
        for seq, uid in enumerate(self.uids, 1):
            info = present.get(uid)
            if info is None:
                pending_expunge = True
                continue
            if info.flags != self.flags[uid]:
                changed.append(info.flags)
            if info.flags != self.flags[uid] and report_flags:
                self.flags[uid] = info.flags
                shown = self.shown_flags(uid, info.flags)
                values: list[tuple[str, FetchValue]] = [("FLAGS", Raw(format_flags(shown)))]
                if modseq:
                    # RFC 7162 §3.2.4: once CONDSTORE is enabled, "both UID and mod-sequence
                    # data in all subsequent untagged FETCH responses", an external agent's too.
                    values = [("UID", uid), *values, ("MODSEQ", self.modseq_value(info))]
                elif flags_with_uid:
                    # RFC 5465 §5.1: a FlagChange notification "MUST include UID and FLAGS".
                    values = [("UID", uid), *values]
                out.append(format_fetch_response(seq, values))
        last = self.uids[-1] if self.uids else 0
        new = [m for m in current if m.uid > last]
        # A keyword of a message whose flags did not change was announced already.
        out[:0] = self.keywords_update([*changed, *(m.flags for m in new)])
        withheld = False
        if announce_upto is not None:
            withheld = any(m.uid > announce_upto for m in new)
            new = [m for m in new if m.uid <= announce_upto]
        if new:
            for m in new:
                self.uids.append(m.uid)
                self.flags[m.uid] = m.flags
            out.append(b"* %d EXISTS\r\n" % len(self.uids))
        # Leave the version stale while expunges, new messages or flag changes wait, so that the
        # next allowed moment reports them.
        self.version = -1 if pending_expunge or withheld or (changed and not report_flags) \
            else version
        self.seen_version = version
        return out
