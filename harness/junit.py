"""The JUnit XML of a run (``--junitxml``), made readable for CI systems: each test case's name
carries the requirement ids it checks, and the harness's report payload (transcripts, which a
CI system cannot show) gives way to a ``requirements`` property and one ``verdict`` property per
requirement.

``test_starttls_then_auth`` becomes ``test_starttls_then_auth [SUBMIT-STARTTLS, AUTH-REQUIRED]``,
so a CI system that lists failing test names lists the failing requirements."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from _pytest.junitxml import mangle_test_address

#: The property the harness attaches to each report (harness/plugin.py USER_PROPERTY).
PAYLOAD = "mailharness"


def _key(nodeid: str) -> tuple[str, str]:
    names = mangle_test_address(nodeid)
    return ".".join(names[:-1]), names[-1]


def rewrite(path: Path, results: Mapping[str, Mapping[str, Any]], prefix: str | None = None) -> int:
    """Rename the test cases of the JUnit file at *path* after the requirements *results*
    (nodeid -> the plugin's entry) names; returns how many were renamed. The file is left as
    it is when it does not parse."""
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError):
        return 0
    entries: dict[tuple[str, str], Mapping[str, Any]] = {}
    for nodeid, result in results.items():
        classname, name = _key(nodeid)
        if prefix:
            classname = f"{prefix}.{classname}"
        entries[(classname, name)] = result
    renamed = 0
    for case in tree.iter("testcase"):
        entry: Mapping[str, Any] | None = entries.get(
            (case.get("classname", ""), case.get("name", "")))
        properties = case.find("properties")
        if properties is not None:
            for prop in list(properties):
                if prop.get("name") == PAYLOAD:
                    properties.remove(prop)
        if entry is None:
            if properties is not None and not len(properties):
                case.remove(properties)
            continue
        requirements = [str(r) for r in entry.get("requirements", ())]
        if properties is None:
            properties = ET.SubElement(case, "properties")
            case.remove(properties)
            case.insert(0, properties)
        if requirements:
            case.set("name", f"{case.get('name')} [{', '.join(requirements)}]")
            ET.SubElement(properties, "property", name="requirements",
                          value=" ".join(requirements))
            renamed += 1
        for verdict in entry.get("verdicts", ()):
            ET.SubElement(properties, "property", name=f"verdict {verdict['id']}",
                          value=str(verdict["verdict"]))
        if not len(properties):
            case.remove(properties)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return renamed
