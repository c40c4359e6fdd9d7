"""The report: every section present, every image a real PNG inlined, clear errors."""

import base64
import re

import pytest

from scalelab.errors import StoreError
from scalelab.reporting import BUILDERS, Section, report

TITLES = [
    "What was measured",
    "Loss curves",
    "Loss against N",
    "Loss against compute",
    "IsoFLOP curves",
    "Choosing the law",
    "Fitted law",
    "Extrapolation check",
    "Plans",
]


@pytest.fixture(scope="module")
def page(tiny_demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    res = report(tiny_demo.out / "results.db", out, study="demo", bootstrap=20)
    return res, res.path.read_text()


def test_every_section_is_on_the_page(page):
    res, text = page
    assert [s.title for s in res.sections] == TITLES
    for title in TITLES:
        assert f"<h2>{title}</h2>" in text
    assert res.law is not None and res.law_error is None
    # the parameter table shows each Chinchilla parameter with its interval
    for name in ("E", "A", "B", "alpha", "beta"):
        assert f"<td>{name}</td>" in text


def test_images_are_inlined_pngs_and_written_beside(page):
    res, text = page
    srcs = re.findall(r'<img src="([^"]+)"', text)
    assert len(srcs) >= 3
    for src in srcs:
        assert src.startswith("data:image/png;base64,")  # nothing external: works offline
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    names = {p.name for p in res.path.parent.glob("*.png")}
    assert {"curves.png", "loss-vs-n.png", "loss-vs-c.png"} <= names
    assert "<script" not in text and "<link" not in text
    assert (res.path.parent / "report.json").exists()


def test_a_grid_without_isoflop_groups_says_how_to_get_them(page):
    _, text = page
    iso = text.split("<h2>IsoFLOP curves</h2>", 1)[1].split("</section>", 1)[0]
    assert "6ND is constant" in iso


def test_sections_are_extensible(tiny_demo, tmp_path):
    def only_count(ctx):
        return Section("Count", f"<p>{len(ctx.points)} points</p>")

    res = report(
        tiny_demo.out / "results.db",
        tmp_path,
        study="demo",
        bootstrap=0,
        sections=[only_count],
        extra=[Section("Extra", "<p>hello</p>")],
    )
    text = res.path.read_text()
    assert "<p>6 points</p>" in text and "<h2>Extra</h2>" in text
    # + Architectures (several archs), Data (runs on selections, the overfit study),
    # Downstream (task results), Tuning (stores with trials), Small vs large (technique
    # points), Memorization (capacity or extraction points) and Post-training (posttrain
    # points), each shown when it applies
    assert len(BUILDERS) == len(TITLES) + 7


def test_missing_or_empty_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no results store"):
        report(tmp_path / "nope.db", tmp_path / "r")
    from scalelab.results.store import Store

    Store(tmp_path / "empty.db").close()
    with pytest.raises(StoreError, match="no finished runs"):
        report(tmp_path / "empty.db", tmp_path / "r")


def test_too_few_points_still_writes_a_report(tiny_demo, tmp_path):
    # one study of a single run cannot be fitted: the page says so, nothing crashes
    res = report(tiny_demo.out / "results.db", tmp_path, study="demo-holdout", bootstrap=0)
    assert res.law is None and res.law_error
    assert "No law fitted" in res.path.read_text()


def test_cli_report_and_its_errors(cli, tiny_demo, tmp_path):
    r = cli(
        "report",
        "--db",
        str(tiny_demo.out / "results.db"),
        "--out",
        str(tmp_path),
        "--study",
        "demo",
        "--bootstrap",
        "0",
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "index.html").exists() and "sections" in r.stdout
    r = cli("report", "--db", str(tmp_path / "missing.db"), "--out", str(tmp_path))
    assert r.returncode == 2 and "no results store" in r.stderr and "Traceback" not in r.stderr
