"""The IMAP structure corpus: hard messages (NAME.eml, exact bytes) and, beside each, the
answers the RFCs require for it (NAME.expected.py), written by hand from RFC 9051 §7.5.2 and
§6.4.5, RFC 5322 and RFC 2045/2046/2047/2231 — not computed by any MIME code of the project.

Each NAME.expected.py holds one assignment, ``EXPECTED = {...}``, of Python literals only (read
with ``ast.literal_eval``, never imported). Its keys, all optional:

- ``envelope``: the ENVELOPE as the nested tuple RFC 9051 §7.5.2 defines;
- ``bodystructure``: the BODYSTRUCTURE with its extension data (a server may stop the
  extension data anywhere; types, subtypes, parameter names and encodings compare without
  case, and so do charset values);
- ``size``: RFC822.SIZE;
- ``sections``: ``{"BODY[section]<partial>": octets}``;
- ``decoded``: ``{part: octets}``, BODY[part] decoded by the encoding BODYSTRUCTURE reports;
- ``binary``: ``{"BINARY[part]<partial>": octets}``; ``binary_size``: ``{part: number}``;
- ``binary_crlf``: parts whose BINARY must have no LF without its CR;
- ``append``: ``"literal8"`` (the message holds NUL) or ``"may-refuse"`` (APPEND may say NO);
- ``enable``: ``"IMAP4rev2"`` when the answers hold only after ENABLE IMAP4rev2.

Wherever the RFC allows several answers, the value is a set of them; ``...`` is any value.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    """One corpus message and what the RFCs require a server to answer about it."""

    name: str
    data: bytes
    expected: Mapping[str, object]

    def table(self, key: str) -> dict[str, object]:
        value = self.expected.get(key, {})
        return dict(value) if isinstance(value, dict) else {}

    def __repr__(self) -> str:
        return f"Case({self.name!r})"


def read_expected(path: Path) -> dict[str, object]:
    """The literal assigned to EXPECTED in *path*."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "EXPECTED"):
            value = ast.literal_eval(node.value)
            if isinstance(value, dict):
                return value
    raise ValueError(f"{path}: no EXPECTED = {{...}} literal")


def names() -> list[str]:
    return sorted(p.name.removesuffix(".eml") for p in HERE.glob("*.eml"))


def load(name: str) -> Case:
    return Case(name, (HERE / f"{name}.eml").read_bytes(),
                read_expected(HERE / f"{name}.expected.py"))


def cases() -> list[Case]:
    found = [load(name) for name in names()]
    if not found:
        # A corpus that silently held nothing would make the structure suite pass vacuously.
        raise RuntimeError(f"{HERE} holds no .eml message: the suites were installed without "
                           "their data files")
    return found
