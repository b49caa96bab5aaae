"""CONTEXT=SORT (RFC 5267 §4): the updating contexts of SORT and UID SORT, whose ADDTO and
REMOVEFROM carry context positions in the requested (sort) order, and PARTIAL for SORT.

The updating-context machinery is CONTEXT=SEARCH's (``cmd_search``): the same table of contexts
by tag, the same tag-reuse and NOUPDATE rules, the same moments of sending. What a sorted
context adds is the order: "UPDATE contexts created with SORT or UID SORT will almost certainly
require some form of results caching" (Appendix B), so it keeps what each result sorts by."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from harness.protocol.imap.formatting import format_esearch_response
from harness.protocol.imap.sort import SortMessage
from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.search import MessageContext

Pair = tuple[int, list[int]]


@dataclass(slots=True)
class SortedContext:
    """How a sorted updating context orders its results: *make* gives what a matching message
    sorts by (numbered, and tied, by UID: mailbox order), *order* sorts such messages as the
    command's sort criteria do, and *messages* keeps them for the results (a message expunged
    but not yet reported keeps its place without its content being read again)."""

    make: Callable[[MessageContext], SortMessage]
    order: Callable[[Sequence[SortMessage]], list[SortMessage]]
    messages: dict[int, SortMessage] = field(default_factory=dict)

    def ordered(self, uids: Iterable[int]) -> list[int]:
        return [m.number for m in self.order([self.messages[uid] for uid in uids])]


def removal_pairs(old: Sequence[int], gone: set[int]) -> list[Pair]:
    """REMOVEFROM pairs that take *gone* out of *old* (results in requested order), processed
    "in the order that it appears" (RFC 5267 §4.3.4): "the results are removed at the given
    context position, meaning that the first result in the set will occupy the given context
    position before removal". Each run of neighbours is one pair, its position counted after the
    runs before it were removed."""
    pairs: list[Pair] = []
    kept = 0
    run: list[int] = []
    for uid in old:
        if uid in gone:
            run.append(uid)
            continue
        if run:
            pairs.append((kept + 1, run))
            run = []
        kept += 1
    if run:
        pairs.append((kept + 1, run))
    return pairs


def addition_pairs(new: Sequence[int], added: set[int]) -> list[Pair]:
    """ADDTO pairs that turn the results still there into *new* (requested order) by inserting
    *added* (RFC 5267 §4.3.3): "the first result in the set will occupy the new context position
    after insertion". Inserted first to last, each run lands at its final position."""
    pairs: list[Pair] = []
    for position, uid in enumerate(new, 1):
        if uid not in added:
            continue
        if pairs and pairs[-1][0] + len(pairs[-1][1]) == position:
            pairs[-1][1].append(uid)
        else:
            pairs.append((position, [uid]))
    return pairs


def ordered_set(numbers: Sequence[int]) -> str:
    """*numbers* as a sequence-set that keeps their order: ascending neighbours as ``a:b``, the
    rest comma-separated (RFC 5267 §3.2: ranges "MUST be ordered in increasing numerical order
    after expansion"; "12:10 SHOULD be avoided")."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}:{prev}")
        if n is not None:
            start = prev = n
    return ",".join(parts)


def partial(numbers: Sequence[int], first: int, last: int) -> str:
    """RFC 5267 §4.4 for SORT: results *first* to *last* of the sorted results ("The first
    result is 1"; "A range 500:400 is the same as 400:500"), in the sort order, NIL for none."""
    lo, hi = min(first, last), max(first, last)
    subset = list(numbers[lo - 1:hi])
    return f"({first}:{last} {ordered_set(subset) if subset else 'NIL'})"


def _item(s: HandlerContext, pairs: list[Pair],
          number: Callable[[int], int | None]) -> str | None:
    body = []
    for position, uids in pairs:
        numbers = [n for n in map(number, uids) if n is not None]
        if numbers:
            if s.config.has_quirk("imap_context_sort_position_zero"):
                position = 0  # quirk: position 0, as only a SEARCH context may have
            body.append(f"{position} {ordered_set(numbers)}")
    return f"({' '.join(body)})" if body else None


def sorted_updates(s: HandlerContext, tag: str, uid: bool, results: list[int],
                   sort: SortedContext, matched: Sequence[MessageContext], lingering: set[int],
                   old_seq: dict[int, int]) -> tuple[list[bytes], list[bytes], list[int]]:
    """The REMOVEFROM and ADDTO responses of sorted context *tag* whose results were *results*
    (UIDs, sort order) and now are the *matched* messages and the *lingering* ones (expunged,
    not yet reported); and the new results. RFC 5267 §4.3.2: "servers MUST generate ADDTO and
    REMOVEFROM responses such that the results are maintained in the requested order"; §4.3.3:
    only "Where the searching command is a SEARCH or UID SEARCH command, the context position
    MAY be zero", so a sorted context's positions are real ones. Sort keys do not change (a
    message's content is immutable), so no result moves: the pair REMOVEFROM then ADDTO a
    changing key would need does not arise."""
    for m in matched:
        if m.info.uid not in sort.messages:
            sort.messages[m.info.uid] = sort.make(m)
    now = {m.info.uid for m in matched} | lingering
    new = sort.ordered(now)
    gone = set(results) - now
    added = now - set(results)
    for number in gone:
        sort.messages.pop(number, None)
    removals: list[bytes] = []
    additions: list[bytes] = []
    # RFC 5267 §4.3.4: REMOVEFROM with the sequence numbers of before the changes, sent before
    # the EXPUNGEs; §4.3.3: ADDTO with those of after, sent after the EXISTS.
    removed = _item(s, removal_pairs(results, gone),
                    (lambda u: u) if uid else old_seq.get)
    if removed is not None:
        removals.append(format_esearch_response(tag, uid, [("REMOVEFROM", removed)]))
    seq_of = s.selected.seq_of if s.selected is not None else (lambda u: None)
    added_item = _item(s, addition_pairs(new, added), (lambda u: u) if uid else seq_of)
    if added_item is not None:
        additions.append(format_esearch_response(tag, uid, [("ADDTO", added_item)]))
    if s.config.has_quirk("imap_context_sort_no_updates"):
        return [], [], new  # quirk: the sorted contexts are never told
    return removals, additions, new
