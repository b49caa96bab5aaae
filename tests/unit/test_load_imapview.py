"""The checks of a load run's IMAP sessions (harness/load/imapview.py), fed responses as a
server would send them: each fault names its one requirement; what the RFCs allow (an EXPUNGE
during UID FETCH, a higher UIDVALIDITY with new UIDs, a flag change still in flight) does not."""

from __future__ import annotations

import pytest

from harness.clients.blocking import Completed, Ring
from harness.load.imapview import MailboxFacts, SessionView, ViewBroken
from harness.protocol.imap.response_values import Tagged
from harness.protocol.imap.responses import parse_response


def _completed(*lines: str) -> Completed:
    untagged = tuple(parse_response(line.encode() + b"\r\n") for line in lines)
    return Completed(Tagged("A1", "OK", None, "done"), untagged)


class Reports:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, list[str]]] = []

    def __call__(self, requirement: str, about: str, detail: str, rings: object) -> None:
        names = [r.name for r in rings if r is not None]  # type: ignore[attr-defined]
        self.seen.append((requirement, detail, names))

    @property
    def requirements(self) -> list[str]:
        return [r for r, _, _ in self.seen]


def _view(facts: MailboxFacts | None = None, name: str = "s1") -> tuple[SessionView, Reports]:
    reports = Reports()
    view = SessionView(facts or MailboxFacts("bob INBOX"), reports, Ring(name))
    view.selected(_completed("* 3 EXISTS", "* OK [UIDVALIDITY 7] v", "* OK [UIDNEXT 4] n"),
                  view.facts.highest())
    view.absorb("FETCH", _completed("* 1 FETCH (UID 1 FLAGS ())", "* 2 FETCH (UID 2 FLAGS ())",
                                    "* 3 FETCH (UID 3 FLAGS () MODSEQ (5))"))
    return view, reports


def _fails(view: SessionView, reports: Reports, command: str, *lines: str) -> str:
    with pytest.raises(ViewBroken):
        view.absorb(command, _completed(*lines))
    assert len(reports.seen) == 1, reports.seen
    return reports.requirements[0]


def test_announced_changes_keep_the_view_in_step() -> None:
    view, reports = _view()
    view.absorb("NOOP", _completed("* 2 EXPUNGE", "* 3 EXISTS", "* 3 FETCH (UID 9 FLAGS (\\Seen))"))
    assert view.known() == [1, 3, 9] and view.flags[9] == {"\\Seen"}
    # RFC 9051 §7.5.1: the UID forms may carry an EXPUNGE.
    view.absorb("UID FETCH", _completed("* 1 EXPUNGE", "* 2 FETCH (UID 9 MODSEQ (8))"))
    assert view.known() == [3, 9] and view.modseq[9] == 8
    assert reports.seen == []


@pytest.mark.parametrize(("command", "lines", "requirement"), [
    ("FETCH", ("* 2 EXPUNGE",), "IMAP-NO-EXPUNGE-DURING-FETCH"),
    ("STORE", ("* 1 EXPUNGE",), "IMAP-NO-EXPUNGE-DURING-FETCH"),
    ("SEARCH", ("* 3 EXPUNGE",), "IMAP-NO-EXPUNGE-DURING-FETCH"),
    ("NOOP", ("* 2 EXISTS",), "IMAP-SEQ-UID-STABLE"),
    ("NOOP", ("* 4 EXPUNGE",), "IMAP-SEQ-UID-STABLE"),
    ("FETCH", ("* 2 FETCH (UID 3 FLAGS ())",), "IMAP-SEQ-UID-STABLE"),
    ("FETCH", ("* 4 FETCH (UID 4 FLAGS ())",), "IMAP-SEQ-UID-STABLE"),
    ("NOOP", ("* 4 EXISTS", "* 4 FETCH (UID 2 FLAGS ())"), "IMAP-SEQ-UID-STABLE"),
    ("FETCH", ("* 3 FETCH (UID 3 MODSEQ (4))",), "IMAP-CONDSTORE-STORE-MODSEQ"),
])
def test_each_fault_names_its_requirement(command: str, lines: tuple[str, ...],
                                          requirement: str) -> None:
    view, reports = _view()
    assert _fails(view, reports, command, *lines) == requirement
    assert reports.seen[0][2] == ["s1"]


