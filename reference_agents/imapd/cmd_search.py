"""SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH (RFC 4731), SEARCHRES (RFC 5182),
WITHIN (RFC 5032) and CONTEXT=SEARCH (RFC 5267 §4): result options, "$", updates, CANCELUPDATE."""

from __future__ import annotations

from collections.abc import Sequence

from harness.protocol.imap.command_values import (
    CancelUpdate,
    SearchAnd,
    SearchKey,
    SearchNot,
    SearchOr,
    SearchSet,
)
from harness.protocol.imap.commands import Command, Search
from harness.protocol.imap.formatting import (
    format_esearch_response,
    format_search_response,
    format_untagged,
    quote,
)
from harness.protocol.imap.seqset import SequenceSet
from reference_agents.imapd import context_sort
from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.handler_helpers import selected_of
from reference_agents.imapd.search import matching_messages, uses_modseq
from reference_agents.imapd.selected import SelectedMailbox, UpdateContext
from reference_agents.imapd.state import Handler, Result
from reference_agents.mailstore import MessageInfo

#: RFC 5267 §4.3.1: "Servers MUST provide at least one updating context per client, and SHOULD
#: provide more"; beyond this many the server refuses with NOUPDATE.
MAX_UPDATE_CONTEXTS = 32

#: RFC 4731 §3.1: the result options that ask for data in the ESEARCH response (RFC 5267 §4.4
#: adds PARTIAL).
_DATA_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "PARTIAL"})


def _matching(s: HandlerContext, sel: SelectedMailbox, key: SearchKey,
              infos: dict[int, MessageInfo]) -> list[tuple[int, int, MessageInfo]]:
    """(sequence number, UID, info) of the messages of the session's view that match *key*."""
    return [(c.seq, c.info.uid, c.info) for c in matching_messages(s, key, sel, infos)]


def _charset_refused(s: HandlerContext, charset: str | None, key: SearchKey) -> Result | None:
    charsets = ("US-ASCII",) if s.config.has_quirk("imap_search_utf8_refused") else (
        "US-ASCII", "UTF-8")  # quirk imap_search_utf8_refused: UTF-8 not accepted
    if (s.utf8 and charset is not None
            and not s.config.has_quirk("imap_utf8_search_charset_accepted")):
        # RFC 6855 §3: "Once an IMAP client has enabled UTF-8 support with the "ENABLE
        # UTF8=ACCEPT" command, it MUST NOT issue a "SEARCH" command that contains a charset
        # specification.  If an IMAP server receives such a "SEARCH" command in that situation,
        # it SHOULD reject the command with a "BAD" response".
        return Result("BAD", "no CHARSET after ENABLE UTF8=ACCEPT")
    if (s.utf8 and charset is None and not str(key).isascii()
            and s.config.has_quirk("imap_utf8_search_refused")):
        return Result("NO", "unsupported charset", "BADCHARSET (US-ASCII)")  # quirk
    if charset is not None and charset not in charsets:
        # RFC 9051 §6.4.4: "If the server does not support the specified [CHARSET], it MUST
        # return a tagged NO response (not a BAD)" with [BADCHARSET].
        return Result("NO", "unsupported charset", "BADCHARSET (" + " ".join(charsets) + ")")
    return None


def _save(s: HandlerContext, sel: SelectedMailbox, opts: Sequence[str],
          found: list[tuple[int, int, MessageInfo]], uid_cmd: bool) -> None:
    """RETURN (SAVE): set "$" (RFC 5182 §2.1, §2.4)."""
    kept = found
    if ("ALL" not in opts and "COUNT" not in opts and "PARTIAL" not in opts
            and ("MIN" in opts or "MAX" in opts) and found
            and not s.config.has_quirk("imap_searchres_minmax_saves_all")):
        # RFC 5182 §2.4: "When the SAVE result option is combined with the MIN or MAX [ESEARCH]
        # result option, and none of the other ESEARCH result options are present, the
        # corresponding MIN/MAX is returned ..., but the "$" marker would contain a single
        # message as returned in the MIN/MAX return item." (Both: "one or two messages".)
        # quirk imap_searchres_minmax_saves_all: every message found is saved
        kept = [m for i, m in enumerate(found)
                if ("MIN" in opts and i == 0) or ("MAX" in opts and i == len(found) - 1)]
    if uid_cmd and s.config.has_quirk("imap_searchres_uid_as_seq"):
        # quirk: the UIDs found, later taken for sequence numbers (RFC 5182 §2.1 warns: ""$"
        # can reference IMAP message sequences or UID sequences, depending on the context")
        sel.search_result_seqs = frozenset(uid for _, uid, _ in kept)
        return
    if s.config.has_quirk("imap_searchres_seqs_kept"):
        # quirk: "$" holds sequence numbers that later EXPUNGEs do not adjust
        sel.search_result_seqs = frozenset(seq for seq, _, _ in kept)
        return
    sel.search_result_seqs = None
    # RFC 5182 §2.1: "A successful SEARCH command with the SAVE result option sets the value of
    # the search result variable to the list of messages found".
    sel.search_result = frozenset(uid for _, uid, _ in kept)


