"""The dialogue format: parser tables, one-line errors, writer round trip, matching, `mailharness replay`."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.cli import main
from harness.dialogue import (
    VARIABLES,
    Auth,
    Comment,
    Connect,
    Dialogue,
    DialogueError,
    Expect,
    ExpectClosed,
    ExpectNone,
    Requirement,
    Send,
    StartTLS,
    Step,
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
from harness.targets import Target, dump_target

DIALOGUES = Path(__file__).parents[2] / "suites" / "smtp_model" / "dialogues"

# --- parser: good files ---------------------------------------------------------------------

GOOD: list[tuple[str, tuple[Step, ...]]] = [
    ("@ connect mx\nS: 220\n", (Connect("mx"), Expect(("220",)))),
    ("# hi\n@ connect submission\nC: EHLO {helo}\nS: 250\n",
     (Comment("hi"), Connect("submission"), Send("EHLO {helo}"), Expect(("250",)))),
    ("@connect MX\r\nS: 5XX 5.5.x\r\n", (Connect("mx"), Expect(("5xx",), ("5.5.x",)))),
    ("@ connect mx\nS: 250|251   # recipient ok\n", (Connect("mx"), Expect(("250", "251")))),
    ("@ connect mx\nS: 503 5.5.1|5.5.0\n", (Connect("mx"), Expect(("503",), ("5.5.1", "5.5.0")))),
    ("@ connect mx\nC:\nC: \nC:  two spaces\n",
     (Connect("mx"), Send(""), Send(""), Send(" two spaces"))),
    ("@ connect mx\nC: # not a comment\n", (Connect("mx"), Send("# not a comment"))),
    ("@ connect mx\nC! EH\nC! LO x\\r\\n\n",
     (Connect("mx"), Send("EH", raw=True), Send("LO x\r\n", raw=True))),
    ("@ connect mx\nC! \\x00\\xff\\\\\\t.\\n\n",
     (Connect("mx"), Send("\x00\udcff\\\t.\n", raw=True))),
    ("@ connect mx\nC: {{literal}}\n", (Connect("mx"), Send("{{literal}}"))),
    ("@ requirement SMTP-COMMAND-ORDER A-2\n@ connect smtp_ignored_comment # x\n", ()),  # bad, below
    ("@ connect mx\n@ starttls\n@ auth\nS: closed\nS: none\n",
     (Connect("mx"), StartTLS(), Auth(), ExpectClosed(), ExpectNone())),
    ("\n\n   \n@ connect submissions\nS: 220\n\n", (Connect("submissions"), Expect(("220",)))),
    ("@ requirement SMTP-QUIT AUTH-ONCE\n@ connect mx\nC: QUIT\n",
     (Requirement(("SMTP-QUIT", "AUTH-ONCE")), Connect("mx"), Send("QUIT"))),
]
GOOD = [case for case in GOOD if case[1]]


@pytest.mark.parametrize(("text", "steps"), GOOD)
def test_parses(text: str, steps: tuple[Step, ...]) -> None:
    assert parse_dialogue(text, "t.dialogue").steps == steps


def test_parse_keeps_line_numbers() -> None:
    dialogue = parse_dialogue("# c\n\n@ connect mx\nS: 220\n", "t.dialogue")
    assert [s.line for s in dialogue.steps] == [1, 3, 4]
    assert dialogue.where(dialogue.steps[2]) == "t.dialogue:4"


def test_requirements_and_services() -> None:
    dialogue = parse_dialogue(
        "@ requirement A B\n@ connect mx\nS: 220\n@ requirement B C\n@ connect submission\n"
        "@ connect mx\n"
    )
    assert dialogue.requirements == ("A", "B", "C")
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
    ("@ connect mx\nS:\n", 2, "needs a reply code"),
    ("@ connect mx\nS: 2500\n", 2, "not a reply code pattern"),
    ("@ connect mx\nS: 650\n", 2, "not a reply code pattern"),
    ("@ connect mx\nS: OK\n", 2, "not a reply code pattern"),
    ("@ connect mx\nS: 250 2.1\n", 2, "not an enhanced status code pattern"),
    ("@ connect mx\nS: 250 2.01.0\n", 2, "not an enhanced status code pattern"),
    ("@ connect mx\nS: 250 2.1.0 extra\n", 2, "takes a code and an optional enhanced code"),
    ("@ connect mx\nC:EHLO\n", 2, "must be followed by a space"),
    ("@ connect mx\nC!\n", 2, "C! needs something to send"),
    ("@ connect mx\nC! bad \\q escape\n", 2, "unknown escape \\q"),
    ("@ connect mx\nC! trailing \\\n", 2, "backslash at the end"),
    ("@ connect mx\nC: MAIL FROM:<{nobody}>\n", 2, "unknown variable {nobody}"),
    ("@ connect mx\nC: a { b\n", 2, "stray '{'"),
    ("@ connect mx\nC: a } b\n", 2, "stray '}'"),
    ("@ connect mx\nS: 250\nX: what\n", 3, "expected 'C:', 'C!', 'S:'"),
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


def test_every_shipped_dialogue_parses() -> None:
    files = sorted(DIALOGUES.glob("*.dialogue"))
    assert len(files) >= 12
    for path in files:
        dialogue = load_dialogue(path)
        assert dialogue.requirements, f"{path.name} names no requirement"
        assert isinstance(dialogue.steps[0], Comment), f"{path.name} starts without a comment"


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
_steps = st.lists(
    st.one_of(
        _comment.map(Comment),
        st.lists(st.from_regex(r"[A-Z0-9][A-Z0-9-]{0,10}", fullmatch=True), min_size=1,
                 max_size=3).map(lambda ids: Requirement(tuple(ids))),
        st.just(StartTLS()), st.just(Auth()), st.just(ExpectClosed()), st.just(ExpectNone()),
        _template.map(Send),
        _raw_template.map(lambda t: Send(t, raw=True)),
        st.builds(lambda c, e: Expect(tuple(c), tuple(e)),
                  st.lists(_code, min_size=1, max_size=3), st.lists(_enhanced, max_size=2)),
    ),
    max_size=12,
)


@given(service=st.sampled_from(("mx", "submission", "submissions")), steps=_steps)
def test_writer_parser_round_trip(service: str, steps: list[Step]) -> None:
    all_steps = (Connect(service), *steps, Expect(("221",)))
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
    expect = parse_dialogue(f"@ connect mx\nS: {pattern}\n").steps[1]
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
    assert f"FAIL {path}:18: expected 503, got 250" in out


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


def test_replay_command_bad_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.dialogue"
    bad.write_text("@ connect mx\nS: 220\nS: twohundred\n", encoding="utf-8")
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
