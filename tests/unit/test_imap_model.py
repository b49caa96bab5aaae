"""The stateful IMAP mailbox model: its search keys and checks, each the failure of one
requirement, and a malformed response as a failure of IMAP-RESPONSE-SYNTAX."""

from __future__ import annotations

import re
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest

from harness.checks import CheckFailed, Mark, PreconditionFailed, grammar_failure
from harness.clients.imap import CommandResult, IMAPClient, SelectResult
from harness.models.imap_mailbox import (
    AGREE,
    APPENDUID,
    COPYUID,
    NO_EXPUNGE,
    RECENT_ONCE,
    REQUIREMENTS,
    SEARCH,
    SEQ_UID,
    STATIC,
    SYNTAX,
    UID_MONOTONIC,
    UIDVALIDITY,
    MailboxModel,
    ModelViolation,
    SearchKey,
    TrueMessage,
    View,
    flag_set,
    make_body,
    search_hits,
)
from harness.models.imap_mailbox_values import NEW_KEYWORD, RECIPIENTS, SEARCH_ADDRESS, SENDERS
from harness.protocol.errors import IMAPSyntaxError, RemoteProtocolError
from harness.protocol.imap.responses import (
    ESearch,
    Exists,
    Expunge,
    Fetch,
    Flags,
    Response,
    Search,
)
from harness.suite import Evidence
from harness.targets import Account, Endpoint, ProviderTarget, Target
from reference_agents.tls import TLSMaterial

HOST = "127.0.0.1"


def result(*untagged: Response, status: str = "OK") -> CommandResult:
    return CommandResult("A0001", status, None, "done", tuple(untagged))


# -- search keys, flags, messages ---------------------------------------------------------------


def message(uid: int, *flags: str) -> TrueMessage:
    return TrueMessage(uid, b"x", frozenset(flags), 0)


@pytest.mark.parametrize(
    ("key", "text", "matching"),
    [
        (SearchKey("ALL"), "ALL", [1, 2, 3]),
        (SearchKey("DELETED"), "DELETED", [2]),
        (SearchKey("UNDELETED"), "UNDELETED", [1, 3]),
        (SearchKey("UNSEEN"), "UNSEEN", [2, 3]),
        (SearchKey("KEYWORD", "mh_red"), "KEYWORD mh_red", [3]),
        (SearchKey("UNKEYWORD", "mh_red"), "UNKEYWORD mh_red", [1, 2]),
        (SearchKey("UID", lo=2, hi=1), "UID 5:3", [2, 3]),
        (SearchKey("NOT", sub=(SearchKey("SEEN"),)), "NOT SEEN", [2, 3]),
        (SearchKey("OR", sub=(SearchKey("SEEN"), SearchKey("DELETED"))),
         "OR (SEEN) (DELETED)", [1, 2]),
    ],
)
def test_search_key_text_and_model(key: SearchKey, text: str, matching: list[int]) -> None:
    uids = [1, 3, 5]
    mailbox = [message(1, "\\Seen"), message(3, "\\Deleted"), message(5, "mh_red")]
    assert key.text(uids) == text
    assert [i + 1 for i, m in enumerate(mailbox) if key.matches(m, uids)] == matching


def test_address_keys_match_the_addr_spec_whatever_the_header_spelling() -> None:
    uids = [1, 2, 3]
    mailbox = [TrueMessage(i + 1, b"x", frozenset(), 0, SENDERS[i][1], RECIPIENTS[i][1])
               for i in range(3)]
    key = SearchKey("FROM", "ANN@example.com")
    assert key.text(uids) == 'FROM "ANN@example.com"'
    assert [m.uid for m in mailbox if key.matches(m, uids)] == [2]
    assert [m.uid for m in mailbox if SearchKey("TO", "erin@example.net").matches(m, uids)] == [3]
    # The header spells the address with comments, an old-style name or inside a group: the
    # model's messages carry the addr-spec only where the field holds it as an address.
    for n, (field, addr) in enumerate((*SENDERS, *RECIPIENTS)):
        head = make_body("plain", 0, "m", (n % 3, n % 3)).split(b"\r\n\r\n")[0].decode()
        assert field in head
        assert all(addr not in other for other, _ in (*SENDERS, *RECIPIENTS) if other != field)


