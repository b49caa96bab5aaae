"""The SMTP session model: predictions for every (state, command) pair, state updates, and a
failing model run whose written dialogue replays the same failure (and passes once fixed)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from harness.dialogue import Expect, load_dialogue
from harness.models.smtp_machine import ModelMismatch, SMTPSessionMachine, dialogue_dir
from harness.models.smtp_session import (
    ANY_COMMAND,
    AUTH,
    CATALOGUE,
    DATA,
    EHLO,
    HELO,
    MAIL,
    MALFORMED,
    NOOP,
    QUIT,
    RCPT,
    STARTTLS,
    SUBMISSION,
    UNKNOWN,
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
    prediction_table,
)
from harness.protocol.errors import LocalProtocolError
from harness.protocol.smtp import SessionState
from harness.replay import replay
from harness.suite import Evidence
from harness.targets import Target

S = SessionState
OPEN_STATES = (S.GREETED, S.REFUSED, S.READY, S.MAIL, S.RCPT)

#: For each state, the verbs whose well-formed form may get a positive (2yz/3yz) reply.
#: RFC 5321 §4.1.4 order; RFC 3207 (STARTTLS outside a transaction, or resetting it); RFC 4954
#: (AUTH only outside a transaction, once); §3.1: after a 554 greeting only QUIT.
POSITIVE: dict[SessionState, frozenset[str]] = {
    S.GREETED: frozenset({"EHLO", "HELO", "RSET", "NOOP", "VRFY", "HELP", "QUIT", "STARTTLS"}),
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
    if command.flaw is not None or command.verb not in POSITIVE[state]:
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
    (S.READY, UNKNOWN[0], frozenset({500, 502, 504}) | ANY_COMMAND),
    (S.READY, UNKNOWN[1], frozenset({500, 502, 504}) | ANY_COMMAND),
    (S.MAIL, RCPT, frozenset({250, 251, 550, 551, 552, 553, 450, 451, 452, 503, 455, 555, 530})
     | ANY_COMMAND),
]


@pytest.mark.parametrize(("state", "command", "codes"), EXACT)
def test_exact_predictions(state: SessionState, command: Command, codes: frozenset[int]) -> None:
    assert predict(_session(state), command).codes == codes


def test_auth_rules() -> None:
    # RFC 4954 §4: once authenticated, and within a transaction: 503 only.
    assert predict(_session(S.READY, authenticated=True), AUTH).codes == {503} | ANY_COMMAND
    assert predict(_session(S.MAIL), AUTH).codes == {503} | ANY_COMMAND
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
    assert str(path) in str(info.value)
    assert any(str(path) in note for note in evidence.notes)
    dialogue = load_dialogue(path)
    last = dialogue.steps[-1]
    assert isinstance(last, Expect) and "503" in last.codes and "250" not in last.codes
    assert dialogue.requirements == ("SMTP-COMMAND-ORDER", "SMTP-REPLY-CODES")

    # Same topology, same fault: the replay stops at the last line, on the same 250.
    failed = asyncio.run(replay(dialogue, quirky_target))
    assert failed.mismatch is not None, failed.render()
    assert failed.mismatch.line == last.line
    assert failed.mismatch.got.startswith("250")
    assert "got 250" in str(info.value)

    # Without the fault the very same dialogue passes.
    passed = asyncio.run(replay(dialogue, clean_target))
    assert passed.mismatch is None, f"{passed.mismatch}\n{passed.render()}"


def test_model_passes_on_the_reference_agents(clean_target: Target, tmp_path: Path) -> None:
    path = tmp_path / "never.dialogue"
    run_state_machine_as_test(
        lambda: SMTPSessionMachine(clean_target, Evidence(), services=("submission", "mx"),
                                   dialogue_path=path),
        settings=settings(MODEL_SETTINGS, max_examples=10),
    )
    assert not path.exists()
