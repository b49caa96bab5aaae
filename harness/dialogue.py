"""Replayable SMTP dialogues (sans-IO): the plain-text format, its parser, writer and reply matcher.

A dialogue is a script of what a client sends and which reply codes it expects back; each
expectation names the registry requirement it checks (or is a ``[precondition]`` step)::

    # RFC 5321 §4.1.4: MAIL inside a transaction is a bad sequence
    @ requirement SMTP-COMMAND-ORDER
    @ connect submission
    S: 220 [precondition]
    C: EHLO client.example
    S: 250 [precondition]
    @ need STARTTLS
    @ starttls
    C: EHLO client.example
    S: 250 [precondition]
    @ auth
    C: MAIL FROM:<{sender}>
    S: 250 [precondition]
    C: MAIL FROM:<{sender}>
    S: 503 5.5.1

See docs/dialogues.md for the whole format. Everything here works on text and values; the
asyncio replayer is harness/replay.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.protocol.smtp import EnhancedStatus
from harness.requirements import REGISTRY

#: Services a dialogue may connect to (the target's endpoint of that name).
SERVICES = ("submission", "submissions", "mx")

#: Variables a client line may use, filled in from the target at replay time.
VARIABLES: Mapping[str, str] = {
    "sender": "the first account address of the sender provider",
    "recipient": "the first account address of the receiver provider",
    "domain": "the mail domain of the provider connected to",
    "local_recipient": "the first account address of the provider connected to",
    "user": "the login name of the first account of the provider connected to",
    "password": "the password of that account",
    "auth_plain": "base64 AUTH PLAIN initial response (RFC 4616) for that account",
    "helo": "the client's host name, client.mailharness.invalid",
}

_VAR_RE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_CODE_RE = re.compile(r"[2-5x][0-9x][0-9x]")
_SUB = r"(?:0|[1-9][0-9]{0,2}|x)"
_ENHANCED_RE = re.compile(rf"[245x]\.{_SUB}\.{_SUB}")
_DIRECTIVE_RE = re.compile(r"@[ \t]*([A-Za-z-]+)(?:[ \t]+(.*?))?[ \t]*")
_REQUIREMENT_ID_RE = re.compile(r"[A-Z0-9][A-Z0-9-]*")
_KEYWORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_TAG_RE = re.compile(r"\[([^\[\]\s]*)\]")

#: The tag of an expectation that is a step the dialogue depends on but does not judge: a
#: mismatch there leaves the dialogue's requirements not reached.
PRECONDITION = "precondition"
#: The tag of an expectation that states a property of the target the dialogue needs (the RFC
#: permits the other answer too): a mismatch there makes the dialogue not applicable.
NEED = "need"


class DialogueError(ValueError):
    """A malformed dialogue; ``str()`` is one line: ``file:line: problem``."""

    def __init__(self, problem: str, *, source: str = "<dialogue>", line: int = 0) -> None:
        super().__init__(problem)
        self.problem = problem
        self.source = source
        self.line = line

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return " ".join(f"{where}: {self.problem}".split("\n"))


# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comment:
    """A ``#`` line: kept so that a written dialogue reads back the same."""

    text: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Requirement:
    """``@ requirement ID ...``: registry ids this dialogue checks. With one id, it is the
    requirement of the untagged expectations after it."""

    ids: tuple[str, ...]
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Connect:
    """``@ connect SERVICE``: open a new connection (closing any previous one)."""

    service: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class StartTLS:
    """``@ starttls``: STARTTLS, expect 220, then the TLS handshake (RFC 3207)."""

    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Need:
    """``@ need KEYWORD``: the last EHLO reply of this connection advertises the service
    extension *keyword* (upper case); otherwise the dialogue is not applicable. Put it before
    anything that depends on the extension is sent."""

    keyword: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Auth:
    """``@ auth``: AUTH PLAIN with the first account of the provider connected to, expect 235."""

    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Send:
    """``C: text`` (sent with CRLF added) or, when ``raw``, ``C! text`` (sent exactly, after
    backslash escapes). ``text`` is the template, with ``{variable}`` holes and ``{{``/``}}``
    for literal braces; a raw line's escapes are already decoded (octets 0x80-0xff that are
    not UTF-8 are held as surrogate escapes)."""

    text: str
    raw: bool = False
    line: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if not self.raw and ("\r" in self.text or "\n" in self.text):
            raise ValueError("a C: line cannot hold CR or LF; use a raw C! line")
        if not self.raw and _has_surrogate(self.text):
            raise ValueError("a C: line cannot hold raw octets; use a raw C! line")

    def render(self, variables: Mapping[str, str]) -> bytes:
        """The exact bytes to send."""
        text = expand(self.text, variables)
        data = text.encode("utf-8", errors="surrogateescape")
        return data if self.raw else data + b"\r\n"