def fixed_key(key: SearchKey, sel: SelectedMailbox) -> SearchKey:
    """*key* with its message sequence numbers (and "$") replaced by the UIDs they name now.
    RFC 5267 §4.3: "any message sequence numbers used in the search program are evaluated at
    the time the command is received"."""
    if isinstance(key, SearchSet) and (not key.uid or key.seqset.saved):
        pairs = sel.resolve(key.seqset, uid=key.uid) or []
        if not pairs:
            return SearchNot(SearchSet(SequenceSet(((None, 1),)), uid=False))  # matches none
        return SearchSet(SequenceSet.from_ints(uid for _, uid in pairs), uid=True)
    if isinstance(key, SearchNot):
        return SearchNot(fixed_key(key.key, sel))
    if isinstance(key, SearchOr):
        return SearchOr(fixed_key(key.left, sel), fixed_key(key.right, sel))
    if isinstance(key, SearchAnd):
        return SearchAnd(tuple(fixed_key(k, sel) for k in key.keys))
    return key


def _partial(found: list[int], first: int, last: int) -> str:
    """RFC 5267 §4.4: "The first result is 1"; "Where a PARTIAL search return option
    references results that do not exist ... the server returns the results that are in the
    set", the payload being "the original range" and the results (NIL for none)."""
    lo, hi = min(first, last), max(first, last)  # §5: "A range 500:400 is the same as 400:500."
    subset = found[lo - 1:hi]
    numbers = SequenceSet.from_ints(subset).format() if subset else "NIL"
    return f"({first}:{last} {numbers})"


def _esearch_data(s: HandlerContext, args: Search, found: list[int],
                  modseq: int | None) -> list[tuple[str, str]] | None:
    """The ESEARCH return data for *found* (numbers or UIDs, ascending); None when the command
    is answered with no ESEARCH response at all."""
    opts = args.return_opts or ()
    if args.return_opts is not None and not set(opts) & _DATA_OPTIONS and opts:
        if set(opts) <= {"SAVE"}:
            # RFC 9051 §6.4.4: "In absence of any other SEARCH result option, the SAVE result
            # option also suppresses any ESEARCH response" (RFC 5182 §2.2 Example 1).
            return None
        wanted: tuple[str, ...] = ()
    else:
        # RFC 4731 §3.1: "If the list of result options is empty ... This is equivalent to
        # "(ALL)"" (and RFC 9051 §6.4.4 answers a plain SEARCH in IMAP4rev2 so).
        wanted = opts if set(opts) & _DATA_OPTIONS else ("ALL",)
    data: list[tuple[str, str]] = []
    # RFC 4731 §3.1: MIN, MAX and ALL: "If the SEARCH results in no matches, the server MUST
    # NOT include the ... result option in the ESEARCH response; however, it still MUST send
    # the ESEARCH response." COUNT: "This result option MUST always be included".
    if found and "MIN" in wanted:
        data.append(("MIN", str(found[0])))
    if found and "MAX" in wanted:
        data.append(("MAX", str(found[-1])))
    if found and "ALL" in wanted:
        data.append(("ALL", SequenceSet.from_ints(found).format()))
    if "COUNT" in wanted:
        data.append(("COUNT", str(len(found))))
    if "PARTIAL" in wanted and args.partial is not None:
        first, last = args.partial
        if s.config.has_quirk("imap_search_partial_from_zero"):
            first, last = first + 1, last + 1  # quirk: the range counted from 0
        data.append(("PARTIAL", _partial(found, first, last)))
    if modseq is not None:
        data.append(("MODSEQ", str(modseq)))
    return data


