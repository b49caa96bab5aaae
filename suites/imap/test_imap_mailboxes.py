"""IMAP in depth — mailboxes: CREATE, DELETE, RENAME, SUBSCRIBE, LIST/LSUB, STATUS, INBOX,
special use, TRYCREATE."""

from __future__ import annotations

import pytest

from harness.clients.imap import CommandResult, IMAPClient
from harness.protocol.imap.responses import List, Status, UntaggedStatus
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, cleanup, mbox, message, scratch, select, session

pytestmark = pytest.mark.step(9)

SPECIAL_USE = {"\\ALL", "\\ARCHIVE", "\\DRAFTS", "\\FLAGGED", "\\JUNK", "\\SENT", "\\TRASH"}


def _claim(requirement: str | None, ok: object, detail: str) -> None:
    """A check of *requirement*, or (None) a step the test depends on but does not judge."""
    if requirement is None:
        precondition(ok, detail)
    else:
        check(requirement, ok, detail)


async def _listed(client: IMAPClient, pattern: str, reference: str = "",
                  requirement: str | None = None) -> list[List]:
    result = await client.list(reference, pattern)
    _claim(requirement, result.ok, f"LIST {reference!r} {pattern!r} answered {result.status}")
    return [r for r in result.untagged if isinstance(r, List)]


async def _names(client: IMAPClient, pattern: str, requirement: str | None = None) -> set[str]:
    return {r.mailbox for r in await _listed(client, pattern, requirement=requirement)}


async def _delimiter(client: IMAPClient, requirement: str | None = None) -> str:
    """The hierarchy delimiter LIST "" "" reports; a flat namespace makes the test not
    applicable."""
    roots = await _listed(client, "", requirement=requirement)
    _claim(requirement, len(roots) == 1, f'LIST "" "" gave {len(roots)} LIST responses, not 1')
    need(roots[0].delimiter is not None, "server has a flat namespace (no hierarchy delimiter)")
    assert roots[0].delimiter is not None
    return roots[0].delimiter


async def _create(client: IMAPClient, name: str) -> None:
    """A setup CREATE."""
    result = await client.command(f"CREATE {mbox(name)}")
    precondition(result.ok, f"setup CREATE {name} answered {result.status}")


async def _count(client: IMAPClient, name: str) -> int:
    """The MESSAGES of STATUS (a step the test depends on: IMAP-STATUS judges STATUS)."""
    result = await client.command(f"STATUS {mbox(name)} (MESSAGES)")
    precondition(result.ok, f"STATUS {name} answered {result.status}")
    values = [r.items.get("MESSAGES") for r in result.untagged if isinstance(r, Status)]
    precondition(len(values) == 1 and isinstance(values[0], int),
                 f"STATUS {name} (MESSAGES) gave {values}")
    assert isinstance(values[0], int)
    return values[0]


@pytest.mark.requirement("IMAP-CREATE")
def test_imap_create_then_list(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, set[str], str, str]:
        async with session(target, evidence) as client, scratch(client, create=False) as name:
            created = await client.command(f"CREATE {mbox(name)}")
            if not created.ok:
                return created.status, set(), name, ""
            listed = await _names(client, name)
            again = await client.command(f"CREATE {mbox(name)}")
            return created.status, listed, name, again.status

    created, listed, name, again = run(scenario())
    # RFC 9051 §6.3.4: "The OK response is returned only if a new mailbox with that name has
    # been created."; "It is an error to attempt to create ... a mailbox with a name that
    # refers to an extant mailbox."
    check("IMAP-CREATE", created == "OK", f"CREATE of a new mailbox answered {created}")
    check("IMAP-CREATE", listed == {name}, f"LIST after CREATE shows {sorted(listed)}")
    check("IMAP-CREATE", again == "NO", f"CREATE of an existing mailbox answered {again}")