def test_uid_key_on_an_empty_mailbox_is_valid_syntax() -> None:
    assert SearchKey("UID", lo=1).text([]) == "UID 1:4294967295"
    assert SearchKey("UID", lo=0).text([]) == "UID 4294967295"


def test_flag_set_ignores_recent_and_case_of_system_flags() -> None:
    assert flag_set(["\\SEEN", "\\Recent", "$Label1", "\\deleted"]) == {
        "\\Seen", "\\Deleted", "$Label1"}


def test_search_hits_reads_search_and_esearch() -> None:
    assert search_hits(result(Search((2, 4)))) == [2, 4]
    assert search_hits(result(ESearch("A1", True, {"ALL": "3:5,9", "COUNT": 4}))) == [3, 4, 5, 9]
    assert search_hits(result(ESearch("A1", False, {"COUNT": 0}))) == []


@pytest.mark.parametrize("kind", ["plain", "multipart"])
def test_model_messages_are_crlf_ascii_with_headers(kind: str) -> None:
    body = make_body(kind, 3, "mark")
    assert b"\r\n\r\n" in body and body.isascii()
    assert re.search(rb"(?<!\r)\n", body) is None
    assert b"Message-ID: <mark@" in body


# -- the checks, on synthetic responses ---------------------------------------------------------


@pytest.fixture
def model() -> Iterator[MailboxModel]:
    machine = MailboxModel(cast(Target, None), Evidence())
    yield machine
    machine.teardown()


def view(*uids: int | None) -> View:
    seen = View("A", cast(IMAPClient, None))
    seen.seq = list(uids)
    return seen


def violation(check: Callable[[], object]) -> ModelViolation:
    with pytest.raises(ModelViolation) as info:
        check()
    # The failure of one requirement, as the plugin reads it (and nothing else).
    assert isinstance(info.value, CheckFailed) and info.value.requirement in REQUIREMENTS
    assert str(info.value).startswith(f"{info.value.requirement}: session ")
    return info.value


def test_expunge_during_fetch_is_a_violation(model: MailboxModel) -> None:
    model.truth = {2: message(2)}
    seen = view(1, 2)
    found = violation(lambda: model._absorb(seen, "FETCH", result(Expunge(1))))
    assert found.requirement == NO_EXPUNGE and found.session == "A"
    assert "while responding to FETCH" in str(found)
    # The UID form may carry it (RFC 9051 §7.5.1 note).
    model._absorb(seen, "UID FETCH", result(Expunge(1)))
    assert seen.seq == [2]


def test_expunge_of_a_message_nobody_removed(model: MailboxModel) -> None:
    model.truth = {1: message(1)}
    found = violation(lambda: model._absorb(view(1), "NOOP", result(Expunge(1))))
    assert found.requirement == SEQ_UID


def test_unannounced_sequence_number_and_shrinking_exists(model: MailboxModel) -> None:
    model.truth = {1: message(1)}
    found = violation(lambda: model._absorb(view(1), "NOOP", result(Fetch(2, {"UID": 7}))))
    assert found.requirement == SEQ_UID and "only 1 were announced" in str(found)
    found = violation(lambda: model._absorb(view(1, 2), "NOOP", result(Exists(1))))
    assert found.requirement == SEQ_UID


def test_sequence_number_changing_uid(model: MailboxModel) -> None:
    model.truth = {1: message(1), 2: message(2)}
    found = violation(lambda: model._absorb(view(1, 2), "FETCH", result(Fetch(1, {"UID": 2}))))
    assert found.requirement == SEQ_UID and "was UID 1, now FETCH says UID 2" in str(found)


