"""The keep-fraction experiment's study files: every method x keep, full, and the ladder."""

from __future__ import annotations

from pathlib import Path

from scalelab.apps.keep_fraction import KeepDesign, write_studies
from scalelab.study.grid import expand


def test_the_studies_cover_every_selection_and_the_ladder(tmp_path: Path) -> None:
    design = KeepDesign(methods=("random", "perplexity-low"), keeps=(0.2, 0.5), active_keeps=(0.3,))
    keep, ladder = write_studies(design, tmp_path / "studies", tmp_path / "out" / "selections")
    runs = expand(keep)
    labels = {Path(r.config.data.select).stem if r.config.data.select else "full" for r in runs}
    assert labels == {"full", "random@0.2", "random@0.5", "perplexity-low@0.2",
                      "perplexity-low@0.5", "active@0.3", "active@0.3-round1"}  # fmt: skip
    # random@0.2 (the share after active round 1) is already a keep: no second copy
    assert len(runs) == 7 * len(design.params) * len(design.seeds)
    assert {r.config.train.tokens for r in runs} == {design.tokens}
    # selection paths resolve to the experiment's folder, wherever the study file lies
    assert all(
        r.config.data.select is None
        or Path(r.config.data.select).parent == (tmp_path / "out" / "selections").resolve()
        for r in runs
    )
    lad = expand(ladder)
    assert {r.config.train.tokens for r in lad} == set(design.ladder_tokens)
    assert all(r.config.data.select is None for r in lad)