@pytest.mark.requirement("IMAP-DELETE")
def test_imap_delete(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, set[str], str, str]:
        async with session(target, evidence) as client, scratch(client) as name:
            deleted = await client.command(f"DELETE {mbox(name)}")
            listed = await _names(client, name)
            again = await client.command(f"DELETE {mbox(name)}")
            inbox = await client.command("DELETE INBOX")
            return deleted.status, listed, again.status, inbox.status

    deleted, listed, again, inbox = run(scenario())
    # RFC 9051 §6.3.5: "The DELETE command permanently removes the mailbox with the given
    # name."; "It is an error to attempt to delete INBOX or a mailbox name that does not exist."
    check("IMAP-DELETE", deleted == "OK" and not listed,
          f"DELETE answered {deleted}; LIST still shows {sorted(listed)}")
    check("IMAP-DELETE", again == "NO", f"DELETE of a missing mailbox answered {again}")
    check("IMAP-DELETE", inbox == "NO", f"DELETE INBOX answered {inbox}")


@pytest.mark.requirement("IMAP-RENAME")
def test_imap_rename_keeps_messages(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, set[str], set[str], int]:
        async with session(target, evidence) as client:
            d = await _delimiter(client)
            old, new = token(), token()
            try:
                # The parent first: servers need not create it implicitly (RFC 9051 §6.3.4 MAY).
                await _create(client, old)
                await _create(client, old + d + "child")
                await append(client, old, message(old))
                renamed = await client.command(f"RENAME {mbox(old)} {mbox(new)}")
                gone = await _names(client, old + "*")
                moved = await _names(client, new + "*")
                count = await _count(client, new) if renamed.ok else -1
            finally:
                await cleanup(client, old, new)
            return renamed.status, gone, moved - {new, new + d + "child"} | (
                {new, new + d + "child"} - moved), count

    status, gone, wrong, count = run(scenario())
    check("IMAP-RENAME", status == "OK", f"RENAME answered {status}")
    # RFC 9051 §6.3.6: "The RENAME command changes the name of a mailbox."; "If the name has
    # inferior hierarchical names, then the inferior hierarchical names MUST also be renamed."
    check("IMAP-RENAME", not gone, f"old names still listed after RENAME: {sorted(gone)}")
    check("IMAP-RENAME", not wrong, f"after RENAME the new hierarchy differs by {sorted(wrong)}")
    check("IMAP-RENAME", count == 1,
          f"the renamed mailbox holds {count} messages, not the 1 it had")


@pytest.mark.requirement("IMAP-RENAME-INBOX")
def test_imap_rename_inbox_moves_messages(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, int, int]:
        # The second account: renaming INBOX moves everything in it, so not the flow's account.
        async with session(target, evidence, account_index=1) as client:
            mark, new = token(), token()
            await append(client, "INBOX", message(mark))
            renamed = await client.command(f"RENAME INBOX {mbox(new)}")
            if not renamed.ok:
                return renamed.status, -1, -1
            try:
                await select(client, "INBOX")
                left = await _marked(client, mark)
                await select(client, new)
                moved = await _marked(client, mark)
                await client.command("UID COPY 1:* INBOX")  # give the account its mail back
            finally:
                await cleanup(client, new)
            return "OK", len(left), len(moved)

    status, left, moved = run(scenario())
    # RFC 9051 §6.3.6: "Note that some servers disallow renaming INBOX by returning a tagged NO
    # response".
    need(status == "OK", f"server refuses RENAME INBOX ({status}), which RFC 9051 allows")
    # RFC 9051 §6.3.6: renaming INBOX "moves all messages in INBOX to a new mailbox with the
    # given name, leaving INBOX empty."
    check("IMAP-RENAME-INBOX", left == 0, "the message is still in INBOX after RENAME INBOX")
    check("IMAP-RENAME-INBOX", moved == 1,
          f"the new mailbox holds {moved} copies of the message, not 1")


