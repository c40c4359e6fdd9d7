"""scalelab.atomic: whole files or nothing, with the mode the umask gives a plain open()."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from scalelab import atomic


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield 0o027
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_umask_is_read_without_changing_it(umask_027):
    assert atomic.umask() == 0o027
    assert os.umask(0o027) == 0o027  # still what the fixture set
    assert atomic.file_mode() == 0o640


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077])
def test_every_writer_gives_the_mode_a_plain_open_would(tmp_path, mask):
    old = os.umask(mask)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        written = [
            atomic.write_text(tmp_path / "a.txt", "text"),
            atomic.write_bytes(tmp_path / "b.bin", b"\x00\x01"),
            atomic.write_json(tmp_path / "c.json", {"a": 1}),
        ]
        with atomic.atomic_path(tmp_path / "d.csv") as tmp:
            tmp.write_text("a,b\n")
        written.append(tmp_path / "d.csv")
    finally:
        os.umask(old)
    assert _mode(plain) == 0o666 & ~mask
    for path in written:
        assert _mode(path) == _mode(plain), path  # mkstemp alone would give 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = atomic.write_json(tmp_path / "summary.json", {"status": "finished"})
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_text('{"status": "half')
        raise RuntimeError("killed mid-write")
    assert target.read_text() == '{\n "status": "finished"\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_json_options_and_parent_directories(tmp_path):
    path = atomic.write_json(
        tmp_path / "new" / "dir" / "x.json", {"b": 1, "a": Path("p")}, indent=2,
        sort_keys=True, default=str,
    )  # fmt: skip
    assert path.read_text() == '{\n  "a": "p",\n  "b": 1\n}\n'
    with pytest.raises(ValueError):
        atomic.write_json(tmp_path / "nan.json", {"x": float("nan")}, allow_nan=False)
    assert not (tmp_path / "nan.json").exists()