async def _search(s: HandlerContext, cmd: Command, uid_cmd: bool) -> Result:
    assert isinstance(cmd.args, Search)
    user, sel = selected_of(s)
    opts = cmd.args.return_opts or ()
    refused = _charset_refused(s, cmd.args.charset, cmd.args.key)
    if refused is not None:
        if "SAVE" in opts and not s.config.has_quirk("imap_searchres_failed_save_kept"):
            # RFC 5182 §2.1: "A SEARCH command with the SAVE result option that caused the
            # server to return the NO tagged response sets the value of the search result
            # variable to the empty sequence." (quirk imap_searchres_failed_save_kept: kept)
            sel.search_result, sel.search_result_seqs = frozenset(), None
        return refused
    reused = tag_in_use(s, sel, cmd.tag) if "UPDATE" in opts else None
    if reused is not None:
        return reused
    by_modseq = uses_modseq(cmd.args.key)
    if by_modseq:
        s.enable_condstore()  # RFC 7162 §3.1: SEARCH MODSEQ enables CONDSTORE
    infos = {m.uid: m for m in s.store.messages(user, sel.name)}
    matched = _matching(s, sel, cmd.args.key, infos)
    found = [uid if uid_cmd else seq for seq, uid, _ in matched]
    highest = max((info.modseq for _, _, info in matched), default=0)
    # RFC 7162 §3.1.5: after SEARCH MODSEQ with results, "the server MUST also append ... the
    # highest mod-sequence for all messages being returned" (§3.1.10: MODSEQ in ESEARCH).
    # quirk imap_search_modseq_no_suffix: it is left out.
    modseq = (highest if by_modseq and found
              and not s.config.has_quirk("imap_search_modseq_no_suffix") else None)
    if s.config.has_quirk("imap_expunge_during_search"):
        s.sync_selected(allow_expunge=True)  # quirk: EXPUNGE while answering SEARCH
    # quirk imap_esearch_as_search: plain SEARCH responses in IMAP4rev2
    plain = not s.rev2 or s.config.has_quirk("imap_esearch_as_search")
    # quirk imap_esearch_rev1_plain: an IMAP4rev1 client's RETURN is answered with SEARCH
    rev1_plain = (cmd.args.return_opts is not None and not s.rev2
                  and s.config.has_quirk("imap_esearch_rev1_plain"))
    if (cmd.args.return_opts is None and plain) or rev1_plain:
        s.write(format_search_response(found, modseq=modseq))
    else:
        # RFC 4731 §3.1: "If one or more result options described above are specified, the
        # extended SEARCH command MUST return a single ESEARCH response [IMAPABNF], instead of
        # the SEARCH response." "An extended UID SEARCH command MUST cause an ESEARCH response
        # with the UID indicator present."
        data = _esearch_data(s, cmd.args, found, modseq)
        if data is not None and not (not found and s.config.has_quirk(
                "imap_esearch_empty_no_response")):  # quirk: nothing sent for no match
            s.write(format_esearch_response(cmd.tag, uid_cmd, data))
    if "SAVE" in opts:
        _save(s, sel, opts, matched, uid_cmd)
    if "UPDATE" in opts:
        keep_context(s, sel, cmd.tag, UpdateContext(uid_cmd, fixed_key(cmd.args.key, sel),
                                                    [uid for _, uid, _ in matched]))
    return Result("OK", f"{cmd.name} completed")


def tag_in_use(s: HandlerContext, sel: SelectedMailbox, tag: str) -> Result | None:
    """The BAD for an updating searching command (SEARCH or SORT) whose tag is in use."""
    # quirk imap_context_tag_reuse_accepted: the tag's old context is replaced
    if tag in sel.search_contexts and not s.config.has_quirk("imap_context_tag_reuse_accepted"):
        # RFC 5267 §4.3: "An attempt to use UPDATE where a tag is already in use with a previous
        # searching command that itself used UPDATE SHALL result in the server rejecting the
        # searching command with a BAD response."
        return Result("BAD", "tag in use by an updating search")
    return None


def keep_context(s: HandlerContext, sel: SelectedMailbox, tag: str, ctx: UpdateContext) -> None:
    """Start updating context *tag*, or refuse it with NOUPDATE."""
    if len(sel.search_contexts) >= MAX_UPDATE_CONTEXTS:
        # RFC 5267 §4.3.1: "an untagged NO is generated during processing of the command with
        # a response-code of NOUPDATE"; "Other return options specified SHALL still be
        # honoured."
        s.write(format_untagged("NO", "too many updating searches",
                                "NOUPDATE " + quote(tag).decode("ascii")))
    else:
        sel.search_contexts[tag] = ctx


