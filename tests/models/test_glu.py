"""glu: the transformer with a gated feed-forward, as its own architecture."""

from __future__ import annotations

import pytest
import torch
from archkit import tiny

from scalelab.accounting import count
from scalelab.architectures import ARCHS
from scalelab.config import ModelConfig
from scalelab.errors import ConfigError
from scalelab.models import build_model


@pytest.mark.parametrize("mlp", ["swiglu", "geglu", "reglu"])
def test_glu_is_the_transformer_with_a_gated_mlp(mlp):
    glu, dense = tiny("glu", mlp=mlp), tiny("transformer", mlp=mlp)
    assert count(glu).to_dict()["params"] == count(dense).to_dict()["params"]
    torch.manual_seed(0)
    a = build_model(glu)
    torch.manual_seed(0)
    b = build_model(dense)
    idx = torch.randint(0, 64, (2, 16))
    torch.testing.assert_close(a(idx), b(idx), atol=0, rtol=0)
    assert ARCHS["glu"].description != ARCHS["transformer"].description


def test_glu_needs_a_gated_mlp():
    with pytest.raises(ConfigError, match=r"model\.mlp to one of swiglu, geglu, reglu"):
        ModelConfig(arch="glu", mlp="gelu")  # checked when the config is made
    assert ModelConfig(arch="glu").mlp == "swiglu"  # the architecture's own default
    # the gated default keeps a plain MLP's parameter count (Shazeer 2020)
    assert tiny("glu").d_ff == 8 * -(-(8 * 32 // 3) // 8)
