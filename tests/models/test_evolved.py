"""evolved: the decoder cell's wide attention, causal separable convolutions and checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from archkit import tiny

from scalelab.accounting import count
from scalelab.architectures.shapes import evolved_wide_config as wide_config
from scalelab.config import ModelConfig
from scalelab.errors import ConfigError
from scalelab.models import build_model
from scalelab.models.evolved import SeparableConv


@pytest.mark.parametrize(
    ("d_model", "n_head", "wide"),
    [(32, 4, 8), (512, 8, 16), (1024, 16, 16), (192, 12, 16), (36, 12, 12), (36, 6, 12)],
)
def test_wide_attention_doubles_the_heads_up_to_16(d_model, n_head, wide):
    cfg = ModelConfig(arch="evolved", d_model=d_model, n_head=n_head)
    assert wide_config(cfg).n_head == wide


def test_separable_convolution_is_causal_depthwise_then_pointwise():
    torch.manual_seed(0)
    conv = SeparableConv(4, 6, 3, bias=False)
    torch.nn.init.normal_(conv.depthwise)
    x = torch.randn(2, 7, 4)
    depth = torch.stack(
        [
            sum(conv.depthwise[:, 0, j] * x[:, t - 2 + j] for j in range(3) if t - 2 + j >= 0)
            for t in range(7)
        ],
        dim=1,
    )
    torch.testing.assert_close(conv(x), F.linear(depth, conv.pointwise.weight))


def test_the_block_has_four_residual_sublayers_and_conv_branches():
    cfg = tiny("evolved")
    model = build_model(cfg)
    block = model.blocks[0]
    assert block.left.pointwise.out_features == 2 * cfg.d_model
    assert block.right.pointwise.out_features == cfg.d_model // 2
    assert block.attn_wide.n_head == 2 * cfg.n_head
    c = count(cfg)
    assert c.params.breakdown["conv"] == cfg.n_layer * sum(
        p.numel() for m in (block.left, block.right, block.conv_out) for p in m.parameters()
    )


def test_checks():
    with pytest.raises(ConfigError, match="must be even"):
        tiny("evolved", d_model=33, n_head=3)
    with pytest.raises(ConfigError, match="Swish"):
        tiny("evolved", mlp="relu")
