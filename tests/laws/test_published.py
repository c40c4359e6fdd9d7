"""The published laws are a table of data; each call gives a fresh Law."""

from __future__ import annotations

import pytest

from scalelab.errors import FitError
from scalelab.laws.published import PRESETS, PUBLISHED, published_law, resolve_law


def test_every_entry_is_a_law_with_its_source():
    assert PRESETS == tuple(PUBLISHED) == ("hoffmann2022", "epoch2024", "muennighoff2023",
                                           "kaplan2020")  # fmt: skip
    for name in PRESETS:
        law = published_law(name)
        assert law.name == name and law.source and law.objective is None
        assert set(law.params) == set(law.functional_form.public)
        assert resolve_law(name).params == law.params


def test_a_changed_law_leaves_the_table_alone():
    law = published_law("epoch2024")
    law.params["E"] = 0.0
    law.ci["E"] = (0.0, 0.0)
    again = published_law("epoch2024")
    assert again.params["E"] == pytest.approx(1.817, abs=1e-3)  # Besiroglu et al. 2024, eq. 4
    assert again.ci["E"] == (1.769, 1.871)


def test_an_unknown_name_lists_the_table():
    with pytest.raises(FitError, match=r"did you mean .epoch2024.*hoffmann2022, epoch2024"):
        published_law("epoch2025")
