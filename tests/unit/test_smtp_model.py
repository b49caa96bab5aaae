"""The SMTP session model: predictions for every (state, command) pair, the requirement each
claim names, state updates, the probes, and a failing model run whose written dialogue replays
the same failure of the same requirement (and passes once fixed)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from harness.checks import CheckFailed, Checks, begin
from harness.dialogue import PRECONDITION, Expect, ExpectClosed, load_dialogue
from harness.models.smtp_machine import (
    MODEL_REQUIREMENTS,
    ModelMismatch,
    SMTPSessionMachine,
    dialogue_dir,
    probe_sessions,
)
from harness.models.smtp_session import (
    ANY_COMMAND,
    AUTH,
    CATALOGUE,
    DATA,
    EHLO,
    HELO,
    HELP,
    MAIL,
    MALFORMED,
    NOOP,
    NOOP_ARG,
    QUIT,
    RCPT,
    REQUIREMENTS,
    RSET,
    STARTTLS,
    SUBMISSION,
    UNKNOWN,
    VRFY,
    VRFY_BARE,
    WEIGHTED,
    Command,
    Flaw,
    SessionModel,
    advance,
    after_end_of_data,
    after_greeting,
    predict,
    predict_auth_cancel,
    predict_end_of_data,
    predict_greeting,
    prediction_table,
)
from harness.protocol.errors import LocalProtocolError
from harness.protocol.smtp import SessionState
from harness.replay import replay
from harness.requirements import REGISTRY
from harness.suite import Evidence
from harness.targets import Target

S = SessionState
OPEN_STATES = (S.GREETED, S.REFUSED, S.READY, S.MAIL, S.RCPT)

#: For each state, the verbs whose well-formed form may get a positive (2yz/3yz) reply.
#: RFC 5321 §4.1.4 order (a server may take MAIL, and AUTH, before EHLO: 503 is due only for
#: commands that "cannot be processed"); RFC 3207 (STARTTLS outside a transaction, or resetting
#: it); RFC 4954 (AUTH only outside a transaction, once); §3.1: after a 554 greeting only QUIT.
POSITIVE: dict[SessionState, frozenset[str]] = {
    S.GREETED: frozenset({"EHLO", "HELO", "MAIL", "RSET", "NOOP", "VRFY", "HELP", "QUIT",
                          "STARTTLS", "AUTH"}),
    S.REFUSED: frozenset({"QUIT"}),
    S.READY: frozenset({"EHLO", "HELO", "MAIL", "RSET", "NOOP", "VRFY", "HELP", "QUIT",
                        "STARTTLS", "AUTH"}),
    S.MAIL: frozenset({"EHLO", "HELO", "RCPT", "RSET", "NOOP", "VRFY", "HELP", "QUIT",
                       "STARTTLS"}),
    S.RCPT: frozenset({"EHLO", "HELO", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "HELP", "QUIT",
                       "STARTTLS"}),
}


def _session(state: SessionState, **flags: object) -> SessionModel:
    return SessionModel(SUBMISSION, state, offers=frozenset({"AUTH", "STARTTLS"}), **flags)  # type: ignore[arg-type]


def _positive(codes: frozenset[int]) -> frozenset[int]:
    return frozenset(c for c in codes if c < 400)


@pytest.mark.parametrize("state", OPEN_STATES, ids=lambda s: s.name)
@pytest.mark.parametrize("command", CATALOGUE, ids=lambda c: c.line or "<empty>")
def test_prediction_for_every_state_and_command(state: SessionState, command: Command) -> None:
    prediction = predict(_session(state), command)
    assert ANY_COMMAND <= prediction.codes, "RFC 5321 §4.3.2: 500, 501, 421 for any command"
    assert prediction.rule.startswith("RFC ")
    positive = _positive(prediction.codes)
    if command is VRFY_BARE and state is not S.REFUSED:
        # RFC 5321 §3.5.3: never 250 (no address was verified); 252 claims nothing.
        assert positive == {251, 252}, positive
    elif command.flaw is not None or command.verb not in POSITIVE[state]:
        assert not positive, f"{command.line!r} in {state.name} may not succeed: {positive}"
    else:
        assert positive, f"{command.line!r} in {state.name} must be allowed to succeed"
    if command.verb in {"MAIL", "RCPT", "DATA"} and command.verb not in POSITIVE[state]:
        # RFC 5321 §4.1.4: out of order -> 503.
        assert 503 in prediction.codes


EXACT: list[tuple[SessionState, Command, frozenset[int]]] = [
    (S.READY, MAIL, frozenset({250, 552, 451, 452, 550, 553, 503, 455, 555, 530}) | ANY_COMMAND),
    (S.RCPT, DATA, frozenset({354, 503, 554, 530}) | ANY_COMMAND),
    (S.READY, DATA, frozenset({503, 554, 530}) | ANY_COMMAND),
    (S.GREETED, QUIT, frozenset({221}) | ANY_COMMAND),
    (S.MAIL, NOOP, frozenset({250}) | ANY_COMMAND),
    (S.REFUSED, MAIL, frozenset({503}) | ANY_COMMAND),
    # RFC 3207 §4: before TLS, 530 to "every command other than NOOP, EHLO, STARTTLS, or QUIT".
    (S.READY, UNKNOWN[0], frozenset({500, 502, 504, 530}) | ANY_COMMAND),
    (S.READY, UNKNOWN[1], frozenset({500, 502, 504, 530}) | ANY_COMMAND),
    (S.MAIL, RCPT, frozenset({250, 251, 550, 551, 552, 553, 450, 451, 452, 503, 455, 555, 530})
     | ANY_COMMAND),
]


@pytest.mark.parametrize(("state", "command", "codes"), EXACT)
def test_exact_predictions(state: SessionState, command: Command, codes: frozenset[int]) -> None:
    assert predict(_session(state), command).codes == codes


def test_auth_rules() -> None:
    # RFC 4954 §4: once authenticated, and within a transaction: 503 only (530 before TLS).
    assert predict(_session(S.READY, authenticated=True, tls=True), AUTH).codes == {503} | ANY_COMMAND
    assert predict(_session(S.MAIL, tls=True), AUTH).codes == {503} | ANY_COMMAND
    assert predict(_session(S.MAIL), AUTH).codes == {503, 530} | ANY_COMMAND
    # A server that does not offer AUTH may call it unimplemented, even mid-transaction.
    no_auth = SessionModel("mx", S.MAIL)
    assert 502 in predict(no_auth, AUTH).codes
    assert 235 not in predict(no_auth, AUTH).codes
    for command in MALFORMED:
        if command.verb == "AUTH":
            assert not _positive(predict(_session(S.READY), command).codes)
    assert predict_auth_cancel(_session(S.READY)).codes == {501} | ANY_COMMAND


def test_starttls_rules() -> None:
    assert 220 in predict(_session(S.GREETED), STARTTLS).codes
    # RFC 3207 does not forbid STARTTLS in a transaction: 220 (a reset) or a refusal.
    in_transaction = predict(_session(S.MAIL), STARTTLS).codes
    assert {220, 503} <= in_transaction
    # A second STARTTLS (or STARTTLS on implicit TLS) can never be accepted.
    assert not _positive(predict(_session(S.READY, tls=True), STARTTLS).codes)


# --- the requirement each claim names ------------------------------------------------------------

_TLS = {"tls": True}
#: (session, command, reply code) -> the requirement that reply fails (None: it is allowed).
ATTRIBUTION: list[tuple[SessionModel, Command, int, str | None]] = [
    # RFC 4954 §4: AUTH during a transaction (even once authenticated) and a second AUTH.
    (_session(S.MAIL, authenticated=True, **_TLS), AUTH, 235, "AUTH-IN-TRANSACTION"),
    (_session(S.READY, authenticated=True, **_TLS), AUTH, 235, "AUTH-ONCE"),
    (_session(S.READY, authenticated=True, **_TLS), AUTH, 503, None),
    (SessionModel("mx", S.MAIL), AUTH, 235, "AUTH-IN-TRANSACTION"),
    # One command's code set (RFC 5321 §4.3.2): HELP 211, 214, 502, 504 and nothing else.
    (_session(S.READY, **_TLS), HELP, 250, "SMTP-REPLY-CODES"),
    (_session(S.READY, **_TLS), HELP, 211, None),
    (_session(S.READY, **_TLS), HELP, 214, None),
    (_session(S.GREETED, **_TLS), HELP, 502, None),
    (_session(S.READY, **_TLS), VRFY, 554, "SMTP-REPLY-CODES"),
    (_session(S.READY, **_TLS), VRFY, 252, None),
    # Ordering only: a nested MAIL or a RCPT without MAIL carried out; an off-list refusal is
    # the code set's.
    (_session(S.MAIL, **_TLS), MAIL, 250, "SMTP-COMMAND-ORDER"),
    (_session(S.MAIL, **_TLS), MAIL, 554, "SMTP-REPLY-CODES"),
    (_session(S.MAIL, **_TLS), MAIL, 503, None),
    (_session(S.READY, **_TLS), RCPT, 250, "SMTP-COMMAND-ORDER"),
    (_session(S.READY, **_TLS), DATA, 354, "SMTP-COMMAND-ORDER"),
    (_session(S.MAIL, **_TLS), DATA, 354, "SMTP-COMMAND-ORDER"),
    (_session(S.READY, **_TLS), DATA, 554, None),
    # RFC 5321 §4.1.4 lets a server take MAIL before EHLO; after TLS, one that refused it
    # before must refuse it again (RFC 3207 §4.2).
    (_session(S.GREETED, **_TLS), MAIL, 250, None),
    (_session(S.GREETED, hello_required=True, **_TLS), MAIL, 250, "STARTTLS-RESET"),
    # After a reset, by the reset -- once the server showed it refuses RCPT with nothing open.
    (_session(S.READY, reset_by="SMTP-RSET", **_TLS), RCPT, 250, "SMTP-COMMAND-ORDER"),
    (_session(S.READY, reset_by="SMTP-RSET", refuses_unopened=frozenset({"RCPT"}), **_TLS),
     RCPT, 250, "SMTP-RSET"),
    (_session(S.READY, reset_by="SMTP-EHLO-RESET", refuses_unopened=frozenset({"DATA"}), **_TLS),
     DATA, 354, "SMTP-EHLO-RESET"),
    (_session(S.GREETED, reset_by="STARTTLS-RESET", refuses_unopened=frozenset({"RCPT"}), **_TLS),
     RCPT, 251, "STARTTLS-RESET"),
    # VRFY without an argument: 252 is fine, 250 claims a verification (RFC 5321 §3.5.3).
    (_session(S.READY, **_TLS), VRFY_BARE, 252, None),
    (_session(S.READY, **_TLS), VRFY_BARE, 250, "SMTP-VRFY-NO-FALSE-250"),
    (_session(S.READY, **_TLS), VRFY_BARE, 554, "SMTP-REPLY-CODES"),
    # Commands with their own requirement.
    (_session(S.READY, **_TLS), QUIT, 250, "SMTP-QUIT"),
    (_session(S.READY, **_TLS), RSET, 502, "SMTP-RSET"),
    (_session(S.READY, **_TLS), NOOP, 503, "SMTP-NOOP"),
    (_session(S.READY, **_TLS), NOOP_ARG, 250, None),
    (_session(S.READY, **_TLS), UNKNOWN[0], 250, "SMTP-UNKNOWN-COMMAND"),
    (_session(S.READY, **_TLS), UNKNOWN[1], 250, "SMTP-UNKNOWN-COMMAND"),
    (_session(S.READY, **_TLS), STARTTLS, 220, "STARTTLS-ONCE"),
    (_session(S.READY), STARTTLS, 220, None),
    (_session(S.READY), STARTTLS, 454, None),
    (SessionModel("mx", S.REFUSED), MAIL, 250, "SMTP-COMMAND-ORDER"),
]
#: Each malformed command, carried out (the first positive code it could get).
MALFORMED_ATTRIBUTION = {
    "EHLO": "SMTP-EHLO-SYNTAX", "HELO": "SMTP-EHLO-SYNTAX", "MAIL FROM:<{sender}": "SMTP-PARAM-SYNTAX",
    "RCPT TO:<{recipient}": "SMTP-PARAM-SYNTAX", "DATA now": "SMTP-NO-PARAMETERS",
    "RSET now": "SMTP-NO-PARAMETERS", "STARTTLS now": "STARTTLS-SYNTAX",
    "AUTH X-MAILHARNESS-NONE": "AUTH-UNKNOWN-MECHANISM", "AUTH PLAIN !not*base64!": "AUTH-BAD-BASE64",
    "AUTH PLAIN AG5vYm9keUBtYWlsaGFybmVzcy5pbnZhbGlkAHdyb25nLXBhc3N3b3Jk": "AUTH-BAD-CREDENTIALS",
}


@pytest.mark.parametrize(("session", "command", "code", "requirement"), ATTRIBUTION)
def test_each_claim_names_its_requirement(
    session: SessionModel, command: Command, code: int, requirement: str | None
) -> None:
    prediction = predict(session, command)
    broken = prediction.broken_by(code)
    assert (broken.requirement if broken else None) == requirement, prediction.requirements
    assert prediction.allows(code) is (requirement is None)


@pytest.mark.parametrize("line", sorted(MALFORMED_ATTRIBUTION))
def test_malformed_command_carried_out_fails_its_syntax_rule(line: str) -> None:
    command = next(c for c in MALFORMED if c.line == line)
    session = _session(S.RCPT if command.verb in ("RCPT", "DATA") else S.READY,
                       tls=command.verb != "STARTTLS")
    positive = {"EHLO": 250, "HELO": 250, "MAIL": 250, "RCPT": 250, "DATA": 354, "RSET": 250,
                "STARTTLS": 220, "AUTH": 235}[command.verb]
    broken = predict(session, command).broken_by(positive)
    assert broken is not None and broken.requirement == MALFORMED_ATTRIBUTION[line]


def test_every_claim_names_a_known_requirement_of_the_model() -> None:
    named: set[str] = set()
    for state in OPEN_STATES:
        resets = [{"reset_by": r, "refuses_unopened": frozenset({"RCPT", "DATA"})}
                  for r in ("SMTP-RSET", "SMTP-EHLO-RESET", "STARTTLS-RESET")]
        for flags in ({}, {"tls": True}, {"authenticated": True}, {"hello_required": True, "tls": True},
                      *resets):
            for command in CATALOGUE:
                named |= set(predict(_session(state, **flags), command).requirements)  # type: ignore[arg-type]
    named |= set(predict_greeting().requirements) | set(predict_auth_cancel(_session(S.READY)).requirements)
    named |= set(predict_end_of_data(_session(S.DATA)).requirements)
    assert named == set(REQUIREMENTS)
    assert set(REQUIREMENTS) <= set(MODEL_REQUIREMENTS)
    assert all(r in REGISTRY for r in MODEL_REQUIREMENTS)


def test_no_prediction_outside_command_states() -> None:
    for state in (S.CONNECTED, S.DATA, S.CLOSED):
        with pytest.raises(LocalProtocolError):
            predict(_session(state), NOOP)
    assert predict_end_of_data(_session(S.DATA)).codes == {
        250, 552, 554, 451, 452, 450, 550, 421
    }


# --- state updates ------------------------------------------------------------------------------


def test_advance_follows_the_session() -> None:
    s = after_greeting(SessionModel(SUBMISSION), 220)
    assert s.state is S.GREETED
    s = advance(s, EHLO, 250, frozenset({"STARTTLS"}))
    assert (s.state, s.extended, s.offers) == (S.READY, True, frozenset({"STARTTLS"}))
    s = advance(s, STARTTLS, 220)
    assert (s.state, s.tls, s.extended, s.offers) == (S.GREETED, True, False, frozenset())
    s = advance(advance(s, EHLO, 250, frozenset({"AUTH"})), AUTH, 235)
    assert s.authenticated and s.state is S.READY
    s = advance(s, MAIL, 250)
    assert s.state is S.MAIL
    assert advance(s, MAIL, 503).state is S.MAIL  # RFC 5321 §4.1.4: stay in the same state
    s = advance(s, RCPT, 250)
    assert s.state is S.RCPT
    assert advance(s, HELO, 250).state is S.READY  # a hello resets like RSET
    assert not advance(s, HELO, 250).extended
    s = advance(s, DATA, 354)
    assert s.state is S.DATA
    assert after_end_of_data(s, 250).state is S.READY
    assert advance(_session(S.MAIL), STARTTLS, 220).state is S.GREETED
    assert advance(_session(S.MAIL), UNKNOWN[0], 500).state is S.MAIL
    assert advance(_session(S.MAIL), NOOP, 421).state is S.CLOSED
    assert advance(_session(S.READY), QUIT, 221).state is S.CLOSED
    assert after_greeting(SessionModel(), 554).state is S.REFUSED


def test_advance_remembers_what_ended_the_transaction() -> None:
    # RFC 5321 §4.1.4: a server may take MAIL before EHLO; the transaction is then open.
    assert advance(_session(S.GREETED), MAIL, 250).state is S.MAIL
    assert advance(_session(S.GREETED), MAIL, 503).hello_required
    assert not advance(_session(S.GREETED, tls=True), MAIL, 503).hello_required
    assert advance(_session(S.RCPT), RSET, 250).reset_by == "SMTP-RSET"
    assert advance(_session(S.MAIL), EHLO, 250).reset_by == "SMTP-EHLO-RESET"
    assert advance(_session(S.MAIL), HELO, 250).reset_by == "SMTP-EHLO-RESET"
    assert advance(_session(S.RCPT), STARTTLS, 220).reset_by == "STARTTLS-RESET"
    assert advance(_session(S.READY), RSET, 250).reset_by is None  # nothing was open
    assert advance(_session(S.READY, reset_by="SMTP-RSET"), MAIL, 250).reset_by is None
    assert after_end_of_data(_session(S.DATA, reset_by="SMTP-RSET"), 250).reset_by is None
    assert advance(_session(S.READY), RCPT, 503).refuses_unopened == {"RCPT"}
    assert not advance(_session(S.READY, reset_by="SMTP-RSET"), RCPT, 503).refuses_unopened


def test_spelling_changes_only_the_verb() -> None:
    assert MAIL.spelled("lower").line == "mail FROM:<{sender}>"
    assert MAIL.spelled("mixed").line == "MaIl FROM:<{sender}>"
    assert MAIL.spelled("upper") == MAIL
    assert Command("", "").spelled("lower").line == ""


def test_catalogue_is_consistent() -> None:
    assert set(WEIGHTED) == set(CATALOGUE)
    assert all(c.flaw is not None for c in MALFORMED)
    assert Flaw.SYNTAX in {c.flaw for c in MALFORMED}
    table = prediction_table((_session(S.READY),), (MAIL,))
    assert "| READY |" in table and "250" in table


def test_dialogue_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MAILHARNESS_DIALOGUE_DIR", raising=False)
    assert dialogue_dir() == Path.cwd() / ".mailharness" / "dialogues"
    monkeypatch.setenv("MAILHARNESS_DIALOGUE_DIR", str(tmp_path))
    assert dialogue_dir() == tmp_path
    assert dialogue_dir("elsewhere") == Path("elsewhere")


# --- a failing run writes a dialogue that replays the same failure ----------------------------


def _topology(quirks: frozenset[str]) -> Iterator[Target]:
    from reference_agents.topology import TopologySettings, TopologyThread

    data_dir = Path(tempfile.mkdtemp(prefix="mailharness-test-model-"))
    runner = TopologyThread(TopologySettings(data_dir=data_dir, quirks=quirks))
    try:
        yield runner.start()
    finally:
        runner.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def clean_target() -> Iterator[Target]:
    yield from _topology(frozenset())


@pytest.fixture(scope="module")
def quirky_target() -> Iterator[Target]:
    yield from _topology(frozenset({"msa_nested_mail_accepted"}))


MODEL_SETTINGS = settings(
    max_examples=50, stateful_step_count=20, deadline=None, database=None, derandomize=True,
    report_multiple_bugs=False, phases=(Phase.generate, Phase.shrink),
    suppress_health_check=list(HealthCheck),
)


def test_failing_model_writes_a_dialogue_that_replays_the_failure(
    quirky_target: Target, clean_target: Target, tmp_path: Path
) -> None:
    path = tmp_path / "nested.dialogue"
    evidence = Evidence()
    with pytest.raises(ModelMismatch) as info:
        run_state_machine_as_test(
            lambda: SMTPSessionMachine(quirky_target, evidence, dialogue_path=path),
            settings=MODEL_SETTINGS,
        )
    # The failure of the one requirement broken, as the plugin reads it.
    assert isinstance(info.value, CheckFailed)
    assert info.value.requirement == "SMTP-COMMAND-ORDER"
    assert str(path) in str(info.value)
    assert any(str(path) in note for note in evidence.notes)
    dialogue = load_dialogue(path)
    last = dialogue.steps[-1]
    assert isinstance(last, Expect) and last.codes == ("4xx", "5xx")
    assert last.requirement == "SMTP-COMMAND-ORDER"
    assert dialogue.requirements == ("SMTP-COMMAND-ORDER",)
    earlier = [s for s in dialogue.steps[:-1] if isinstance(s, Expect | ExpectClosed)]
    assert earlier and all(s.requirement == PRECONDITION for s in earlier)

    # Same topology, same fault: the replay stops at the last line, on the same 250, and
    # names the same requirement.
    failed = asyncio.run(replay(dialogue, quirky_target))
    assert failed.mismatch is not None, failed.render()
    assert failed.mismatch.line == last.line
    assert failed.mismatch.requirement == "SMTP-COMMAND-ORDER"
    assert failed.mismatch.got.startswith("250")
    assert "got 250" in str(info.value)

    # Without the fault the very same dialogue passes.
    passed = asyncio.run(replay(dialogue, clean_target))
    assert passed.mismatch is None, f"{passed.mismatch}\n{passed.render()}"


def test_model_passes_on_the_reference_agents(clean_target: Target, tmp_path: Path) -> None:
    path = tmp_path / "never.dialogue"
    checks = Checks(MODEL_REQUIREMENTS)
    begin(checks)
    try:
        probe_sessions(clean_target, Evidence(), services=("submission", "mx"), dialogue_path=path)
        run_state_machine_as_test(
            lambda: SMTPSessionMachine(clean_target, Evidence(), services=("submission", "mx"),
                                       dialogue_path=path),
            settings=settings(MODEL_SETTINGS, max_examples=10),
        )
    finally:
        begin(None)
    assert not path.exists()
    verdicts = {v.id: v.verdict.value for v in checks.finish("passed", None)}
    # Each claim that held is a passed check of its requirement; none is red.
    assert "fail" not in verdicts.values()
    for req in ("SMTP-REPLY-CODES", "SMTP-COMMAND-ORDER", "SMTP-VRFY-NO-FALSE-250", "SMTP-QUIT",
                "SMTP-REPLY-SYNTAX", "SMTP-CLOSE-421"):
        assert verdicts[req] == "pass", (req, verdicts)


def test_probes_meet_vrfy_in_every_state(clean_target: Target, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, bool, bool, SessionState, str]] = []
    command = SMTPSessionMachine._command

    def recording(self: SMTPSessionMachine, sent: Command) -> object:
        seen.append((self.session.service, self.session.tls, self.session.authenticated,
                     self.session.state, sent.line))
        return command(self, sent)

    monkeypatch.setattr(SMTPSessionMachine, "_command", recording)
    probe_sessions(clean_target, Evidence(), services=("submission", "mx"),
                   dialogue_path=tmp_path / "p.dialogue")
    vrfy = {(svc, tls, auth, state) for svc, tls, auth, state, line in seen if line == VRFY.line}
    bare = {(svc, tls, auth, state) for svc, tls, auth, state, line in seen if line == VRFY_BARE.line}
    assert vrfy == bare
    # Before EHLO, before TLS, after TLS before AUTH, and at each step of a transaction.
    assert {
        ("submission", False, False, S.GREETED), ("submission", False, False, S.READY),
        ("submission", True, False, S.READY), ("submission", True, True, S.READY),
        ("submission", True, True, S.MAIL), ("submission", True, True, S.RCPT),
        ("mx", False, False, S.GREETED), ("mx", True, False, S.MAIL), ("mx", True, False, S.RCPT),
    } <= vrfy, sorted(vrfy, key=str)


@pytest.fixture
def quit_keeps_target() -> Iterator[Target]:
    yield from _topology(frozenset({"msa_quit_keeps_connection"}))


def test_quit_that_keeps_the_connection_fails_smtp_quit(quit_keeps_target: Target, tmp_path: Path) -> None:
    target = quit_keeps_target
    path = tmp_path / "quit.dialogue"
    machine = SMTPSessionMachine(target, Evidence(), dialogue_path=path)
    try:
        machine._connect("submission", "ehlo")
        with pytest.raises(ModelMismatch) as info:
            machine._command(QUIT)
    finally:
        machine.teardown()
    assert info.value.requirement == "SMTP-QUIT"
    last = load_dialogue(path).steps[-1]
    assert last == ExpectClosed("SMTP-QUIT")
