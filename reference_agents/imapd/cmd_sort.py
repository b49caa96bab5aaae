"""SORT, UID SORT, THREAD and UID THREAD (RFC 5256 §3), with ESORT's RETURN options (RFC 5267
§3) answered in an ESEARCH response. The orders and trees come from the sans-IO core
(``harness.protocol.imap.sort``); this module finds the messages and applies the quirks."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from email.utils import parsedate_tz

from harness.protocol.imap.commands import Command, SearchKey, Sort, Thread
from harness.protocol.imap.formatting import (
    format_esearch_response,
    format_sort_response,
    format_thread_response,
)
from harness.protocol.imap.headers import parse_fields
from harness.protocol.imap.mime import split_message
from harness.protocol.imap.response_values import ThreadNode
from harness.protocol.imap.sort import (
    THREAD_ALGORITHMS,
    SortMessage,
    casemap,
    decode_words,
    sort_key,
    sort_messages,
    thread_orderedsubject,
    thread_references,
)
from reference_agents.imapd import cmd_search
from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.context_sort import SortedContext, partial
from reference_agents.imapd.handler_helpers import selected_of
from reference_agents.imapd.search import MessageContext, matching_messages, uses_modseq
from reference_agents.imapd.selected import UpdateContext
from reference_agents.imapd.state import Handler, Result

#: RFC 5256 §3: "The US-ASCII and [UTF-8] charsets MUST be implemented."
_CHARSETS = ("US-ASCII", "UTF-8")


def _charset_refused(s: HandlerContext, charset: str) -> Result | None:
    # quirk imap_sort_utf8_refused: only US-ASCII is accepted
    charsets = _CHARSETS[:1] if s.config.has_quirk("imap_sort_utf8_refused") else _CHARSETS
    if charset in charsets:
        return None
    if s.config.has_quirk("imap_sort_badcharset_bad"):
        return Result("BAD", "unknown charset")  # quirk imap_sort_badcharset_bad: BAD, not NO
    # RFC 5256 §3: "NO - sort error: can't sort that charset or criteria"; the response code
    # is SEARCH's (RFC 9051 §6.4.4: "it MUST return a tagged NO response (not a BAD). This
    # response SHOULD contain the BADCHARSET response code").
    return Result("NO", "unsupported charset", "BADCHARSET (" + " ".join(charsets) + ")")


def _found(s: HandlerContext, charset: str, key: SearchKey,
           by_uid: bool) -> list[tuple[SortMessage, int]] | Result:
    """The messages of the selected mailbox that match *key* (the SEARCH matcher), in mailbox
    order, as SORT and THREAD see them (numbered by UID when *by_uid*) with their
    mod-sequences; or the refusal of *charset*."""
    refused = _charset_refused(s, charset)
    if refused is not None:
        return refused
    if uses_modseq(key):
        s.enable_condstore()  # RFC 7162 §3.1: a MODSEQ search criterion enables CONDSTORE
    return [(sort_message(s, m, m.seq, m.info.uid if by_uid else m.seq), m.info.modseq)
            for m in matching_messages(s, key)]


def sort_message(s: HandlerContext, m: MessageContext, seq: int, number: int) -> SortMessage:
    """What SORT and THREAD see of *m*, in mailbox place *seq*, named by *number*."""
    # quirk imap_thread_msgid_quoting_kept: msg-ids compared with their quoting
    unquote = not s.config.has_quirk("imap_thread_msgid_quoting_kept")
    return SortMessage.from_fields(seq, number, m.info.internaldate, m.info.size,
                                   parse_fields(split_message(m.data)[0]), unquote_ids=unquote)


def _wall_clock(message: SortMessage) -> object:
    parsed = parsedate_tz(message.date_header) if message.date_header else None
    if parsed is None:
        return message.sent.replace(tzinfo=None)
    return datetime(*parsed[:6])


def _sorted(s: HandlerContext, found: Sequence[SortMessage],
            criteria: Sequence[tuple[str, bool]]) -> list[SortMessage]:
    quirks = s.config.has_quirk

    def key_of(message: SortMessage, key: str) -> object:
        if key == "SUBJECT" and quirks("imap_sort_subject_raw"):
            # quirk imap_sort_subject_raw: the whole decoded subject, no artifacts removed
            return casemap(decode_words(message.raw_subject).strip())
        if key == "DATE" and quirks("imap_sort_date_local"):
            # quirk imap_sort_date_local: the Date header's wall-clock time, its zone ignored
            return _wall_clock(message)
        if key in ("FROM", "TO", "CC") and quirks("imap_sort_address_case_sensitive"):
            # quirk imap_sort_address_case_sensitive: the mailbox's octets, not casemapped
            return message.addresses[key]
        return sort_key(message, key)

    if quirks("imap_sort_reverse_ignored"):
        # quirk imap_sort_reverse_ignored: REVERSE has no effect
        criteria = [(key, False) for key, _ in criteria]
    if criteria[0][1] and quirks("imap_sort_reverse_whole"):
        # quirk imap_sort_reverse_whole: a leading REVERSE reverses the whole ascending order,
        # the implicit sequence-number criterion with it
        flipped = [(key, not reverse) for key, reverse in criteria]
        return sort_messages(found, flipped, key_of=key_of)[::-1]
    return sort_messages(found, criteria, key_of=key_of)


async def _sort(s: HandlerContext, cmd: Command, uid_cmd: bool) -> Result:
    assert isinstance(cmd.args, Sort)
    _, sel = selected_of(s)
    updating = "UPDATE" in (cmd.args.return_opts or ())
    reused = cmd_search.tag_in_use(s, sel, cmd.tag) if updating else None
    if reused is not None:
        return reused  # RFC 5267 §4.3: the tag of an updating SORT is BAD alike
    # quirk imap_uid_sort_numbers: UID SORT gives sequence numbers
    found = _found(s, cmd.args.charset, cmd.args.key, uid_cmd and not s.config.has_quirk(
        "imap_uid_sort_numbers"))
    if isinstance(found, Result):
        return found
    numbers = [m.number for m in _sorted(s, [m for m, _ in found], cmd.args.criteria)]
    # RFC 7162 §3.1.9: "If a client specifies a MODSEQ criterion in a SORT (or UID SORT)
    # command and the server returns a non-empty SORT result, the server MUST also append (to
    # the end of the untagged SORT response) the highest mod-sequence for all messages being
    # returned"; §3.1.10: in ESEARCH, a MODSEQ result.
    # quirk imap_sort_modseq_no_suffix: it is left out
    modseq = (max(q for _, q in found) if found and uses_modseq(cmd.args.key)
              and not s.config.has_quirk("imap_sort_modseq_no_suffix") else None)
    opts = cmd.args.return_opts
    if opts is None:
        # RFC 5256 §4: "The number(s) refer to those messages that match the search criteria.
        # For SORT, these are message sequence numbers; for UID SORT, these are unique
        # identifiers."
        s.write(format_sort_response(numbers, modseq=modseq))
        return Result("OK", f"{cmd.name} completed")
    # RFC 5267 §3.3: "If the list of return options is present but empty, then the server
    # provides the ALL return data item in an ESEARCH response."
    wanted = opts or ("ALL",)
    if s.config.has_quirk("imap_esort_ascending"):
        numbers.sort()  # quirk imap_esort_ascending: ESORT results in numeric order
    data: list[tuple[str, str]] = []
    # RFC 5267 §3.1: MIN "the lowest sorted message", MAX "the highest sorted message", ALL
    # "in the requested sort order, using a sequence-set"; no ranges are used, so none runs
    # downwards (§3.2: "12:10 SHOULD be avoided").
    if numbers and "MIN" in wanted:
        data.append(("MIN", str(numbers[0])))
    if numbers and "MAX" in wanted:
        data.append(("MAX", str(numbers[-1])))
    if numbers and "ALL" in wanted:
        data.append(("ALL", ",".join(str(n) for n in numbers)))
    if "COUNT" in wanted:
        data.append(("COUNT", str(len(numbers))))
    if "PARTIAL" in wanted and cmd.args.partial is not None:
        # RFC 5267 §4.1: CONTEXT=SORT servers "accept three additional return options for this
        # extended SORT"; §4.4 PARTIAL, counted in the sort order.
        # quirk imap_sort_partial_mailbox_order: counted in mailbox order
        ranked = sorted(numbers) if s.config.has_quirk("imap_sort_partial_mailbox_order") else numbers
        data.append(("PARTIAL", partial(ranked, *cmd.args.partial)))
    if modseq is not None:
        data.append(("MODSEQ", str(modseq)))
    s.write(format_esearch_response(cmd.tag, uid_cmd, data))
    if updating:
        _keep_sorted(s, cmd, uid_cmd, [m for m, _ in found])
    return Result("OK", f"{cmd.name} completed")


def _keep_sorted(s: HandlerContext, cmd: Command, uid_cmd: bool,
                 found: Sequence[SortMessage]) -> None:
    """Start the updating context of SORT RETURN (UPDATE) (RFC 5267 §4.3, CONTEXT=SORT): the
    CONTEXT=SEARCH one, with the sort order kept."""
    assert isinstance(cmd.args, Sort)
    _, sel = selected_of(s)
    criteria = cmd.args.criteria

    def order(messages: Sequence[SortMessage]) -> list[SortMessage]:
        return _sorted(s, messages, criteria)

    # Numbered, and tied, by UID: mailbox order whatever the expunges in between.
    sort = SortedContext(lambda m: sort_message(s, m, m.info.uid, m.info.uid), order)
    for m in found:
        uid = sel.uids[m.seq - 1]
        sort.messages[uid] = dataclasses.replace(m, seq=uid, number=uid)
    results = sort.ordered(sort.messages)
    cmd_search.keep_context(s, sel, cmd.tag, UpdateContext(
        uid_cmd, cmd_search.fixed_key(cmd.args.key, sel), results, sort))


def _threads(s: HandlerContext, algorithm: str,
             found: Sequence[SortMessage]) -> tuple[ThreadNode, ...]:
    if algorithm == "ORDEREDSUBJECT":
        threads = thread_orderedsubject(found)
        if s.config.has_quirk("imap_thread_by_subject"):
            # quirk imap_thread_by_subject: the threads in base-subject order, not by the sent
            # date of their first message
            by_number = {m.number: m for m in found}
            assert all(t.number is not None for t in threads)
            threads = tuple(sorted(threads, key=lambda t: casemap(
                by_number[t.number].subject.text if t.number is not None else "")))
        return threads
    # quirk imap_thread_no_subject_merge: step (5) of REFERENCES is skipped
    return thread_references(found,
                             merge_subjects=not s.config.has_quirk("imap_thread_no_subject_merge"))


async def _thread(s: HandlerContext, cmd: Command, uid_cmd: bool) -> Result:
    assert isinstance(cmd.args, Thread)
    if cmd.args.algorithm not in THREAD_ALGORITHMS:
        # RFC 5256 §3: "BAD - command unknown or arguments invalid": an algorithm not
        # advertised as THREAD=...
        return Result("BAD", "unknown threading algorithm")
    # quirk imap_uid_thread_numbers: UID THREAD gives sequence numbers
    found = _found(s, cmd.args.charset, cmd.args.key, uid_cmd and not s.config.has_quirk(
        "imap_uid_thread_numbers"))
    if isinstance(found, Result):
        return found
    messages = [m for m, _ in found]
    # RFC 5256 §4: "For THREAD, these are message sequence numbers; for UID THREAD, these are
    # unique identifiers."
    s.write(format_thread_response(_threads(s, cmd.args.algorithm, messages)))
    return Result("OK", f"{cmd.name} completed")


async def sort(s: HandlerContext, cmd: Command) -> Result:
    return await _sort(s, cmd, uid_cmd=False)


async def uid_sort(s: HandlerContext, cmd: Command) -> Result:
    return await _sort(s, cmd, uid_cmd=True)


async def thread(s: HandlerContext, cmd: Command) -> Result:
    return await _thread(s, cmd, uid_cmd=False)


async def uid_thread(s: HandlerContext, cmd: Command) -> Result:
    return await _thread(s, cmd, uid_cmd=True)


COMMANDS: dict[str, Handler] = {
    "SORT": sort,
    "UID SORT": uid_sort,
    "THREAD": thread,
    "UID THREAD": uid_thread,
}