def test_a_new_message_gets_a_uid_above_every_uid_seen() -> None:
    view, reports = _view()
    view.absorb("NOOP", _completed("* 3 EXPUNGE"))  # UID 3 goes
    # A new message at the end given the expunged UID 3: ordered with UID 2, but reused.
    assert _fails(view, reports, "NOOP", "* 3 EXISTS",
                  "* 3 FETCH (UID 3 FLAGS ())") == "IMAP-UID-MONOTONIC"


def test_a_uid_naming_two_messages_is_caught_across_sessions() -> None:
    facts = MailboxFacts("bob INBOX")
    first, reports = _view(facts, "s1")
    second, _ = _view(facts, "s2")
    second.report = reports
    first.token_seen(3, "token-a")
    with pytest.raises(ViewBroken):
        second.token_seen(3, "token-b")
    assert reports.seen[0][0] == "IMAP-UID-MONOTONIC" and reports.seen[0][2] == ["s2", "s1"]


def test_uidnext_at_or_below_a_uid_seen_is_caught() -> None:
    facts = MailboxFacts("bob INBOX")
    view, reports = _view(facts)
    view.token_seen(5, "token-a")
    again = SessionView(facts, reports, Ring("s2"))
    with pytest.raises(ViewBroken):
        again.selected(_completed("* 0 EXISTS", "* OK [UIDVALIDITY 7] v", "* OK [UIDNEXT 5] n"),
                       facts.highest())
    assert reports.requirements == ["IMAP-UID-MONOTONIC"]


def test_uidvalidity_may_grow_with_new_uids_but_not_go_down_or_keep_the_uids() -> None:
    facts = MailboxFacts("bob INBOX")
    view, reports = _view(facts)
    view.token_seen(1, "token-a")
    grown = SessionView(facts, reports, Ring("s2"))
    grown.selected(_completed("* 1 EXISTS", "* OK [UIDVALIDITY 8] v"), facts.highest())
    grown.token_seen(1, "token-b")  # renumbered: allowed (RFC 9051 §2.3.1.1)
    assert reports.seen == []
    persisted = SessionView(facts, reports, Ring("s3"))
    persisted.selected(_completed("* 1 EXISTS", "* OK [UIDVALIDITY 9] v"), facts.highest())
    with pytest.raises(ViewBroken):
        persisted.token_seen(1, "token-b")  # the same message under the same UID
    down = SessionView(facts, reports, Ring("s4"))
    with pytest.raises(ViewBroken):
        down.selected(_completed("* 1 EXISTS", "* OK [UIDVALIDITY 3] v"), facts.highest())
    assert reports.requirements == ["IMAP-UIDVALIDITY-STABLE", "IMAP-UIDVALIDITY-STABLE"]


def test_a_keyword_change_is_expected_in_every_session_once_it_is_done() -> None:
    facts = MailboxFacts("bob INBOX")
    view, reports = _view(facts)
    store = facts.store_begins([2], "$Load1")
    assert facts.expected(2, "$Load1", since=1e18) is None  # in flight: either state
    facts.store_ends([2], "$Load1", True, Ring("owner"))
    since = 1e18  # a NOOP begun after the STORE ended
    view.absorb("NOOP", _completed("* 2 FETCH (UID 2 FLAGS ($Load1))"))
    view.check_keywords(["$Load1"], since)
    assert reports.seen == []
    facts.modseq(store, 40, reports, None)
    facts.modseq(store, 40, reports, None)  # one STORE, two messages: fine
    assert reports.seen == []
    with pytest.raises(ViewBroken):
        facts.modseq(facts.store_begins([1], "$Load1"), 40, reports, Ring("other"))
    assert reports.requirements == ["IMAP-CONDSTORE-MODSEQ-UNIQUE"]


