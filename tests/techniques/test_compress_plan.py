"""A compression study: its file is checked by name, and it compresses a ladder's runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalelab.errors import ConfigError
from scalelab.results.records import point_row, read_run
from scalelab.results.store import Store
from scalelab.techniques.compress.plan import load_compression_study, run_study


def _write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(body)
    return p


def test_compresses_every_entry_and_level(tiny_run: Path, tmp_path: Path) -> None:
    ladder = tmp_path / "ladder.db"
    with Store(ladder) as s:
        s.put_point(point_row(read_run(tiny_run), study="lad", axes={"size": "tiny"}))
    plan = _write(
        tmp_path,
        f"""
[compression]
name = "comp"
db = "{ladder}"
study = "lad"
sizes = ["tiny"]
[[compression.method]]
method = "quant"
levels = [8, 4]
[[compression.method]]
method = "prune"
scope = "global"
levels = [0.5]
""",
    )
    out = tmp_path / "out.db"
    rows = run_study(plan, out, log=lambda _m: None)
    assert [(r["method"], r["level"]) for r in rows] == [("quant", 8), ("quant", 4), ("prune", 0.5)]
    with Store(out) as s:
        kinds = sorted(r["kind"] for r in s.query("SELECT kind FROM points"))
    assert kinds == ["compressed"] * 3 + ["run"]


@pytest.mark.parametrize(
    "body, match",
    [
        ('[compression]\ndb = "x"\nstudy = "s"\nmethods = []\n', "compression.method"),
        (
            '[compression]\ndb = "x"\nstudy = "s"\n[[compression.method]]\nmethod = "quant"\n',
            "method and levels",
        ),
        (
            '[compression]\nstudy = "s"\n[[compression.method]]\nmethod = "quant"\nlevels = [4]\n',
            "compression.db",
        ),
        (
            '[compression]\ndb = "x"\nstudy = "s"\n[[compression.method]]\nmethod = "quant"\n'
            "levels = [4]\ngroups = 32\n",
            "groups",
        ),
    ],
)
def test_bad_study_files(tmp_path: Path, body: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_compression_study(_write(tmp_path, body))
