"""The capacity measure's int8 / int4: the compression quantizer's grid, on every matrix."""

import pytest
import torch
from torch import nn

from scalelab.errors import ConfigError
from scalelab.memorization.quantize import apply_precision
from scalelab.techniques.compress.quant import rtn


def _model() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Embedding(50, 12), nn.Linear(12, 20), nn.LayerNorm(20))
    return m


def test_every_matrix_takes_the_compression_grid_and_vectors_stay():
    m = _model()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    assert apply_precision(m, "int4") == 50 * 12 + 20 * 12
    after = m.state_dict()
    for name in ("0.weight", "1.weight"):  # the embedding too: the whole model is asked
        assert torch.equal(after[name], rtn(before[name], 4))
        assert max(len(torch.unique(row)) for row in after[name]) <= 16
        assert not torch.equal(after[name], before[name])
    for name in ("1.bias", "2.weight", "2.bias"):
        assert torch.equal(after[name], before[name])


def test_int8_is_closer_than_int4_and_fp32_is_untouched():
    errs = {}
    for p in ("fp32", "int8", "int4"):
        m = _model()
        w0 = m[1].weight.detach().clone()
        apply_precision(m, p)
        errs[p] = float((m[1].weight.detach() - w0).abs().max())
    assert errs["fp32"] == 0.0 and 0 < errs["int8"] < errs["int4"] / 8
    with pytest.raises(ConfigError, match="int3"):
        apply_precision(_model(), "int3")
