"""`mailharness targets init`: the commented template and serve's target both load as written,
every key of them is under a comment, and problems are one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.targets import dump_target, load_target
from mailharness.targets_init import TEMPLATE, commented

MAILHARNESS = [sys.executable, "-m", "mailharness.cli"]


def _init(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILHARNESS, "targets", "init", *args], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)


def test_template_loads_and_every_key_is_explained(tmp_path: Path) -> None:
    done = _init(tmp_path)
    assert done.returncode == 0, done.stderr
    written = tmp_path / "target.toml"
    assert load_target(written) == TEMPLATE
    table, unexplained = "", []
    lines = written.read_text().splitlines()
    for above, line in zip(["", *lines], lines, strict=False):
        if line.startswith("["):
            table = line
        elif "=" in line and not line.startswith("#") and not table.startswith("[["):
            if not above.startswith("#"):
                unexplained.append(line)
    assert not unexplained, unexplained
    again = _init(tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        "mailharness targets init: target.toml exists (give --force to overwrite it)"]
    assert _init(tmp_path, "--force").returncode == 0


def test_from_serve_keeps_the_target_and_says_where_it_came_from(tmp_path: Path) -> None:
    missing = _init(tmp_path, "--from-serve", "--data-dir", "data")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "start `mailharness serve`" in missing.stderr
    data = tmp_path / "data"
    data.mkdir()
    (data / "ca.pem").write_text("")
    served = TEMPLATE.__class__(**{**{f: getattr(TEMPLATE, f) for f in TEMPLATE.__slots__},
                                   "ca_file": data / "ca.pem", "name": "served"})
    (data / "target.toml").write_text(dump_target(served))
    done = _init(tmp_path, "--from-serve", "--data-dir", "data", "-o", "mine.toml")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "mine.toml").read_text()
    assert text.startswith("# The target of `mailharness serve`")
    assert load_target(tmp_path / "mine.toml") == served
    assert commented(served, "x").count("\n# ") > 20