def test_a_keyword_change_not_reported_after_noop_is_a_disagreement() -> None:
    facts = MailboxFacts("bob INBOX")
    view, reports = _view(facts)
    owner = Ring("owner")
    facts.register(owner)  # a session of the last few: its ring is shown beside the other's
    facts.store_begins([2], "$Load1")
    facts.store_ends([2], "$Load1", True, owner)
    with pytest.raises(ViewBroken):
        view.check_keywords(["$Load1"], since=1e18)
    assert reports.requirements == ["IMAP-SESSIONS-AGREE"]
    assert reports.seen[0][2] == ["s1", "owner"]
    # A STORE ended after the NOOP began, or an expunged message, may go either way.
    reports.seen.clear()
    view.check_keywords(["$Load1"], since=0.0)
    facts.forget([2])
    view.check_keywords(["$Load1"], since=1e18)
    assert reports.seen == []


def test_changes_announced_within_the_select_response_are_applied() -> None:
    """A server may report, before SELECT's tagged OK, what changed since its snapshot: an
    EXPUNGE after the EXISTS shrinks the view like any other."""
    reports = Reports()
    view = SessionView(MailboxFacts("bob INBOX"), reports, Ring("s1"))
    view.selected(_completed("* 5 EXISTS", "* OK [UIDVALIDITY 7] v", "* 2 EXPUNGE",
                             "* 5 EXISTS"), view.facts.highest())
    assert len(view.seq) == 5 and view.floor == [0, 0, 0, 0, 0]
    assert reports.seen == []


def test_the_tables_name_sessions_and_keep_only_the_last_rings() -> None:
    """Long-lived tables hold session names, not rings: a session long gone is named in a
    report without its transcript, and memory does not grow with the sessions."""
    from harness.load.imapview import RINGS_KEPT

    facts = MailboxFacts("bob INBOX")
    first, reports = _view(facts, "s0")
    first.token_seen(3, "token-a")
    for n in range(RINGS_KEPT):
        facts.register(Ring(f"later {n}"))
    assert len(facts.rings) == RINGS_KEPT and "s0" not in facts.rings
    second, _ = _view(facts, "s2")
    second.report = reports
    with pytest.raises(ViewBroken):
        second.token_seen(3, "token-b")
    assert reports.seen[0][2] == ["s2"]  # s0's ring is gone; its detail still names the UID


def test_keywords_an_earlier_run_left_are_not_expected_clear() -> None:
    """A message there before the run's first SELECT may carry a keyword an earlier run set:
    until its owner stores it, its state is not known. One that came during the run is clear."""
    facts = MailboxFacts("bob INBOX")
    view, reports = _view(facts)  # UIDNEXT 4 at the first SELECT
    view.absorb("NOOP", _completed("* 2 FETCH (UID 2 FLAGS ($Load1))", "* 4 EXISTS",
                                   "* 4 FETCH (UID 7 FLAGS ($Load1))"))
    assert facts.expected(2, "$Load1", since=1e18) is None
    assert facts.expected(7, "$Load1", since=1e18) == (False, None)
    with pytest.raises(ViewBroken):
        view.check_keywords(["$Load1"], since=1e18)
    assert reports.requirements == ["IMAP-SESSIONS-AGREE"] and "UID 7" in reports.seen[0][1]


def test_permanentflags_say_whether_a_keyword_is_kept_and_vanished_needs_qresync() -> None:
    reports = Reports()
    view = SessionView(MailboxFacts("bob INBOX"), reports, Ring("s1"))
    view.selected(_completed("* 1 EXISTS", "* OK [PERMANENTFLAGS (\\Seen \\Deleted)] p"),
                  view.facts.highest())
    assert not view.keeps("$Load0") and view.keeps("\\Seen")
    view.selected(_completed("* 1 EXISTS", "* OK [PERMANENTFLAGS (\\Seen \\*)] p"),
                  view.facts.highest())
    assert view.keeps("$Load0")
    assert _fails(view, reports, "NOOP", "* VANISHED 1") == "IMAP-SEQ-UID-STABLE"