async def _marked(client: IMAPClient, mark: str) -> tuple[int, ...]:
    """The UIDs of the selected mailbox's messages carrying *mark* (a step, not judged)."""
    result, found = await client.search(f"HEADER X-Mailharness-Token {mark}", uid=True)
    precondition(result.ok, f"UID SEARCH HEADER answered {result.status}")
    return found


@pytest.mark.requirement("IMAP-SUBSCRIBE")
def test_imap_subscribe_and_lsub(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, set[str], str, set[str]]:
        async with session(target, evidence) as client, scratch(client) as name:
            need("IMAP4REV1" in client.capabilities, "LSUB is IMAP4rev1; server is rev2 only")
            sub = await client.command(f"SUBSCRIBE {mbox(name)}")
            lsub = await client.command(f"LSUB \"\" {mbox(name)}")
            after_sub = {r.mailbox for r in lsub.untagged if isinstance(r, List)}
            unsub = await client.command(f"UNSUBSCRIBE {mbox(name)}")
            lsub = await client.command(f"LSUB \"\" {mbox(name)}")
            after_unsub = {r.mailbox for r in lsub.untagged if isinstance(r, List)}
            return sub.status, after_sub, unsub.status, after_unsub

    sub, after_sub, unsub, after_unsub = run(scenario())
    # RFC 9051 §6.3.7: "The SUBSCRIBE command adds the specified mailbox name to the server's
    # set of "active" or "subscribed" mailboxes as returned by the LIST (SUBSCRIBED) command."
    check("IMAP-SUBSCRIBE", sub == "OK" and len(after_sub) == 1,
          f"SUBSCRIBE answered {sub}; LSUB then lists {sorted(after_sub)}")
    # RFC 9051 §6.3.8: UNSUBSCRIBE "removes the specified mailbox name from the server's set".
    check("IMAP-SUBSCRIBE", unsub == "OK" and not after_unsub,
          f"UNSUBSCRIBE answered {unsub}; LSUB then lists {sorted(after_unsub)}")


@pytest.mark.requirement("IMAP-LIST-DELIMITER")
def test_imap_list_delimiter(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, list[str | None]]:
        async with session(target, evidence) as client:
            d = await _delimiter(client, "IMAP-LIST-DELIMITER")
            name = token()
            try:
                await _create(client, name + d + "a")
                listed = await _listed(client, name + "*", requirement="IMAP-LIST-DELIMITER")
            finally:
                await cleanup(client, name)
            return d, [r.delimiter for r in listed]

    d, delimiters = run(scenario())
    # RFC 9051 §6.3.9: LIST "" "" "is a special request to return the hierarchy delimiter";
    # "In all cases, a hierarchy delimiter (or NIL if there is no hierarchy) is returned."
    check("IMAP-LIST-DELIMITER", len(delimiters) == 2,
          f"LIST shows {len(delimiters)} of the 2 mailboxes made")
    check("IMAP-LIST-DELIMITER", all(x == d for x in delimiters),
          f"LIST delimiters {delimiters}, LIST \"\" \"\" said {d!r}")


@pytest.mark.requirement("IMAP-LIST-WILDCARDS")
def test_imap_list_wildcards(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, str, set[str], set[str]]:
        async with session(target, evidence) as client:
            d = await _delimiter(client)
            root = token()
            try:
                await _create(client, root + d + "a" + d + "b")
                percent = await _names(client, root + d + "%", "IMAP-LIST-WILDCARDS")
                star = await _names(client, root + d + "*", "IMAP-LIST-WILDCARDS")
            finally:
                await cleanup(client, root)
            return d, root, percent, star

    d, root, percent, star = run(scenario())
    # RFC 9051 §6.3.9: ""*" is a wildcard and matches zero or more characters at this position.
    # "%" is similar to "*", but it does not match a hierarchy delimiter."
    check("IMAP-LIST-WILDCARDS", percent == {f"{root}{d}a"}, f"'%' matched {sorted(percent)}")
    check("IMAP-LIST-WILDCARDS", star == {f"{root}{d}a", f"{root}{d}a{d}b"},
          f"'*' matched {sorted(star)}")