def test_static_data_must_not_change(model: MailboxModel) -> None:
    model.truth = {1: TrueMessage(1, b"12345", frozenset(), 0)}
    seen = view(1)
    model._absorb(seen, "FETCH", result(Fetch(1, {"UID": 1, "RFC822.SIZE": 5,
                                                 "INTERNALDATE": "01-Jan-2024 00:00:00 +0000"})))
    found = violation(lambda: model._absorb(
        seen, "FETCH", result(Fetch(1, {"UID": 1, "INTERNALDATE": "02-Jan-2024 00:00:00 +0000"}))))
    assert found.requirement == STATIC and "INTERNALDATE of UID 1 changed" in str(found)
    found = violation(lambda: model._absorb(seen, "FETCH", result(Fetch(1, {"RFC822.SIZE": 4}))))
    assert found.requirement == STATIC


def test_new_uid_must_be_above_every_earlier_one(model: MailboxModel) -> None:
    model._register(view(), 5, b"x", frozenset())
    model.truth.pop(5)
    model.expunged.add(5)
    found = violation(lambda: model._register(view(), 5, b"y", frozenset()))
    assert found.requirement == UID_MONOTONIC and "a UID used before" in str(found)


def test_reported_flags_must_be_the_mailbox_flags(model: MailboxModel) -> None:
    model.truth = {1: message(1, "\\Seen")}
    found = violation(lambda: model._absorb(view(1), "NOOP",
                                            result(Fetch(1, {"FLAGS": ("\\Flagged",)}))))
    assert found.requirement == AGREE


def test_keywords_need_announcing(model: MailboxModel) -> None:
    model.truth = {1: message(1, "mh_red")}
    seen = view(1)
    found = violation(lambda: model._absorb(seen, "NOOP", result(Fetch(1, {"FLAGS": ("mh_red",)}))))
    assert found.requirement == AGREE and "never announced" in str(found)
    model._absorb(seen, "NOOP", result(Flags(("\\Seen", "mh_red")), Fetch(1, {"FLAGS": ("mh_red",)})))
    assert seen.flags[1] == {"mh_red"} and NEW_KEYWORD in model.judged


def test_a_new_keyword_needs_a_flags_response_even_under_permanentflags_star(
        model: MailboxModel) -> None:
    """PERMANENTFLAGS (\\*) lets a client create keywords; FETCH showing one still needs a FLAGS
    response naming it first (RFC 3501 §7.2.6): IMAP-FLAGS-NEW-KEYWORD, not a disagreement."""
    model.truth = {1: message(1, "mh_red")}
    model.stored_keywords = {"mh_red"}
    seen = view(1)
    seen.permanent_star, seen.keywords = True, {"$Label1"}
    found = violation(lambda: model._absorb(seen, "NOOP", result(Fetch(1, {"FLAGS": ("mh_red",)}))))
    assert found.requirement == NEW_KEYWORD and "mh_red" in str(found)


def test_recent_in_two_sessions(model: MailboxModel) -> None:
    model.truth = {1: message(1)}
    first, second = view(1), view(1)
    second.name = "B"
    model._absorb(first, "NOOP", result(Fetch(1, {"FLAGS": ("\\Recent",)})))
    found = violation(lambda: model._absorb(second, "NOOP",
                                            result(Fetch(1, {"FLAGS": ("\\Recent",)}))))
    assert found.requirement == RECENT_ONCE and "\\Recent in session A" in str(found)


def test_modseq_must_not_go_back(model: MailboxModel) -> None:
    model.truth = {1: message(1)}
    seen = view(1)
    model._absorb(seen, "NOOP", result(Fetch(1, {"MODSEQ": 10})))
    found = violation(lambda: model._absorb(seen, "NOOP", result(Fetch(1, {"MODSEQ": 9}))))
    assert found.requirement == AGREE and "MODSEQ" in str(found)


