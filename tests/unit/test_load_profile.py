"""Load profiles (harness/load/profile.py): the fields a profile sets, and a bad profile as
one line naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.load.profile import ProfileError, load_profile
from harness.load.runner import LoadOptions


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_profile_sets_the_fields_it_names() -> None:
    example = Path(__file__).resolve().parents[2] / "docs" / "load-profile.toml"
    fields = load_profile(example)
    options = LoadOptions(**fields)
    options.check()
    assert options.sizes and all(n >= 100 and w > 0 for n, w in options.sizes)
    assert fields["managers_per_mailbox"] == 2 and fields["readers_per_mailbox"] == 1


def test_an_empty_profile_sets_nothing(tmp_path: Path) -> None:
    assert load_profile(_write(tmp_path, "")) == {}
    assert load_profile(_write(tmp_path, "[load]\n")) == {}


@pytest.mark.parametrize(("text", "key", "problem"), [
    ("[load]\nsendrs = 3\n", "load.sendrs", "unknown key"),
    ("[load]\nsenders = 2.5\n", "load.senders", "must be an integer"),
    ("[load]\nsenders = true\n", "load.senders", "must be an integer"),
    ("[load]\nduration = \"long\"\n", "load.duration", "must be a number"),
    ("[load]\nsizes = []\n", "load.sizes", "list of [octets, weight]"),
    ("[load]\nsizes = [[1500]]\n", "load.sizes", "entry 1 must be"),
    ("[load]\nsizes = [[1500, 1], [50, 1]]\n", "load.sizes", "entry 2: octets must be"),
    ("[load]\nsizes = [[1500, 0]]\n", "load.sizes", "weight positive"),
    ("[other]\nx = 1\n", "other", "unknown table"),
    ("load = 3\n", "load", "must be a table"),
    ("[load\n", "", "not valid TOML"),
])
def test_a_bad_profile_is_one_line_naming_file_and_key(tmp_path: Path, text: str, key: str,
                                                       problem: str) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(_write(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "profile.toml"))
    assert problem in message and f": {key}: " in message if key else problem in message


def test_a_missing_profile_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "none.toml")