@dataclass(frozen=True, slots=True)
class Expect:
    """``S: 503 5.5.1 [SMTP-COMMAND-ORDER]``: read one reply; its code must match one of
    ``codes`` (``250``, ``5xx``, ``25x``) and, when ``enhanced`` is not empty, its enhanced
    status code one of those (``5.5.1``, ``5.x.x``). ``requirement`` is the registry id a
    mismatch fails, or PRECONDITION, or NEED (None: not given, the parser fills it in)."""

    codes: tuple[str, ...]
    enhanced: tuple[str, ...] = ()
    requirement: str | None = None
    line: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if not self.codes:
            raise ValueError("an expectation needs at least one code")
        for code in self.codes:
            if not _CODE_RE.fullmatch(code):
                raise ValueError(f"not a reply code pattern: {code!r}")
        for enhanced in self.enhanced:
            if not _ENHANCED_RE.fullmatch(enhanced):
                raise ValueError(f"not an enhanced status code pattern: {enhanced!r}")

    @classmethod
    def of(cls, codes: Iterable[int], enhanced: Iterable[str] = (), requirement: str | None = None
           ) -> Expect:
        """An expectation of exactly these codes (sorted; a full ``5xx`` or ``25x`` written so)."""
        return cls(code_patterns(codes), tuple(enhanced), requirement)

    def describe(self) -> str:
        text = "|".join(self.codes)
        return f"{text} {'|'.join(self.enhanced)}" if self.enhanced else text


@dataclass(frozen=True, slots=True)
class ExpectClosed:
    """``S: closed``: the server closes the connection (no further reply)."""

    requirement: str | None = None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ExpectNone:
    """``S: none``: no reply arrives within the quiet period (the replayer's, about a second)."""

    requirement: str | None = None
    line: int = field(default=0, compare=False)


Step = (Comment | Requirement | Connect | Need | StartTLS | Auth | Send | Expect | ExpectClosed
        | ExpectNone)
Expectation = Expect | ExpectClosed | ExpectNone
#: Steps that talk to the server (everything but comments and requirement lines).
_SESSION_STEPS = (Connect, Need, StartTLS, Auth, Send, Expect, ExpectClosed, ExpectNone)