def test_uidplus_codes_name_the_mailbox_uidvalidity(model: MailboxModel) -> None:
    seen = view()
    seen.uidvalidity = 7
    model._check_validity(seen, 7, APPENDUID)
    assert violation(lambda: model._check_validity(seen, 8, APPENDUID)).requirement == APPENDUID
    assert violation(lambda: model._check_validity(seen, 8, COPYUID)).requirement == COPYUID
    assert {APPENDUID, COPYUID} <= model.judged


class Scripted:
    """A client whose SELECT and SEARCH return the results given, in order."""

    def __init__(self, *results: CommandResult | SelectResult) -> None:
        self.results = list(results)

    async def select(self, mailbox: str) -> SelectResult:
        answer = self.results.pop(0)
        assert isinstance(answer, SelectResult)
        return answer

    async def search(self, criteria: str, *, uid: bool = False) -> tuple[CommandResult, tuple[int, ...]]:
        answer = self.results.pop(0)
        assert isinstance(answer, CommandResult)
        return answer, ()


def scripted(*results: CommandResult | SelectResult) -> View:
    seen = View("B", cast(IMAPClient, Scripted(*results)))
    return seen


def selected(uidvalidity: int, status: str = "OK") -> SelectResult:
    return SelectResult(result(status=status), 0, 0, (), ("\\*",), uidvalidity, 1, False)


def test_a_new_uidvalidity_for_the_same_mailbox_fails_uidvalidity_stable(
        model: MailboxModel) -> None:
    seen = scripted(selected(7), selected(8))
    model._run(model._select(seen), "SELECT")
    found = violation(lambda: model._run(model._select(seen), "SELECT again"))
    assert found.requirement == UIDVALIDITY and "went from 7 to 8" in str(found)


def test_a_step_the_model_does_not_judge_is_a_precondition(model: MailboxModel) -> None:
    seen = scripted(selected(7, status="NO"))
    with pytest.raises(PreconditionFailed) as info:
        model._run(model._select(seen), "SELECT")
    assert info.value.detail.endswith("answered NO")
    assert model.failed and model.failure is None


def test_the_failure_marks_the_failing_example_in_the_evidence_as_kept(
        model: MailboxModel) -> None:
    earlier = model.evidence.transcript("imap model session A (earlier example)")
    earlier.server(b"* OK earlier\r\n")
    mine = model.evidence.transcript("imap model session A (this example)")
    model.transcripts.append(mine)
    mine.server(b"* OK ready\r\n")
    mine.server(b"* 1 EXPUNGE\r\n")
    model.truth = {1: message(1)}
    violation(lambda: model._absorb(view(1), "NOOP", result(Expunge(1))))
    mine.server(b"* BYE cleanup\r\n")  # after the failure: not part of its evidence
    model._keep_transcripts()
    assert model.evidence.transcripts == [mine]
    assert model.failure is not None and model.failure.marks == (Mark(0, 2),)


# -- SEARCH and messages the session has not been told of yet -----------------------------------


def searched(model: MailboxModel, seen: View, key: SearchKey, *, by_uid: bool) -> None:
    uids = sorted(model.truth)
    model._run(model._search(seen, key, key.text(uids), uids, by_uid), "SEARCH")


@pytest.mark.parametrize("by_uid", [False, True])
@pytest.mark.parametrize(
    "responses",
    [
        # Computed over the messages the session knew; the new one announced after (with its
        # UID and flags), as the reference server with allowance imap_late_exists does.
        (Search((1, 2)), Exists(3), Fetch(3, {"UID": 3, "FLAGS": ()})),
        (Search((1, 2)), Exists(3)),
        # Computed over the mailbox, the EXISTS after the SEARCH response.
        (Search((1, 2, 3)), Exists(3), Fetch(3, {"UID": 3, "FLAGS": ()})),
        (Search((1, 2, 3)), Exists(3)),
    ],
    ids=["out+uid", "out", "in+uid", "in"],
)
def test_a_message_announced_after_the_search_response_may_be_in_or_out(
        model: MailboxModel, responses: tuple[Response, ...], by_uid: bool) -> None:
    model.truth = {1: message(1), 2: message(2), 3: message(3)}
    seen = scripted(result(*responses))
    seen.seq, seen.flags = [1, 2], {1: frozenset(), 2: frozenset()}
    searched(model, seen, SearchKey("ALL"), by_uid=by_uid)
    assert seen.seq[:2] == [1, 2] and len(seen.seq) == 3 and SEARCH in model.judged


