"""``select = [...]`` in a study: selection files (relative to the study) and "full" as an axis."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalelab.errors import ConfigError
from scalelab.study.grid import expand
from scalelab.study.spec import load_study


def _write(tmp_path: Path, select: str) -> Path:
    (tmp_path / "sel").mkdir(exist_ok=True)
    (tmp_path / "sel" / "a.json").write_text('{"format": 1, "kept": [1]}')
    (tmp_path / "sel" / "b.json").write_text('{"format": 1, "kept": [2]}')
    study = tmp_path / "s.toml"
    study.write_text(
        f"""[study]
name = "s"
corpus = "markov:order=1,vocab=8"
tokenizer = "bytes"
tokens = [1000]
seeds = [0, 1]
select = {select}
[model]
n_layer = 1
d_model = 16
n_head = 2
vocab_size = 258
context = 16
"""
    )
    return study


def test_selections_are_an_axis_with_paths_from_the_study_file(tmp_path: Path) -> None:
    study = load_study(_write(tmp_path, '["full", "sel/a.json", "sel/b.json"]'))
    runs = expand(study)
    assert len(runs) == 6
    selects = {r.config.data.select for r in runs}
    assert selects == {None, str(tmp_path / "sel" / "a.json"), str(tmp_path / "sel" / "b.json")}
    assert len({r.run_id for r in runs}) == 6


def test_select_entries_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="repeated"):
        load_study(_write(tmp_path, '["sel/a.json", "sel/a.json"]'))
    with pytest.raises(ConfigError, match="paths or 'full'"):
        load_study(_write(tmp_path, "[3]"))