async def search(s: HandlerContext, cmd: Command) -> Result:
    return await _search(s, cmd, uid_cmd=False)


async def uid_search(s: HandlerContext, cmd: Command) -> Result:
    return await _search(s, cmd, uid_cmd=True)


async def cancelupdate(s: HandlerContext, cmd: Command) -> Result:
    assert isinstance(cmd.args, CancelUpdate)
    _, sel = selected_of(s)
    if s.config.has_quirk("imap_cancelupdate_ignored"):  # quirk: the updates go on
        return Result("OK", "CANCELUPDATE completed")
    # RFC 5267 §4.3.5: CANCELUPDATE "will prevent all updates to the contexts named in the
    # arguments from being transmitted by the server."
    for tag in cmd.args.tags:
        sel.search_contexts.pop(tag, None)
    return Result("OK", "no further updates")


def context_updates(s: HandlerContext, before: Sequence[int]) -> tuple[list[bytes], list[bytes]]:
    """The ESEARCH responses that tell the updating searches (RFC 5267 §4.3) of the changes a
    sync is about to report, *before* being the view's UIDs until then: REMOVEFROM numbered as
    before the sync, to be sent ahead of its EXPUNGEs; ADDTO numbered as after, to follow its
    EXISTS."""
    sel = s.selected
    if sel is None or not sel.search_contexts or s.user is None:
        return [], []
    try:
        infos = {m.uid: m for m in s.store.messages(s.user, sel.name)}
    except KeyError:
        return [], []
    old_seq = {uid: i for i, uid in enumerate(before, 1)}
    removals: list[bytes] = []
    additions: list[bytes] = []
    sorted_removals: list[bytes] = []
    sorted_additions: list[bytes] = []
    for tag, ctx in sel.search_contexts.items():
        matched = matching_messages(s, ctx.key, sel, infos)
        # A message expunged but not yet reported stays in the view, and in the results.
        lingering = {uid for uid in ctx.results if uid in sel.flags and uid not in infos}
        if ctx.sort is not None:
            # RFC 5267 §4.1 CONTEXT=SORT: the updates of a SORT context, in its sort order.
            removed_lines, added_lines, ctx.results = context_sort.sorted_updates(
                s, tag, ctx.uid, ctx.results, ctx.sort, matched, lingering, old_seq)
            sorted_removals += removed_lines
            sorted_additions += added_lines
            continue
        now = {m.info.uid for m in matched} | lingering
        removed = [uid for uid in ctx.results if uid not in now]
        added = sorted(now.difference(ctx.results))
        ctx.results = [uid for uid in sel.uids if uid in now]
        if removed:
            numbers = removed if ctx.uid else [old_seq[uid] for uid in removed if uid in old_seq]
            if numbers:
                # RFC 5267 §4.3.4: "a REMOVEFROM containing message sequence numbers removed as
                # a result of those messages being expunged MUST be sent prior to the expunge
                # notification itself" (context position 0: wherever they occur).
                line = format_esearch_response(tag, ctx.uid, [
                    ("REMOVEFROM", f"(0 {SequenceSet.from_ints(numbers).format()})")])
                if s.config.has_quirk("imap_context_removefrom_late"):
                    additions.append(line)  # quirk: after the EXPUNGEs, numbers gone stale
                else:
                    removals.append(line)
        if added:
            numbers = added if ctx.uid else [n for n in map(sel.seq_of, added) if n is not None]
            if numbers:
                # RFC 5267 §4.3.3: "an ADDTO containing message sequence numbers added as a
                # result of those messages being delivered or appended MUST be sent after the
                # EXISTS notification itself".
                additions.append(format_esearch_response(tag, ctx.uid, [
                    ("ADDTO", f"(0 {SequenceSet.from_ints(numbers).format()})")]))
    if s.config.has_quirk("imap_context_no_updates"):
        return sorted_removals, sorted_additions  # quirk: the updating searches are never told
    return removals + sorted_removals, additions + sorted_additions


COMMANDS: dict[str, Handler] = {
    "SEARCH": search,
    "UID SEARCH": uid_search,
    "CANCELUPDATE": cancelupdate,
}
