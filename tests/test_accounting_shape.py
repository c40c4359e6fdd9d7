"""size_for(): shapes for target parameter counts, from tiny ladders to Chinchilla's Table A9."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from scalelab.accounting import count, size_for
from scalelab.accounting.shape import ASPECT_AT_1E8, ASPECT_SLOPE, aspect_ratio
from scalelab.config import ModelConfig
from scalelab.errors import ConfigError

with open(Path(__file__).parent / "data" / "chinchilla_tableA9.csv") as f:
    TABLE_A9 = [{k: int(v) for k, v in row.items()} for row in csv.DictReader(f)]


def a9_n(row) -> int:
    """Non-embedding N of a Table A9 shape as scalelab counts a plain transformer."""
    cfg = ModelConfig(n_layer=row["n_layers"], d_model=row["d_model"], n_head=row["d_model"] // 64)
    return count(cfg).params.non_embedding


def test_aspect_rule_is_the_fit_to_table_a9():
    n = np.log([a9_n(r) for r in TABLE_A9])
    aspect = np.log([r["d_model"] / r["n_layers"] for r in TABLE_A9])
    slope, intercept = np.polyfit(n, aspect, 1)
    assert slope == pytest.approx(ASPECT_SLOPE, abs=5e-4)
    assert math.exp(intercept + slope * math.log(1e8)) == pytest.approx(ASPECT_AT_1E8, abs=0.05)


@pytest.mark.parametrize(
    "row", [r for r in TABLE_A9 if 1e8 <= a9_n(r) <= 1e10], ids=lambda r: str(r["params"])
)
def test_shapes_near_chinchilla_table_a9(row):
    target = a9_n(row)
    cfg = size_for(target, vocab_size=32000)
    assert abs(count(cfg).params.non_embedding / target - 1) <= 0.02
    # Table A9 itself spreads its aspect ratios by +-15% around the fit: shapes land close
    assert abs(math.log(cfg.d_model / row["d_model"])) <= 0.2
    assert abs(math.log(cfg.n_layer / row["n_layers"])) <= 0.4
    assert cfg.d_model % 64 == 0 and cfg.head_dim == 64


@pytest.mark.parametrize("exponent", np.arange(4, 8.01, 0.25))
@pytest.mark.parametrize(
    "fixed",
    [dict(), dict(pos="rotary", norm="rmsnorm", mlp="swiglu", tie_embeddings=False)],
    ids=["gpt2-like", "llama-like"],
)
def test_tiny_ladder_lands_close(exponent, fixed):
    target = 10.0**exponent
    cfg = size_for(target, **fixed)
    got = count(cfg).params.non_embedding
    # the (n_layer, d_model) grid is coarse for the smallest models (see the module docs)
    if target >= 1e6:
        tolerance = 0.05
    elif target >= 1e5:
        tolerance = 0.06 if not fixed else 0.11
    else:
        tolerance = 0.12 if not fixed else 0.3
    assert abs(got / target - 1) <= tolerance
    assert cfg.n_layer >= 1 and cfg.d_model % cfg.n_head == 0
    if cfg.d_model < 256:
        assert cfg.n_head == 4
    if fixed:
        assert cfg.pos == "rotary" and cfg.head_dim % 2 == 0 and not cfg.tie_embeddings
    assert 0.5 <= cfg.d_model / cfg.n_layer / aspect_ratio(target) <= 2


def test_a_ladder_grows_monotonically():
    sizes = [count(size_for(x)).params.non_embedding for x in np.logspace(4, 7, 13)]
    assert sizes == sorted(sizes)


def test_other_definitions_of_n_and_fixed_fields():
    cfg = size_for(5e6, n="total", vocab_size=1000)
    assert abs(count(cfg).params.total / 5e6 - 1) <= 0.02
    deep = size_for(2e6, n_layer=12)
    assert deep.n_layer == 12 and abs(count(deep).params.non_embedding / 2e6 - 1) <= 0.05
    wide = size_for(2e6, d_model=256)
    assert wide.d_model == 256 and wide.n_head == 4
    gqa = size_for(1e8, n_kv_head=2, pos="rotary")
    assert gqa.n_kv_head == 2 and gqa.n_head % 2 == 0


def test_bad_requests_are_named():
    with pytest.raises(ConfigError, match="target_params must be a positive number"):
        size_for(0)
    with pytest.raises(ConfigError, match=r"unknown key model\.n_layers"):
        size_for(1e6, n_layers=3)
    with pytest.raises(ConfigError, match="is not one of"):
        size_for(1e6, n="kaplan")