@pytest.mark.requirement("IMAP-INBOX-CASE")
def test_imap_inbox_case_insensitive(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, str, set[str]]:
        async with session(target, evidence) as client:
            lower = await client.command("SELECT inbox")
            mixed = await client.command('EXAMINE "InBoX"')
            listed = await _names(client, "inbox", "IMAP-INBOX-CASE")
            return lower.status, mixed.status, listed

    lower, mixed, listed = run(scenario())
    # RFC 9051 §5.1: "The case-insensitive mailbox name INBOX is a special name reserved to mean
    # "the primary mailbox for this user on this server"."
    check("IMAP-INBOX-CASE", lower == "OK", f"SELECT inbox answered {lower}")
    check("IMAP-INBOX-CASE", mixed == "OK", f'EXAMINE "InBoX" answered {mixed}')
    check("IMAP-INBOX-CASE", {n.upper() for n in listed} == {"INBOX"},
          f'LIST "" inbox gave {sorted(listed)}')


@pytest.mark.requirement("IMAP-SPECIAL-USE")
def test_imap_special_use_attributes(target: Target, evidence: Evidence) -> None:
    async def scenario() -> dict[str, list[str]]:
        async with session(target, evidence) as client:
            need("SPECIAL-USE" in client.capabilities, "server does not advertise SPECIAL-USE")
            marked: dict[str, list[str]] = {}
            selectable: set[str] = set()
            for r in await _listed(client, "*", requirement="IMAP-SPECIAL-USE"):
                for attr in r.attributes:
                    if attr.upper() in SPECIAL_USE:
                        marked.setdefault(attr.upper(), []).append(r.mailbox)
                if not {a.upper() for a in r.attributes} & {"\\NOSELECT", "\\NONEXISTENT"}:
                    selectable.add(r.mailbox)
            for names in marked.values():
                for name in names:
                    if name not in selectable:
                        continue  # RFC 6154 §2 does not ask that a special-use mailbox be selectable
                    examined = await client.select(name, readonly=True)
                    check("IMAP-SPECIAL-USE", examined.result.ok,
                          f"special-use mailbox {name} cannot be examined: "
                          f"{examined.result.status}")
            return marked

    marked = run(scenario())
    # RFC 6154 §2 (RFC 9051 §7.3.1): a server advertising SPECIAL-USE includes the attributes of
    # its special-use mailboxes in LIST responses.
    check("IMAP-SPECIAL-USE", marked,
          "SPECIAL-USE is advertised but no LIST response carries a special-use attribute")