def test_a_message_announced_before_the_search_response_is_judged(model: MailboxModel) -> None:
    model.truth = {1: message(1), 2: message(2), 3: message(3)}
    seen = scripted(result(Exists(3), Fetch(3, {"UID": 3, "FLAGS": ()}), Search((1, 2))))
    seen.seq, seen.flags = [1, 2], {1: frozenset(), 2: frozenset()}
    found = violation(lambda: searched(model, seen, SearchKey("ALL"), by_uid=False))
    assert found.requirement == SEARCH and "missed UIDs [3]" in str(found)


def test_a_new_message_found_must_match(model: MailboxModel) -> None:
    model.truth = {1: message(1), 2: message(2, "\\Seen")}
    seen = scripted(result(Search((1, 2)), Exists(2)))
    seen.seq, seen.flags = [1], {1: frozenset()}
    found = violation(lambda: searched(model, seen, SearchKey("UNSEEN"), by_uid=True))
    assert found.requirement == SEARCH and "returned UIDs [2]" in str(found)


def test_a_wrong_address_search_fails_search_address(model: MailboxModel) -> None:
    model.truth = {1: TrueMessage(1, b"x", frozenset(), 0, "ann@example.com", "bob@example.net"),
                   2: message(2)}
    seen = scripted(result(Search(())))
    seen.seq, seen.flags = [1, 2], {1: frozenset(), 2: frozenset()}
    found = violation(lambda: searched(model, seen, SearchKey("FROM", "ann@example.com"),
                                       by_uid=True))
    assert found.requirement == SEARCH_ADDRESS and "missed UIDs [1]" in str(found)


def test_a_known_message_left_out_of_search_fails_search_correct(model: MailboxModel) -> None:
    model.truth = {1: message(1, "\\Deleted"), 2: message(2)}
    seen = scripted(result(Search((2,))))
    seen.seq, seen.flags = [1, 2], {1: frozenset({"\\Deleted"}), 2: frozenset()}
    found = violation(lambda: searched(model, seen, SearchKey("ALL"), by_uid=True))
    assert found.requirement == SEARCH and "missed UIDs [1]" in str(found)


def test_finding_names_the_bytes() -> None:
    exc = IMAPSyntaxError("expected number at offset 22", data=b"* 1 FETCH (RFC822.SIZE x)\r\n")
    finding = grammar_failure(exc, "step 3")
    assert finding.requirement == "IMAP-RESPONSE-SYNTAX"
    assert finding.detail == (
        "malformed response from the server (step 3): expected number at offset 22: "
        "b'* 1 FETCH (RFC822.SIZE x)\\r\\n'"
    )


def test_a_step_raising_a_malformed_response_fails_the_grammar(model: MailboxModel) -> None:
    exc = IMAPSyntaxError("expected number at offset 22", data=b"* 1 FETCH (RFC822.SIZE x)\r\n")

    async def step() -> None:
        raise exc

    with pytest.raises(CheckFailed) as info:
        model._run(step(), "FETCH ['RFC822.SIZE']")
    failure = info.value
    assert failure.requirement == SYNTAX and failure.__cause__ is exc
    assert failure.detail.startswith("malformed response from the server (step 1, FETCH ")
    assert model.failed and model.failure is failure


# -- a scripted server that sends one malformed FETCH response ---------------------------------

