"""scalelab.outputs: what a path holds, and which outputs a command may write there."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from scalelab.errors import ConfigError
from scalelab.outputs import check_output, classify


def _run(p: Path, status: str = "finished", **config: object) -> Path:
    (p / "checkpoint").mkdir(parents=True)
    (p / "config.json").write_text(json.dumps({"model": {}, **config}))
    (p / "summary.json").write_text(json.dumps({"status": status, "run_id": p.name}))
    return p


@pytest.fixture
def area(tmp_path: Path) -> dict[str, Path]:
    store = tmp_path / "s.db"
    sqlite3.connect(store).execute("CREATE TABLE points (x)").connection.close()
    export = tmp_path / "hf"
    export.mkdir()
    (export / "config.json").write_text("{}")
    (export / "scalelab.json").write_text(json.dumps({"run_id": "abc", "config": {}, "step": 1}))
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    (tmp_path / "plain.txt").write_text("x")
    derived = _run(tmp_path / "ft", kind="finetune", run_id="ft-1")
    return {
        "run": _run(tmp_path / "abc"),
        "unfinished": _run(tmp_path / "def", status="running"),
        "derived": derived,
        "export": export,
        "store": store,
        "inside": tmp_path / "abc" / "summary.json",
        "empty": tmp_path / "empty",
        "folder": tmp_path / "notes",
        "file": tmp_path / "plain.txt",
        "missing": tmp_path / "nothing" / "here",
    }


def test_every_kind_of_path_is_named(area: dict[str, Path]) -> None:
    kinds = {name: classify(p).kind for name, p in area.items()}
    assert kinds == {
        "run": "run",
        "unfinished": "unfinished run",
        "derived": "derived run",
        "export": "export",
        "store": "store",
        "inside": "inside",
        "empty": "empty",
        "folder": "folder",
        "file": "file",
        "missing": "missing",
    }
    assert classify(area["inside"]).within == area["run"]


@pytest.mark.parametrize("kind", ["run", "unfinished", "derived", "export", "store", "inside",
                                  "folder", "file"])  # fmt: skip
def test_a_folder_output_refuses_what_it_did_not_make(area: dict[str, Path], kind: str) -> None:
    with pytest.raises(ConfigError, match="--out"):
        check_output(area[kind], "--out", folder=True)


def test_a_folder_output_takes_a_new_or_empty_path_or_its_own(area: dict[str, Path]) -> None:
    assert check_output(area["missing"], "--out", folder=True).kind == "missing"
    assert check_output(area["empty"], "--out", folder=True).kind == "empty"
    mine = check_output(
        area["derived"], "--out", folder=True, own=lambda a: a.config.get("run_id") == "ft-1"
    )
    assert mine.kind == "derived run"
    with pytest.raises(ConfigError, match="did not make"):
        check_output(
            area["derived"], "--out", folder=True, own=lambda a: a.config.get("run_id") == "ft-2"
        )


@pytest.mark.parametrize("kind", ["run", "derived", "export", "store", "inside", "folder"])
def test_a_file_output_refuses_artefacts(area: dict[str, Path], kind: str) -> None:
    with pytest.raises(ConfigError, match="--out"):
        check_output(area[kind], "--out", folder=False, may_replace_files=True)


def test_a_file_output_may_replace_a_plain_file_only_when_told(area: dict[str, Path]) -> None:
    assert check_output(area["file"], "--csv", folder=False, may_replace_files=True)
    with pytest.raises(ConfigError, match="did not make"):
        check_output(area["file"], "--csv", folder=False)


def test_the_empty_string_is_refused() -> None:
    for folder in (True, False):
        with pytest.raises(ConfigError, match="--out is empty"):
            check_output("", "--out", folder=folder)
