"""The dialogue format: parser tables, one-line errors, writer round trip, matching, `mailharness replay`."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.dialogue import (
    NEED,
    PRECONDITION,
    VARIABLES,
    Auth,
    Comment,
    Connect,
    Dialogue,
    DialogueError,
    Expect,
    ExpectClosed,
    ExpectNone,
    Need,
    Requirement,
    Send,
    StartTLS,
    Step,
    code_patterns,
    escape,
    expand,
    format_dialogue,
    load_dialogue,
    mismatch,
    parse_dialogue,
    quote_braces,
    unescape,
)
from harness.protocol.smtp import EnhancedStatus
from harness.replay import ReplayResult, replay
from harness.requirements import REGISTRY
from harness.targets import Target, dump_target
from mailharness.cli import main

DIALOGUES = Path(__file__).parents[2] / "suites" / "smtp_model" / "dialogues"

# --- parser: good files ---------------------------------------------------------------------

P = "precondition"

GOOD: list[tuple[str, tuple[Step, ...]]] = [
    ("@ connect mx\nS: 220 [precondition]\n", (Connect("mx"), Expect(("220",), (), P))),
    ("# hi\n@ connect submission\nC: EHLO {helo}\nS: 250 [SMTP-EHLO-250]\n",
     (Comment("hi"), Connect("submission"), Send("EHLO {helo}"), Expect(("250",), (), "SMTP-EHLO-250"))),
    ("@connect MX\r\nS: 5XX 5.5.x [need]\r\n", (Connect("mx"), Expect(("5xx",), ("5.5.x",), "need"))),
    ("@ connect mx\nS: 250|251 [precondition]  # recipient ok\n",
     (Connect("mx"), Expect(("250", "251"), (), P))),
    ("@ connect mx\nS: 503 5.5.1|5.5.0 [SMTP-COMMAND-ORDER]\n",
     (Connect("mx"), Expect(("503",), ("5.5.1", "5.5.0"), "SMTP-COMMAND-ORDER"))),
    ("@ connect mx\nC:\nC: \nC:  two spaces\n",
     (Connect("mx"), Send(""), Send(""), Send(" two spaces"))),
    ("@ connect mx\nC: # not a comment\n", (Connect("mx"), Send("# not a comment"))),
    ("@ connect mx\nC! EH\nC! LO x\\r\\n\n",
     (Connect("mx"), Send("EH", raw=True), Send("LO x\r\n", raw=True))),
    ("@ connect mx\nC! \\x00\\xff\\\\\\t.\\n\n",
     (Connect("mx"), Send("\x00\udcff\\\t.\n", raw=True))),
    ("@ connect mx\nC: {{literal}}\n", (Connect("mx"), Send("{{literal}}"))),
    ("@ connect mx\n@ need starttls\n@ starttls\n@ auth\nS: closed [SMTP-QUIT]\nS: none [precondition]\n",
     (Connect("mx"), Need("STARTTLS"), StartTLS(), Auth(), ExpectClosed("SMTP-QUIT"), ExpectNone(P))),
    ("\n\n   \n@ connect submissions\nS: 220 [precondition]\n\n",
     (Connect("submissions"), Expect(("220",), (), P))),
    # One id on '@ requirement': the default of the untagged lines after it.
    ("@ requirement SMTP-QUIT\n@ connect mx\nC: QUIT\nS: 221\nS: closed\n",
     (Requirement(("SMTP-QUIT",)), Connect("mx"), Send("QUIT"), Expect(("221",), (), "SMTP-QUIT"),
      ExpectClosed("SMTP-QUIT"))),
    ("@ requirement SMTP-QUIT AUTH-ONCE\n@ connect mx\nS: 503 [AUTH-ONCE]\nS: 221 [SMTP-QUIT]\n",
     (Requirement(("SMTP-QUIT", "AUTH-ONCE")), Connect("mx"), Expect(("503",), (), "AUTH-ONCE"),
      Expect(("221",), (), "SMTP-QUIT"))),
    ("@ requirement SMTP-RSET\n@ connect mx\nS: 250\n@ requirement SMTP-QUIT\nS: 221\n",
     (Requirement(("SMTP-RSET",)), Connect("mx"), Expect(("250",), (), "SMTP-RSET"),
      Requirement(("SMTP-QUIT",)), Expect(("221",), (), "SMTP-QUIT"))),
]
GOOD = [case for case in GOOD if case[1]]


@pytest.mark.parametrize(("text", "steps"), GOOD)
def test_parses(text: str, steps: tuple[Step, ...]) -> None:
    assert parse_dialogue(text, "t.dialogue").steps == steps


def test_parse_keeps_line_numbers() -> None:
    dialogue = parse_dialogue("# c\n\n@ connect mx\nS: 220 [precondition]\n", "t.dialogue")
    assert [s.line for s in dialogue.steps] == [1, 3, 4]
    assert dialogue.where(dialogue.steps[2]) == "t.dialogue:4"


def test_requirements_and_services() -> None:
    dialogue = parse_dialogue(
        "@ requirement SMTP-RSET SMTP-NOOP\n@ connect mx\nS: 220 [precondition]\nS: 250 [SMTP-NOOP]\n"
        "@ requirement SMTP-QUIT\n@ connect submission\nS: 250 [SMTP-RSET]\nS: 221\n"
        "@ connect mx\nS: 250 [AUTH-ONCE]\nS: 250 [need]\n"
    )
    # Declared ids and tags, in order of first mention; [precondition] and [need] are none.
    assert dialogue.requirements == ("SMTP-RSET", "SMTP-NOOP", "SMTP-QUIT", "AUTH-ONCE")
    assert dialogue.services == ("mx", "submission")


# --- parser: bad files, one line naming file:line ---------------------------------------------

BAD: list[tuple[str, int, str]] = [
    ("S: 220\n", 1, "must '@ connect"),
    ("# only a comment\n", 0, "no client or server lines"),
    ("", 0, "no client or server lines"),
    ("@ connect imap\n", 1, "@ connect takes one of"),
    ("@ connect\n", 1, "@ connect takes one of"),
    ("@ connect mx\n@ teleport\n", 2, "unknown directive"),
    ("@ connect mx\n@ starttls now\n", 2, "takes no argument"),
    ("@ connect mx\n@ requirement\n", 2, "needs at least one"),
    ("@ connect mx\n@ requirement lower-case\n", 2, "not a requirement id"),
    ("@ connect mx\n@ requirement NO-SUCH-REQUIREMENT\n", 2, "unknown requirement id"),
    ("@ connect mx\nS: 250\n", 2, "S: line names no requirement: end it with [REQUIREMENT-ID]"),
    ("@ requirement SMTP-QUIT SMTP-RSET\n@ connect mx\nS: 250\n", 3,
     "'@ requirement' (line 1) names several (SMTP-QUIT SMTP-RSET)"),
    ("@ connect mx\nS: 250 [NO-SUCH-REQUIREMENT]\n", 2, "unknown requirement id"),
    ("@ connect mx\nS: 250 [smtp-quit]\n", 2, "not a requirement id"),
    ("@ connect mx\nS: 250 []\n", 2, "malformed tag"),
    ("@ connect mx\nS: 250 [SMTP-QUIT\n", 2, "malformed tag"),
    ("@ connect mx\nS: [SMTP-QUIT]\n", 2, "needs a reply code"),
    ("@ requirement SMTP-QUIT\n@ connect mx\nS: 221 [precondition]\n", 1,
     "requirement SMTP-QUIT is named but no S: line checks it"),
    ("@ need STARTTLS\n", 1, "must '@ connect"),
    ("@ connect mx\n@ need\n", 2, "@ need takes one EHLO keyword"),
    ("@ connect mx\n@ need A B\n", 2, "@ need takes one EHLO keyword"),
    ("@ connect mx\nS:\n", 2, "needs a reply code"),
    ("@ connect mx\nS: 2500\n", 2, "not a reply code pattern"),
    ("@ connect mx\nS: 650\n", 2, "not a reply code pattern"),
    ("@ connect mx\nS: OK\n", 2, "not a reply code pattern"),
    ("@ connect mx\nS: 250 2.1\n", 2, "not an enhanced status code pattern"),
    ("@ connect mx\nS: 250 2.01.0\n", 2, "not an enhanced status code pattern"),
    ("@ connect mx\nS: 250 2.1.0 extra\n", 2, "takes a code, an optional enhanced code"),
    ("@ connect mx\nC:EHLO\n", 2, "must be followed by a space"),
    ("@ connect mx\nC!\n", 2, "C! needs something to send"),
    ("@ connect mx\nC! bad \\q escape\n", 2, "unknown escape \\q"),
    ("@ connect mx\nC! trailing \\\n", 2, "backslash at the end"),
    ("@ connect mx\nC: MAIL FROM:<{nobody}>\n", 2, "unknown variable {nobody}"),
    ("@ connect mx\nC: a { b\n", 2, "stray '{'"),
    ("@ connect mx\nC: a } b\n", 2, "stray '}'"),
    ("@ connect mx\nS: 250 [precondition]\nX: what\n", 3, "expected 'C:', 'C!', 'S:'"),
    ("@ connect mx\n  C: indented\n", 2, "expected 'C:'"),
]


@pytest.mark.parametrize(("text", "line", "problem"), BAD)
def test_bad_dialogue_is_one_line_error(text: str, line: int, problem: str) -> None:
    with pytest.raises(DialogueError) as info:
        parse_dialogue(text, "bad.dialogue")
    message = str(info.value)
    assert "\n" not in message
    where = f"bad.dialogue:{line}: " if line else "bad.dialogue: "
    assert message.startswith(where), message
    assert problem in message, message
    assert info.value.line == line


def test_load_dialogue_errors(tmp_path: Path) -> None:
    with pytest.raises(DialogueError, match=r"missing\.dialogue: cannot read"):
        load_dialogue(tmp_path / "missing.dialogue")
    binary = tmp_path / "binary.dialogue"
    binary.write_bytes(b"@ connect mx\nC: caf\xe9\n")
    with pytest.raises(DialogueError, match=r"binary\.dialogue:2: not UTF-8"):
        load_dialogue(binary)


def test_code_patterns() -> None:
    assert code_patterns(range(400, 600)) == ("4xx", "5xx")
    assert code_patterns({250, 251, 221}) == ("221", "250", "251")
    assert code_patterns(set(range(250, 260)) | {503}) == ("25x", "503")
    assert Expect.of(range(400, 600), requirement="SMTP-QUIT").describe() == "4xx|5xx"


def test_every_shipped_dialogue_parses() -> None:
    files = sorted(DIALOGUES.glob("*.dialogue"))
    assert len(files) >= 12
    for path in files:
        dialogue = load_dialogue(path)
        assert dialogue.requirements, f"{path.name} names no requirement"
        assert isinstance(dialogue.steps[0], Comment), f"{path.name} starts without a comment"
        # Every extension a dialogue negotiates is needed first: no red where it is not offered.
        for index, step in enumerate(dialogue.steps):
            if isinstance(step, StartTLS):
                assert Need("STARTTLS") in dialogue.steps[:index], f"{path.name}: @ starttls unneeded"


# --- escapes, variables, rendering --------------------------------------------------------------


@pytest.mark.parametrize(
    ("escaped", "text"),
    [("a\\r\\nb", "a\r\nb"), ("\\\\", "\\"), ("\\x7f\\x1b", "\x7f\x1b"), ("\\x80", "\udc80"),
     ("\\0", "\x00"), ("plain", "plain")],
)
def test_unescape(escaped: str, text: str) -> None:
    assert unescape(escaped) == text
    assert unescape(escape(text)) == text


def test_send_render() -> None:
    variables = {"sender": "a@b.example", "helo": "h"}
    assert Send("MAIL FROM:<{sender}>").render(variables) == b"MAIL FROM:<a@b.example>\r\n"
    assert Send("EH", raw=True).render(variables) == b"EH"
    assert Send("x\r\n.\n\udcff", raw=True).render(variables) == b"x\r\n.\n\xff"
    assert Send("{{x}}").render(variables) == b"{x}\r\n"
    assert expand(quote_braces("{a}}{"), {}) == "{a}}{"
    with pytest.raises(KeyError):
        Send("{user}").render(variables)
    with pytest.raises(ValueError):
        Send("a\r\nb")


# --- writer round trip ------------------------------------------------------------------------

_line_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30
)
_template = st.lists(
    st.one_of(_line_text.map(quote_braces), st.sampled_from(sorted(VARIABLES)).map("{{{}}}".format)),
    max_size=4,
).map("".join)
_raw_template = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=10).map(quote_braces),
        st.integers(0x80, 0xFF).map(lambda n: chr(0xDC00 + n)),
        st.sampled_from(sorted(VARIABLES)).map("{{{}}}".format),
    ),
    min_size=1, max_size=4,
).map("".join).filter(bool)
_comment = st.text(
    st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), max_size=30
)
_code = st.from_regex(r"[2-5x][0-9x][0-9x]", fullmatch=True)
_enhanced = st.from_regex(r"[245x]\.(0|[1-9][0-9]{0,2}|x)\.(0|[1-9][0-9]{0,2}|x)", fullmatch=True)
_ids = st.sampled_from(sorted(REGISTRY))
_tag = st.one_of(_ids, st.sampled_from((PRECONDITION, NEED)))
_steps = st.lists(
    st.one_of(
        _comment.map(Comment),
        st.lists(_ids, min_size=1, max_size=3, unique=True).map(lambda ids: Requirement(tuple(ids))),
        st.just(StartTLS()), st.just(Auth()),
        _tag.map(ExpectClosed), _tag.map(ExpectNone),
        st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,10}", fullmatch=True).map(lambda k: Need(k.upper())),
        _template.map(Send),
        _raw_template.map(lambda t: Send(t, raw=True)),
        st.builds(lambda c, e, r: Expect(tuple(c), tuple(e), r),
                  st.lists(_code, min_size=1, max_size=3), st.lists(_enhanced, max_size=2), _tag),
    ),
    max_size=12,
)


@given(service=st.sampled_from(("mx", "submission", "submissions")), steps=_steps)
def test_writer_parser_round_trip(service: str, steps: list[Step]) -> None:
    # Every requirement a '@ requirement' line names is checked by some line.
    declared = [i for s in steps if isinstance(s, Requirement) for i in s.ids]
    checks = [Expect(("250",), (), i) for i in dict.fromkeys(declared)]
    all_steps = (Connect(service), *steps, *checks, Expect(("221",), (), PRECONDITION))
    text = format_dialogue(all_steps)
    parsed = parse_dialogue(text, "rt.dialogue")
    assert parsed == Dialogue(all_steps)
    assert format_dialogue(parsed.steps) == text


# --- matching ---------------------------------------------------------------------------------

MATCHES: list[tuple[str, int, str | None, bool]] = [
    ("250", 250, None, True),
    ("250", 251, None, False),
    ("250|251", 251, None, True),
    ("5xx", 503, "5.5.1", True),
    ("5xx", 421, None, False),
    ("50x", 503, None, True),
    ("50x", 550, None, False),
    ("503 5.5.1", 503, "5.5.1", True),
    ("503 5.5.1", 503, "5.5.2", False),
    ("503 5.5.1", 503, None, False),
    ("503 5.x.x", 503, "5.7.0", True),
    ("503 5.5.1|5.5.0", 503, "5.5.0", True),
    ("250 2.1.x", 250, "2.1.5", True),
]


@pytest.mark.parametrize(("pattern", "code", "enhanced", "ok"), MATCHES)
def test_mismatch(pattern: str, code: int, enhanced: str | None, ok: bool) -> None:
    expect = parse_dialogue(f"@ connect mx\nS: {pattern} [precondition]\n").steps[1]
    assert isinstance(expect, Expect)
    status = EnhancedStatus.parse(enhanced) if enhanced else None
    problem = mismatch(expect, code, status)
    assert (problem is None) is ok, problem
    if not ok:
        assert problem is not None and str(code) in problem


# --- mailharness replay, end to end ---------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded_target() -> Iterator[Target]:
    from reference_agents.topology import TopologySettings, TopologyThread

    data_dir = Path(tempfile.mkdtemp(prefix="mailharness-test-replay-"))
    runner = TopologyThread(TopologySettings(data_dir=data_dir))
    try:
        yield runner.start()
    finally:
        runner.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_replay_command_passes_on_embedded_agents(capsys: pytest.CaptureFixture[str]) -> None:
    path = DIALOGUES / "nested_mail.dialogue"
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"PASS {path}" in out
    assert "C: MAIL FROM:<" in out and "S: 503" in out
    assert "AUTH PLAIN ****" in out  # credentials masked


def test_replay_command_fails_with_quirk(capsys: pytest.CaptureFixture[str]) -> None:
    path = DIALOGUES / "nested_mail.dialogue"
    assert main(["replay", str(path), "--quirk", "msa_nested_mail_accepted"]) == 1
    out = capsys.readouterr().out
    # The failing line names its requirement.
    assert f"FAIL {path}:19: SMTP-COMMAND-ORDER: expected 503, got 250" in out
    assert "  SMTP-COMMAND-ORDER: fail" in out


def test_replay_command_not_applicable_with_allowance(capsys: pytest.CaptureFixture[str]) -> None:
    # RFC 5321 §4.1.4 lets a server take MAIL before EHLO: the reset cannot be seen there.
    path = DIALOGUES / "starttls_resets_session.dialogue"
    assert main(["replay", str(path), "--allowance", "smtp_mail_before_ehlo"]) == 0
    out = capsys.readouterr().out
    assert f"NOT APPLICABLE {path}:13: the server answered 250" in out
    assert "  STARTTLS-RESET: not applicable" in out
    assert main(["replay", str(path), "--allowance", "mx_no_starttls"]) == 0
    out = capsys.readouterr().out
    assert "the server does not advertise STARTTLS (EHLO)" in out
    assert main(["replay", str(path), "--allowance", "no_such_allowance"]) == 2


def test_replay_command_against_a_target_file(
    embedded_target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target_file = tmp_path / "target.toml"
    target_file.write_text(dump_target(embedded_target), encoding="utf-8")
    files = [str(DIALOGUES / name) for name in ("rset_mid_transaction.dialogue", "help.dialogue")]
    assert main(["replay", *files, "--target", str(target_file)]) == 0
    assert capsys.readouterr().out.count("PASS ") == 2
    mx = embedded_target.receiver.mx
    assert mx is not None
    bob = embedded_target.receiver.accounts[0]
    urls = ["--mx", mx.url, "--account", f"{bob.user}:{bob.password}:{bob.address}",
            "--ca-file", str(embedded_target.ca_file)]
    assert main(["replay", files[0], *urls]) == 0


# --- replay verdicts: per line, not reached after the failing one, preconditions ----------------

VERDICTS = """\
@ connect mx
S: 220 [precondition]
C: EHLO {helo}
S: 250 [precondition]
C: NOOP
S: 250 [SMTP-NOOP]
C: RSET
S: 250 [SMTP-RSET]
C: NOOP
S: %s [SMTP-NOOP]
C: QUIT
S: 221 [SMTP-QUIT]
"""


def _replay(text: str, target: Target) -> ReplayResult:
    return asyncio.run(replay(parse_dialogue(text, "v.dialogue"), target, reply_timeout=5))


def test_replay_verdicts_per_line(embedded_target: Target) -> None:
    passed = _replay(VERDICTS % "250", embedded_target)
    assert passed.passed and passed.mismatch is None
    assert {r: v for r, (v, _) in passed.verdicts().items()} == {
        "SMTP-NOOP": "pass", "SMTP-RSET": "pass", "SMTP-QUIT": "pass"}
    # Line 10 fails: its requirement fails (though an earlier line of it held), the lines
    # before it that held pass, the ones after it are not reached.
    failed = _replay(VERDICTS % "503", embedded_target)
    assert failed.failed and failed.mismatch is not None
    assert (failed.mismatch.line, failed.mismatch.requirement) == (10, "SMTP-NOOP")
    assert str(failed.mismatch) == "v.dialogue:10: SMTP-NOOP: expected 503, got 250 2.0.0"
    assert {r: v for r, (v, _) in failed.verdicts().items()} == {
        "SMTP-NOOP": "fail", "SMTP-RSET": "pass", "SMTP-QUIT": "not_reached"}
    assert [m.requirement for m in failed.matched] == ["SMTP-NOOP", "SMTP-RSET"]


def test_replay_precondition_line_fails_no_requirement(embedded_target: Target) -> None:
    text = VERDICTS.replace("S: 250 [precondition]", "S: 550 [precondition]") % "250"
    result = _replay(text, embedded_target)
    assert result.mismatch is not None and result.mismatch.requirement is None
    assert not result.failed and not result.passed
    assert str(result.mismatch).startswith("v.dialogue:4: precondition: expected 550, got 250")
    assert {v for v, _ in result.verdicts().values()} == {"not_reached"}


def test_replay_need(embedded_target: Target) -> None:
    # '@ need' reads the last EHLO reply of the connection, before anything depending on it.
    text = ("@ connect mx\nS: 220 [precondition]\nC: EHLO {helo}\nS: 250 [precondition]\n"
            "@ need %s\nC: NOOP\nS: 250 [SMTP-NOOP]\n")
    offered = _replay(text % "PIPELINING", embedded_target)
    assert offered.passed, offered.render()
    missing = _replay(text % "X-MAILHARNESS-NONE", embedded_target)
    assert missing.mismatch is None and missing.not_applicable is not None
    assert "does not advertise X-MAILHARNESS-NONE" in missing.not_applicable
    assert missing.verdicts()["SMTP-NOOP"][0] == "not_applicable"
    assert b"NOOP" not in missing.transcripts[0].sent(), "nothing is sent after a missing need"
    # A [need] line: another answer the RFC permits makes the dialogue not applicable.
    text = ("@ connect mx\nS: 220 [precondition]\nC: MAIL FROM:<{sender}>\nS: %s [need]\n"
            "C: NOOP\nS: 250 [SMTP-NOOP]\n")
    assert _replay(text % "503", embedded_target).passed
    other = _replay(text % "250", embedded_target)
    assert other.not_applicable is not None and "answered 503" in other.not_applicable
    assert not other.failed


def test_replay_command_bad_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.dialogue"
    bad.write_text("@ connect mx\nS: 220 [precondition]\nS: twohundred\n", encoding="utf-8")
    assert main(["replay", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"mailharness replay: {bad}:3: not a reply code pattern")
    assert "\n" not in err


def test_replay_command_bad_target_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = DIALOGUES / "help.dialogue"
    assert main(["replay", str(path), "--mx", "smtp://mail.example:25", "--domain", "x.example"]) == 2
    assert "host names are not resolved" in capsys.readouterr().err
    assert main(["replay", str(path), "--target", str(tmp_path / "none.toml"),
                 "--quirk", "msa_nested_mail_accepted"]) == 2


def test_replay_command_missing_endpoint_exits_2(
    embedded_target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    mx = embedded_target.receiver.mx
    assert mx is not None
    # Only an MX: a submission dialogue cannot run.
    path = DIALOGUES / "nested_mail.dialogue"
    assert main(["replay", str(path), "--mx", mx.url, "--domain", "example.net"]) == 2
    assert "target has no submission endpoint" in capsys.readouterr().err