MALFORMED = b"* 1 FETCH (UID 1 RFC822.SIZE twelve)\r\n"
_LITERAL = re.compile(rb"\{(\d+)\}\r\n\Z")


class _Handler(socketserver.StreamRequestHandler):
    """Just enough IMAP for the model's setup; FETCH of RFC822.SIZE is malformed."""

    server: _FakeServer

    def send(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def handle(self) -> None:
        self.send(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN UIDPLUS] fake ready\r\n")
        while line := self.rfile.readline():
            while (m := _LITERAL.search(line)) is not None:
                self.send(b"+ go ahead\r\n")
                line += self.rfile.read(int(m.group(1))) + self.rfile.readline()
            tag, _, rest = line.partition(b" ")
            verb = rest.split(b" ", 1)[0].strip().upper()
            ok = tag + b" OK done\r\n"
            if verb == b"LOGIN":
                self.send(tag + b" OK [CAPABILITY IMAP4rev1 UIDPLUS] logged in\r\n")
            elif verb == b"APPEND":
                self.server.messages += 1
                self.send(tag + b" OK [APPENDUID 7 %d] stored\r\n" % self.server.messages)
            elif verb == b"SELECT":
                self.send(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                          b"* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 7] v\r\n"
                          b"* OK [UIDNEXT %d] n\r\n* OK [PERMANENTFLAGS (\\Seen \\Deleted \\*)] p\r\n"
                          % (self.server.messages, self.server.messages + 1)
                          + tag + b" OK [READ-WRITE] selected\r\n")
            elif verb == b"FETCH":
                if b"RFC822.SIZE" in rest:
                    self.send(MALFORMED + ok)
                else:
                    self.send(b"* 1 FETCH (UID 1 FLAGS ())\r\n" + ok)
            elif verb == b"LOGOUT":
                self.send(b"* BYE bye\r\n" + ok)
                return
            else:
                self.send(ok)


class _FakeServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__((HOST, 0), _Handler)
        self.context = context
        self.messages = 0

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True), address


@pytest.fixture
def fake_target(tmp_path: Path) -> Iterator[Target]:
    tls = TLSMaterial.create(tmp_path)
    server = _FakeServer(tls.server_context([HOST]))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    port = server.server_address[1]
    provider = ProviderTarget(
        domain="example.net", submission=None, submissions=None, mx=None, imap=None,
        imaps=Endpoint("imaps", HOST, port), outbound_port=None,
        accounts=(Account("bob", "secret", "bob@example.net"),),
    )
    try:
        yield Target(name="fake", description="scripted IMAP server", sender=provider,
                     receiver=provider, dns=None, ca_file=tls.ca_file, tls_verify=True)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_malformed_fetch_response_is_a_failure_naming_the_bytes(fake_target: Target) -> None:
    evidence = Evidence()
    machine = MailboxModel(fake_target, evidence)
    try:
        machine.setup(rev2=(False, False), seed=[("plain", 1, [], (0, 0))])
        assert sorted(machine.truth) == [1]
        with pytest.raises(AssertionError) as info:
            machine.fetch(session=1, choice=[0], by_uid=False, items=["RFC822.SIZE"], stale=False)
    finally:
        machine.teardown()
    failure = info.value
    assert not isinstance(failure, RemoteProtocolError)
    first_line = str(failure).splitlines()[0]
    assert getattr(failure, "requirement", None) == "IMAP-RESPONSE-SYNTAX"
    assert first_line.startswith("IMAP-RESPONSE-SYNTAX: malformed response from the server (step ")
    assert "FETCH ['RFC822.SIZE']" in first_line
    assert repr(MALFORMED) in first_line
    assert isinstance(failure.__cause__, RemoteProtocolError)
    # The failing example keeps its transcripts; the offending bytes are in session B's.
    names = [t.name for t in evidence.transcripts]
    assert any(n.startswith("imap model session B") for n in names)
    assert any(MALFORMED in t.received() for t in evidence.transcripts)