@pytest.mark.requirement("IMAP-STATUS")
def test_imap_status_agrees_with_select(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[dict[str, object], tuple[int, int | None, int | None, int]]:
        async with session(target, evidence) as client, scratch(client) as name:
            await append(client, name, message(token()), ["\\Seen"])
            await append(client, name, message(token()))
            result = await client.command(
                f"STATUS {mbox(name)} (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
            check("IMAP-STATUS", result.ok, f"STATUS answered {result.status}")
            statuses = [r for r in result.untagged if isinstance(r, Status)]
            check("IMAP-STATUS", len(statuses) == 1,
                  f"STATUS answered with {len(statuses)} untagged STATUS responses, not 1")
            selected = await select(client, name, readonly=True)
            searched, unseen = await client.search("UNSEEN")
            precondition(searched.ok, f"SEARCH UNSEEN answered {searched.status}")
            return statuses[0].items, (selected.exists, selected.uidnext, selected.uidvalidity,
                                       len(unseen))

    items, (exists, uidnext, uidvalidity, unseen) = run(scenario())
    # RFC 9051 §6.3.11: MESSAGES "The number of messages in the mailbox", UIDNEXT "The next
    # unique identifier value", UIDVALIDITY "The unique identifier validity value", UNSEEN "The
    # number of messages that do not have the \Seen flag set".
    check("IMAP-STATUS", items.get("MESSAGES") == exists == 2,
          f"STATUS MESSAGES {items.get('MESSAGES')}, EXISTS {exists}, 2 appended")
    check("IMAP-STATUS", items.get("UIDNEXT") == uidnext,
          f"STATUS UIDNEXT {items.get('UIDNEXT')}, SELECT {uidnext}")
    check("IMAP-STATUS", items.get("UIDVALIDITY") == uidvalidity,
          f"STATUS UIDVALIDITY {items.get('UIDVALIDITY')}, SELECT {uidvalidity}")
    check("IMAP-STATUS", items.get("UNSEEN") == unseen == 1,
          f"STATUS UNSEEN {items.get('UNSEEN')}, SEARCH UNSEEN {unseen}, 1 appended unseen")


@pytest.mark.requirement("IMAP-TRYCREATE", "IMAP-NO-AUTOCREATE")
def test_imap_missing_mailbox_trycreate(target: Target, evidence: Evidence) -> None:
    # RFC 9051 §6.3.12 (and §6.4.7, §6.4.8 for COPY and MOVE): "If the destination mailbox does
    # not exist, a server MUST return an error and MUST NOT automatically create the mailbox.
    # Unless it is certain that the destination mailbox cannot be created, the server MUST send
    # the response code "[TRYCREATE]" as the prefix of the text of the tagged NO response."
    def judge(verb: str, result: CommandResult, created: set[str]) -> None:
        code = result.code.name if result.code else None
        check("IMAP-NO-AUTOCREATE", not created,
              f"{verb} to a missing mailbox answered {result.status}; LIST then shows it")
        check("IMAP-TRYCREATE", result.status == "NO",
              f"{verb} to a missing mailbox answered {result.status}")
        check("IMAP-TRYCREATE", code == "TRYCREATE",
              f"{verb} to a missing mailbox answered NO [{code}], not NO [TRYCREATE]")

    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            missing = token()
            try:
                appended = await client.append(missing, message(token()))
                judge("APPEND", appended, await _names(client, missing))
                await append(client, name, message(token()))
                await select(client, name)
                for verb in ("COPY", "MOVE"):
                    if verb == "MOVE" and "MOVE" not in client.capabilities:
                        continue
                    result = await client.command(f"{verb} 1 {mbox(missing)}")
                    judge(verb, result, await _names(client, missing))
            finally:
                await cleanup(client, missing)

    run(scenario())


@pytest.mark.requirement("IMAP-SELECT-UNSEEN")
def test_imap4rev1_select_reports_the_first_unseen(target: Target, evidence: Evidence) -> None:
    async def scenario() -> list[object]:
        async with session(target, evidence) as client, scratch(client) as name:
            need("IMAP4REV1" in client.capabilities, "the server does not offer IMAP4rev1")
            for i, flags in enumerate((("\\Seen",), (), ("\\Seen",))):
                await append(client, name, message(token(), subject=f"unseen {i}"), flags)
            selected = await client.select(name)
            precondition(selected.result.ok, f"SELECT {name} answered {selected.result.status}")
            return [r.code.value for r in selected.result.untagged
                    if isinstance(r, UntaggedStatus) and r.status == "OK" and r.code is not None
                    and r.code.name == "UNSEEN"]

    codes = run(scenario())
    # RFC 3501 §6.3.1: "REQUIRED OK untagged responses: UNSEEN, PERMANENTFLAGS, UIDNEXT,
    # UIDVALIDITY"; "OK [UNSEEN <n>] The message sequence number of the first unseen message
    # in the mailbox". Messages 1 and 3 are \Seen, so n is 2.
    check("IMAP-SELECT-UNSEEN", codes == [2],
          f"SELECT of a mailbox whose first unseen message is 2 sent UNSEEN {codes}")


@pytest.mark.requirement("IMAP-LSUB-PARENT")
def test_imap_lsub_returns_the_unsubscribed_parent_as_noselect(target: Target, evidence: Evidence) -> None:
    parent = f"mh-{token()[3:15]}"

    async def scenario() -> list[List]:
        async with session(target, evidence) as client:
            need("IMAP4REV1" in client.capabilities, "LSUB is IMAP4rev1; server is rev2 only")
            delimiter = await _delimiter(client)
            child = f"{parent}{delimiter}child"
            try:
                await _create(client, child)
                subscribed = await client.command(f"SUBSCRIBE {mbox(child)}")
                precondition(subscribed.ok, f"setup SUBSCRIBE {child} answered {subscribed.status}")
                lsub = await client.command(f'LSUB "" {mbox(parent + "%")}')
                precondition(lsub.ok, f"LSUB answered {lsub.status}")
                return [r for r in lsub.untagged if isinstance(r, List)]
            finally:
                await client.command(f"UNSUBSCRIBE {mbox(child)}")
                await cleanup(client, parent)

    listed = run(scenario())
    # RFC 3501 §6.3.9: "if "foo/bar" ... is subscribed but "foo" is not. A "%" wildcard to LSUB
    # must return foo, not foo/bar, in the LSUB response, and it MUST be flagged with the
    # \Noselect attribute."
    shown = [(r.mailbox, r.attributes) for r in listed]
    check("IMAP-LSUB-PARENT",
          len(listed) == 1 and "\\NOSELECT" in {a.upper() for a in listed[0].attributes}
          and listed[0].mailbox == parent,
          f"LSUB with % over a subscribed child of an unsubscribed parent gave {shown}")


async def _status_after_appends(target: Target, evidence: Evidence, item: str,
                                capability: str | None) -> tuple[object, list[int]]:
    """STATUS (*item*) of a fresh mailbox after two APPENDs, with the appended sizes."""
    async with session(target, evidence) as client, scratch(client) as name:
        if capability is not None:
            need(capability in client.capabilities, f"the server does not advertise {capability}")
        sizes = []
        for i in range(2):
            data = message(token(), subject=f"status {i}", body="x\r\n" * (10 + 90 * i))
            await append(client, name, data)
            sizes.append(len(data))
        result = await client.command(f"STATUS {mbox(name)} ({item})")
        precondition(result.ok, f"STATUS ({item}) answered {result.status}")
        statuses = [r for r in result.untagged if isinstance(r, Status)]
        precondition(len(statuses) == 1, f"{len(statuses)} untagged STATUS responses")
        return statuses[0].items.get(item), sizes


@pytest.mark.requirement("IMAP-STATUS-RECENT")
def test_imap_status_recent_counts_new_messages(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[object, list[int]]:
        return await _status_after_appends(target, evidence, "RECENT", "IMAP4REV1")

    recent, _ = run(scenario())
    # RFC 3501 §6.3.10: RECENT "The number of messages with the \Recent flag set"; §2.3.2:
    # \Recent means "This session is the first session to have been notified about this
    # message" -- no session has had the new mailbox selected, so both messages are recent.
    check("IMAP-STATUS-RECENT", recent == 2,
          f"STATUS (RECENT) of a mailbox no session has selected, after 2 APPENDs: {recent}")


@pytest.mark.requirement("IMAP-STATUS-SIZE")
def test_imap_status_size_is_the_mailbox_size(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[object, list[int]]:
        return await _status_after_appends(target, evidence, "SIZE", "STATUS=SIZE")

    size, sizes = run(scenario())
    # RFC 8438 §3: "SIZE: The total size of the mailbox in octets. This is not strictly
    # required to be an exact value, but it MUST be equal to or greater than the sum of the
    # values of the RFC822.SIZE FETCH message data items ... of all messages in the mailbox."
    check("IMAP-STATUS-SIZE", isinstance(size, int) and size >= sum(sizes),
          f"STATUS (SIZE) {size} after APPENDs of {sizes} octets")
