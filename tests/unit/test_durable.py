"""The durable-file primitives: nothing half-written is ever visible, nothing is left aside."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_agents.durable import replace_file, write_new_file


def test_write_new_file_refuses_an_existing_path(tmp_path: Path) -> None:
    path = tmp_path / "message"
    write_new_file(path, b"first")
    with pytest.raises(FileExistsError):
        write_new_file(path, b"second")
    assert path.read_bytes() == b"first"


def test_write_new_file_does_not_follow_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (tmp_path / "link").symlink_to(victim)
    with pytest.raises(OSError):
        write_new_file(tmp_path / "link", b"overwrite")
    assert victim.read_bytes() == b"keep"


def test_replace_file_creates_then_replaces_and_leaves_nothing_aside(tmp_path: Path) -> None:
    path = tmp_path / "target.toml"
    replace_file(path, b"one")
    assert path.read_bytes() == b"one"
    replace_file(path, b"two, longer")
    assert path.read_bytes() == b"two, longer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target.toml"]


def test_replace_file_clears_a_stale_aside_file(tmp_path: Path) -> None:
    # A crash between writing aside and renaming leaves "<name>.new"; the next write must not
    # trip over it.
    path = tmp_path / "uidvalidity"
    (tmp_path / "uidvalidity.new").write_bytes(b"stale")
    replace_file(path, b"42")
    assert path.read_bytes() == b"42"
    assert not (tmp_path / "uidvalidity.new").exists()