def code_patterns(codes: Iterable[int]) -> tuple[str, ...]:
    """*codes* as reply code patterns, sorted: a full hundred as ``5xx``, a full ten as ``25x``."""
    wanted = sorted({c for c in codes if 200 <= c <= 599})
    tens: dict[int, list[int]] = {}
    for code in wanted:
        tens.setdefault(code // 10, []).append(code)
    hundreds: dict[int, int] = {}
    for ten, members in tens.items():
        if len(members) == 10:
            hundreds[ten // 10] = hundreds.get(ten // 10, 0) + 1
    patterns: list[str] = []
    for ten, members in tens.items():
        if hundreds.get(ten // 10) == 10:
            if ten % 10 == 0:
                patterns.append(f"{ten // 10}xx")
        elif len(members) == 10:
            patterns.append(f"{ten}x")
        else:
            patterns.extend(str(c) for c in members)
    return tuple(patterns)


def is_judged(requirement: str | None) -> bool:
    """True when an expectation tagged *requirement* checks a registry requirement."""
    return requirement not in (None, PRECONDITION, NEED)


@dataclass(frozen=True, slots=True)
class Dialogue:
    """A parsed dialogue: its steps in order, and where it came from."""

    steps: tuple[Step, ...]
    source: str = field(default="<dialogue>", compare=False)

    @property
    def requirements(self) -> tuple[str, ...]:
        """Every requirement the dialogue names (``@ requirement`` lines and expectation
        tags), in order of first mention."""
        ids: list[str] = []
        for step in self.steps:
            if isinstance(step, Requirement):
                ids.extend(i for i in step.ids if i not in ids)
            elif isinstance(step, Expect | ExpectClosed | ExpectNone) and is_judged(step.requirement):
                assert step.requirement is not None
                if step.requirement not in ids:
                    ids.append(step.requirement)
        return tuple(ids)

    @property
    def services(self) -> tuple[str, ...]:
        """The services connected to, in order of first use."""
        seen: list[str] = []
        for step in self.steps:
            if isinstance(step, Connect) and step.service not in seen:
                seen.append(step.service)
        return tuple(seen)

    def where(self, step: Step) -> str:
        """``file:line`` of *step* (the source alone when it has no line)."""
        return f"{self.source}:{step.line}" if step.line else self.source


# ---------------------------------------------------------------------------------------------
# Variables and escapes
# ---------------------------------------------------------------------------------------------


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def template_variables(template: str) -> list[str]:
    """The variable names used in *template*; ValueError for a stray brace or empty name."""
    names: list[str] = []
    for m in _VAR_RE.finditer(template):
        token = m[0]
        if token in ("{{", "}}"):
            continue
        if m[1] is None:
            raise ValueError(f"stray {token!r} (write {token * 2} for a literal brace)")
        names.append(m[1])
    return names


def expand(template: str, variables: Mapping[str, str]) -> str:
    """*template* with every ``{name}`` replaced; KeyError names a missing variable."""

    def one(m: re.Match[str]) -> str:
        token = m[0]
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        if m[1] is None:
            raise ValueError(f"stray {token!r} in {template!r}")
        return variables[m[1]]

    return _VAR_RE.sub(one, template)


def quote_braces(text: str) -> str:
    """*text* as a template that expands to itself."""
    return text.replace("{", "{{").replace("}", "}}")


_ESCAPES = {"r": "\r", "n": "\n", "t": "\t", "\\": "\\", "0": "\x00"}
_ESCAPE_RE = re.compile(r"\\(x[0-9A-Fa-f]{2}|.|$)")


def unescape(text: str) -> str:
    """Decode ``\\r \\n \\t \\0 \\\\ \\xNN`` in a raw line; ValueError for anything else."""

    def one(m: re.Match[str]) -> str:
        code = m[1]
        if code in _ESCAPES:
            return _ESCAPES[code]
        if code.startswith("x") and len(code) == 3:
            value = int(code[1:], 16)
            # Octets above 0x7f are sent as that very octet (not UTF-8 encoded).
            return chr(value) if value < 0x80 else chr(0xDC00 + value)
        raise ValueError(f"unknown escape \\{code}" if code else "backslash at the end of the line")

    return _ESCAPE_RE.sub(one, text)


def escape(text: str) -> str:
    """Inverse of unescape(): control characters, backslashes and raw octets escaped."""
    out: list[str] = []
    for ch in text:
        n = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif 0xDC80 <= n <= 0xDCFF:
            out.append(f"\\x{n - 0xDC00:02x}")
        elif n < 0x20 or n == 0x7F:
            out.append(f"\\x{n:02x}")
        else:
            out.append(ch)
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


def _strip_comment(text: str) -> str:
    """Text of an S: or @ line without a trailing ``# comment``."""
    cut = text.find("#")
    return (text if cut < 0 else text[:cut]).strip()


def _check_requirement_id(req_id: str) -> str:
    if not _REQUIREMENT_ID_RE.fullmatch(req_id):
        raise ValueError(f"not a requirement id: {req_id!r}")
    if req_id not in REGISTRY:
        raise ValueError(f"unknown requirement id {req_id!r} (harness/requirements)")
    return req_id


def _parse_tag(word: str) -> str:
    m = _TAG_RE.fullmatch(word)
    if m is None or not m[1]:
        raise ValueError(f"malformed tag {word!r} (e.g. [SMTP-QUIT], [precondition], [need])")
    if m[1] in (PRECONDITION, NEED):
        return m[1]
    return _check_requirement_id(m[1])


def parse_expect(text: str, line: int = 0) -> Expect | ExpectClosed | ExpectNone:
    """The part of an ``S:`` line after the colon; ValueError when malformed. The requirement
    is None unless the line ends with a ``[TAG]``."""
    words = _strip_comment(text).split()
    requirement: str | None = None
    if words and words[-1].startswith("["):
        requirement = _parse_tag(words.pop())
    if not words:
        raise ValueError("S: needs a reply code (e.g. 250, 5xx, 250|251), 'closed' or 'none'")
    if words == ["closed"]:
        return ExpectClosed(requirement, line)
    if words == ["none"]:
        return ExpectNone(requirement, line)
    if len(words) > 2:
        raise ValueError(f"S: takes a code, an optional enhanced code and an optional [tag], "
                         f"got {' '.join(words)!r}")
    codes = tuple(words[0].lower().split("|"))
    for code in codes:
        if not _CODE_RE.fullmatch(code):
            raise ValueError(f"not a reply code pattern: {code!r} (e.g. 250, 5xx, 25x, 250|251)")
    enhanced: tuple[str, ...] = ()
    if len(words) == 2:
        enhanced = tuple(words[1].lower().split("|"))
        for item in enhanced:
            if not _ENHANCED_RE.fullmatch(item):
                raise ValueError(f"not an enhanced status code pattern: {item!r} (e.g. 5.5.1, 5.x.x)")
    return Expect(codes, enhanced, requirement, line)


def _directive(name: str, arg: str, line: int) -> Step:
    name = name.lower()
    if name == "connect":
        service = arg.lower()
        if service not in SERVICES:
            raise ValueError(f"@ connect takes one of {', '.join(SERVICES)}, got {arg!r}")
        return Connect(service, line)
    if name == "requirement":
        ids = tuple(arg.split())
        if not ids:
            raise ValueError("@ requirement needs at least one requirement id")
        for req_id in ids:
            _check_requirement_id(req_id)
        return Requirement(ids, line)
    if name == "need":
        words = arg.split()
        if len(words) != 1 or not _KEYWORD_RE.fullmatch(words[0]):
            raise ValueError(f"@ need takes one EHLO keyword (e.g. STARTTLS), got {arg!r}")
        return Need(words[0].upper(), line)
    if name in ("starttls", "auth"):
        if arg:
            raise ValueError(f"@ {name} takes no argument, got {arg!r}")
        return StartTLS(line) if name == "starttls" else Auth(line)
    raise ValueError(f"unknown directive @ {name} (connect, need, starttls, auth, requirement)")


def _check_send(text: str, raw: bool, line: int) -> Send:
    body = unescape(text) if raw else text
    for name in template_variables(body):
        if name not in VARIABLES:
            raise ValueError(f"unknown variable {{{name}}} (known: {', '.join(VARIABLES)})")
    return Send(body, raw, line)


def _parse_line(text: str, line: int) -> Step | None:
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.startswith("#"):
        return Comment(stripped[1:].removeprefix(" "), line)
    if stripped.startswith("@"):
        m = _DIRECTIVE_RE.fullmatch(_strip_comment(stripped))
        if m is None:
            raise ValueError(f"malformed directive {stripped!r}")
        return _directive(m[1], m[2] or "", line)
    head = text[:2]
    if head in ("C:", "C!"):
        rest = text[2:]
        if rest.startswith(" "):
            rest = rest[1:]
        elif rest:
            raise ValueError(f"{head} must be followed by a space")
        if head == "C!" and not rest:
            raise ValueError("C! needs something to send")
        return _check_send(rest, head == "C!", line)
    if head == "S:":
        return parse_expect(text[2:], line)
    raise ValueError(f"expected 'C:', 'C!', 'S:', '@ directive' or '# comment', got {text[:40]!r}")


def _untagged(step: Requirement | None) -> str:
    if step is None:
        return ("S: line names no requirement: end it with [REQUIREMENT-ID] or [precondition], "
                "or put '@ requirement ID' above it")
    return (f"S: line names no requirement and '@ requirement' (line {step.line}) names several "
            f"({' '.join(step.ids)}): end it with one of them in brackets, or [precondition]")


def parse_dialogue(text: str, source: str = "<dialogue>") -> Dialogue:
    """Parse dialogue text; any problem raises a one-line DialogueError naming file:line.

    An ``S:`` line without a tag takes the requirement of the last ``@ requirement`` line above
    it when that names exactly one; otherwise it is an error."""
    steps: list[Step] = []
    connected = False
    declared: Requirement | None = None
    for number, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.removesuffix("\r")
        try:
            step = _parse_line(line, number)
        except ValueError as exc:
            raise DialogueError(str(exc), source=source, line=number) from None
        if step is None:
            continue
        if isinstance(step, Connect):
            connected = True
        elif isinstance(step, _SESSION_STEPS) and not connected:
            raise DialogueError(
                "the dialogue must '@ connect SERVICE' before this line", source=source,
                line=number,
            )
        if isinstance(step, Requirement):
            declared = step
        elif isinstance(step, Expect | ExpectClosed | ExpectNone) and step.requirement is None:
            if declared is None or len(declared.ids) != 1:
                raise DialogueError(_untagged(declared), source=source, line=number)
            step = replace(step, requirement=declared.ids[0])
        steps.append(step)
    if not any(isinstance(s, Send | Expect | ExpectClosed | ExpectNone | StartTLS | Auth)
               for s in steps):
        raise DialogueError("no client or server lines", source=source, line=0)
    checked = {s.requirement for s in steps if isinstance(s, Expect | ExpectClosed | ExpectNone)}
    for step in steps:
        if isinstance(step, Requirement):
            unchecked = [i for i in step.ids if i not in checked]
            if unchecked:
                raise DialogueError(f"requirement {unchecked[0]} is named but no S: line checks it",
                                    source=source, line=step.line)
    return Dialogue(tuple(steps), source)


def load_dialogue(path: str | Path) -> Dialogue:
    """Read and parse a dialogue file (UTF-8)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DialogueError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DialogueError(f"not UTF-8 text ({exc.reason})", source=str(path), line=line) from None
    return parse_dialogue(text, str(path))


# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------


def format_step(step: Step) -> str:
    """One line of dialogue text for *step*."""
    if isinstance(step, Comment):
        if "\n" in step.text or "\r" in step.text:
            raise ValueError("a comment is one line")
        return f"# {step.text}".rstrip() if step.text.strip() else "#"
    if isinstance(step, Requirement):
        return f"@ requirement {' '.join(step.ids)}"
    if isinstance(step, Connect):
        return f"@ connect {step.service}"
    if isinstance(step, Need):
        return f"@ need {step.keyword}"
    if isinstance(step, StartTLS):
        return "@ starttls"
    if isinstance(step, Auth):
        return "@ auth"
    if isinstance(step, Send):
        if step.raw:
            return f"C! {escape(step.text)}"
        return f"C: {step.text}" if step.text else "C:"
    tag = f" [{step.requirement}]" if step.requirement else ""
    if isinstance(step, ExpectClosed):
        return f"S: closed{tag}"
    if isinstance(step, ExpectNone):
        return f"S: none{tag}"
    return f"S: {step.describe()}{tag}"


def format_dialogue(steps: Sequence[Step]) -> str:
    """Dialogue text that parse_dialogue() reads back to the same steps."""
    return "".join(format_step(step) + "\n" for step in steps)


def write_dialogue(path: str | Path, steps: Sequence[Step]) -> Path:
    """Write *steps* to *path* (directories created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_dialogue(steps), encoding="utf-8", errors="surrogateescape")
    return path


# ---------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------


def code_matches(pattern: str, code: int) -> bool:
    """``5xx`` / ``25x`` / ``250`` against a reply code."""
    text = f"{code:03d}"
    return len(pattern) == 3 and all(p in ("x", c) for p, c in zip(pattern, text, strict=True))


def enhanced_matches(pattern: str, enhanced: EnhancedStatus) -> bool:
    """``5.5.1`` / ``5.x.x`` against an enhanced status code."""
    parts = pattern.split(".")
    actual = (enhanced.klass, enhanced.subject, enhanced.detail)
    return all(p == "x" or int(p) == a for p, a in zip(parts, actual, strict=True))


def mismatch(expect: Expect, code: int, enhanced: EnhancedStatus | None) -> str | None:
    """None when a reply with *code* and *enhanced* satisfies *expect*, else why not."""
    if not any(code_matches(p, code) for p in expect.codes):
        got = f"{code} {enhanced}" if enhanced is not None else str(code)
        return f"expected {expect.describe()}, got {got}"
    if expect.enhanced:
        if enhanced is None:
            return f"expected enhanced status {'|'.join(expect.enhanced)}, got {code} without one"
        if not any(enhanced_matches(p, enhanced) for p in expect.enhanced):
            return f"expected {expect.describe()}, got {code} {enhanced}"
    return None
