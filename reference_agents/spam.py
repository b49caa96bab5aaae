"""Transparent spam scoring: a table of named rules with fixed scores, summed into a verdict."""

from __future__ import annotations

import email.errors
import email.header
import email.utils
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

#: The Generic Test for Unsolicited Bulk Email (spamassassin.apache.org/gtube/).
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")
_MIN_CAPS_LETTERS = 5


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """What the rules look at: the raw bytes, the header fields (name, value) in order, and the
    body as text (undecodable bytes kept as surrogate escapes)."""

    raw: bytes
    headers: tuple[tuple[str, str], ...]
    body: str

    def header(self, name: str) -> str | None:
        """The first field called *name* (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True, slots=True)
class SpamRule:
    """One rule: it adds ``score`` when ``check`` says the message matches."""

    name: str
    score: float
    description: str
    check: Callable[[ParsedMessage], bool] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class SpamVerdict:
    """The sum of the scores of the rules that matched, their names, and the verdict."""

    score: float
    rules: tuple[str, ...]
    is_spam: bool


def parse_message(data: bytes) -> ParsedMessage:
    """Split *data* into header fields and body without ever raising: the stdlib parser in its
    lenient compat32 mode records defects instead of failing."""
    message: Message = BytesHeaderParser(policy=compat32).parsebytes(data)
    headers = tuple((str(k), _text(v)) for k, v in message.items())
    payload = message.get_payload()
    body = payload if isinstance(payload, str) else ""
    return ParsedMessage(data, headers, body)


def _text(value: object) -> str:
    try:
        return str(value)
    except (UnicodeError, LookupError, ValueError):
        return ""


def _decoded(value: str) -> str:
    """An RFC 2047 encoded-word header value as text; the raw value if it cannot be decoded."""
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (email.errors.HeaderParseError, UnicodeError, LookupError, ValueError):
        return value


def _present(message: ParsedMessage, name: str) -> str | None:
    value = message.header(name)
    if value is None or not value.strip():
        return None
    return value


def _has_gtube(message: ParsedMessage) -> bool:
    return GTUBE in message.raw


def _missing_date(message: ParsedMessage) -> bool:
    value = _present(message, "Date")
    if value is None:
        return True
    try:
        email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return True
    return False


def _missing_message_id(message: ParsedMessage) -> bool:
    value = _present(message, "Message-ID")
    return value is None or _MESSAGE_ID.search(value) is None


def _missing_subject(message: ParsedMessage) -> bool:
    value = _present(message, "Subject")
    return value is None or not _decoded(value).strip()


def _empty_body(message: ParsedMessage) -> bool:
    return not message.body.strip()


def _all_caps_subject(message: ParsedMessage) -> bool:
    value = _present(message, "Subject")
    if value is None:
        return False
    letters = [c for c in _decoded(value) if c.isalpha()]
    return len(letters) >= _MIN_CAPS_LETTERS and all(c.isupper() for c in letters)


def _missing_from(message: ParsedMessage) -> bool:
    value = _present(message, "From")
    if value is None:
        return True
    try:
        addresses = email.utils.getaddresses([value])
    except (TypeError, ValueError, IndexError):
        return True
    return not any("@" in address for _, address in addresses)


#: The rules, in the order their names appear in a verdict.
RULES: tuple[SpamRule, ...] = (
    SpamRule("GTUBE", 1000.0, "contains the GTUBE anti-spam test string", _has_gtube),
    SpamRule("MISSING_DATE", 1.0, "no Date header field, or one that does not parse",
             _missing_date),
    SpamRule("MISSING_MESSAGE_ID", 1.0, "no Message-ID header field of the form <left@right>",
             _missing_message_id),
    SpamRule("MISSING_SUBJECT", 0.5, "no Subject header field, or an empty one",
             _missing_subject),
    SpamRule("EMPTY_BODY", 0.5, "the body is empty or only white space", _empty_body),
    SpamRule("ALL_CAPS_SUBJECT", 1.0,
             f"the Subject has at least {_MIN_CAPS_LETTERS} letters, all upper case",
             _all_caps_subject),
    SpamRule("MISSING_FROM", 1.5, "no From header field with an address in it", _missing_from),
)


def score_message(
    data: bytes, threshold: float = 5.0, *, rules: Sequence[SpamRule] = RULES
) -> SpamVerdict:
    """Score *data* against *rules*; spam when the score reaches *threshold*. Never raises on
    malformed input: what cannot be parsed counts as missing."""
    message = parse_message(data)
    matched = [rule for rule in rules if rule.check(message)]
    score = round(sum(rule.score for rule in matched), 3)
    return SpamVerdict(score, tuple(rule.name for rule in matched), score >= threshold)
