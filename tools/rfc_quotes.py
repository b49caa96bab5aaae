"""The RFC sentences of the registry's requirements (harness/requirements/quotes.json: id -> the
sentence(s) of the cited section that state the rule, verbatim but for white space), checked
against the RFC texts (``--rfc-dir``, one ``rfcNNNN.txt`` per RFC).

    python tools/rfc_quotes.py --rfc-dir ../shared/rfc --check   # every quote is in its section
    python tools/rfc_quotes.py --rfc-dir ../shared/rfc --draft   # propose quotes for ids without

``--draft`` proposes, for each requirement without a quote, the sentence of its section with a
BCP 14 keyword of its level (MUST, SHOULD, MAY and their forms) that shares the most words with
its text; a person (or a reviewer) then reads each proposal against the rule and keeps, replaces
or removes it. ``--check`` fails (exit 1) naming each quote that is not in its section.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.requirements import REGISTRY, Requirement  # noqa: E402

OUT = ROOT / "harness" / "requirements" / "quotes.json"
_PAGE_LINE = re.compile(r"^(RFC \d+ .*\d{4}|.*\[Page \d+\])\s*$")
_HEADING = re.compile(r"^(\d+(?:\.\d+)*)\.?\s{1,}\S")
_WORD = re.compile(r"[a-z0-9]+")
_KEYWORDS = {
    "MUST": ("MUST", "REQUIRED", "SHALL"),
    "SHOULD": ("SHOULD", "RECOMMENDED"),
    "MAY": ("MAY", "OPTIONAL"),
}
_STOP = frozenset("a an the of to in and or is are be for on with by as it its that this not "
                  "from at which when each any no".split())


def _lines(text: str) -> list[str]:
    return [line for line in text.replace("\f", "\n").splitlines() if not _PAGE_LINE.match(line)]


def section_text(text: str, section: str) -> str | None:
    """The body of *section* (e.g. ``4.4`` or ``6.4.4``): its lines up to the next heading that
    is not one of its subsections."""
    lines = _lines(text)
    start = None
    for i, line in enumerate(lines):
        m = _HEADING.match(line)
        if m and m.group(1) == section and not line.startswith(" "):
            start = i
            break
    if start is None:
        return None
    body = []
    for line in lines[start + 1:]:
        m = _HEADING.match(line)
        if m and not line.startswith(" ") and not m.group(1).startswith(section + "."):
            break
        body.append(line)
    return "\n".join(body)


def sentences(text: str) -> list[str]:
    """Prose sentences, white space joined; figures (indented more than 6) and ABNF left out."""
    paragraphs, current = [], []
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not stripped or indent > 6 or "=" in stripped and indent > 3:
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(stripped)
    if current:
        paragraphs.append(" ".join(current))
    found = []
    for paragraph in paragraphs:
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z\"(])", paragraph):
            sentence = sentence.strip()
            if 20 <= len(sentence) <= 600:
                found.append(sentence)
    return found


def best_sentence(requirement: Requirement, candidates: list[str]) -> str | None:
    words = {w for w in _WORD.findall(requirement.text.lower()) if w not in _STOP}
    keywords = _KEYWORDS[requirement.level.value]

    def score(sentence: str) -> tuple[int, int]:
        has_level = any(re.search(rf"\b{k}\b", sentence) for k in keywords)
        overlap = len(words & set(_WORD.findall(sentence.lower())))
        return (int(has_level), overlap)

    ranked = sorted(candidates, key=score, reverse=True)
    return ranked[0] if ranked and score(ranked[0])[1] > 0 else None


def normalise(text: str) -> str:
    return " ".join(text.split()).replace("- ", "-")


def check(rfc_dir: Path, quotes: dict[str, str]) -> list[str]:
    """The quotes that are not in their requirement's section (or name no requirement)."""
    problems = []
    for rid, quote in sorted(quotes.items()):
        requirement = REGISTRY.get(rid)
        if requirement is None:
            problems.append(f"{rid}: not in the registry")
            continue
        path = rfc_dir / f"rfc{requirement.rfc}.txt"
        body = section_text(path.read_text(encoding="utf-8", errors="replace"),
                            requirement.section) if path.exists() else None
        if body is None:
            problems.append(f"{rid}: no {requirement.citation} in {rfc_dir}")
        elif normalise(quote) not in normalise(body):
            problems.append(f"{rid}: not in {requirement.citation}: {quote[:80]!r}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rfc-dir", type=Path, required=True)
    parser.add_argument("--quotes", type=Path, default=OUT)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--draft", action="store_true")
    args = parser.parse_args()
    quotes: dict[str, str] = (json.loads(args.quotes.read_text(encoding="utf-8"))
                              if args.quotes.exists() else {})
    if args.check:
        problems = check(args.rfc_dir, quotes)
        for line in problems:
            print(f"  {line}")
        print(f"{len(quotes) - len(problems)} of {len(quotes)} quotes found in their sections; "
              f"{len(REGISTRY) - len(quotes)} requirements have none")
        return 1 if problems else 0
    missing = []
    for requirement in REGISTRY.values():
        if requirement.id in quotes:
            continue
        path = args.rfc_dir / f"rfc{requirement.rfc}.txt"
        body = section_text(path.read_text(encoding="utf-8", errors="replace"),
                            requirement.section) if path.exists() else None
        sentence = best_sentence(requirement, sentences(body)) if body is not None else None
        if sentence is None:
            missing.append(requirement.id)
        else:
            quotes[requirement.id] = sentence
    args.quotes.write_text(json.dumps(quotes, indent=1, ensure_ascii=False, sort_keys=True)
                           + "\n", encoding="utf-8")
    print(f"{len(quotes)} of {len(REGISTRY)} requirements quoted in {args.quotes}; no proposal "
          f"for {', '.join(missing) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
