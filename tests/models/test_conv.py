"""lconv / dconv: causal, softmax-normalised, head-shared kernels; dynamic kernels per position."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from archkit import tiny

from scalelab.architectures.shapes import conv_kernel_widths as kernel_widths
from scalelab.models.conv import ConvMixing


def test_kernels_widen_with_depth_up_to_kernel_size():
    assert kernel_widths(tiny("lconv", n_layer=6)) == [3, 7, 15, 31, 31, 31]
    assert kernel_widths(tiny("dconv", n_layer=4, kernel_size=5)) == [3, 5, 5, 5]


def reference(h: torch.Tensor, kernels: torch.Tensor, n_head: int) -> torch.Tensor:
    """y[t, c] = sum_j kernels[t, head(c), j] h[t - K + 1 + j, c], by loops (Wu et al. eq. 2)."""
    _, T, d = h.shape
    K = kernels.shape[-1]
    y = torch.zeros_like(h)
    for t in range(T):
        for c in range(d):
            for j in range(K):
                s = t - K + 1 + j
                if s >= 0:
                    y[:, t, c] += kernels[:, t, c // (d // n_head), j] * h[:, s, c]
    return y


def test_lightweight_convolution_matches_its_definition():
    cfg = tiny("lconv")
    torch.manual_seed(0)
    layer = ConvMixing(cfg, width=5, dynamic=False)
    torch.nn.init.normal_(layer.weight)
    assert layer.weight.shape == (cfg.n_head, 5)  # one kernel per head, not per channel
    x = torch.randn(2, 9, cfg.d_model)
    with torch.no_grad():
        h = F.glu(layer.glu_in(x), dim=-1)
        w = layer.weight.softmax(-1).expand(2, 9, cfg.n_head, 5)
        torch.testing.assert_close(layer(x), layer.proj(reference(h, w, cfg.n_head)))


def test_dynamic_convolution_predicts_each_kernel_from_its_own_position():
    cfg = tiny("dconv")
    torch.manual_seed(0)
    layer = ConvMixing(cfg, width=4, dynamic=True)
    x = torch.randn(2, 9, cfg.d_model)
    with torch.no_grad():
        h = F.glu(layer.glu_in(x), dim=-1)
        w = layer.kernel(h).view(2, 9, cfg.n_head, 4).softmax(-1)  # from h_t alone
        torch.testing.assert_close(layer(x), layer.proj(reference(h, w, cfg.n_head)))


def test_kernels_are_weighted_averages():
    """Softmax-normalised taps sum to one: a constant input to the convolution comes out
    unchanged wherever the whole kernel lies inside the sequence, smaller before that
    (left padding with zeros: causal, not renormalised)."""
    cfg = tiny("lconv", bias=True)
    torch.manual_seed(0)
    layer = ConvMixing(cfg, width=3, dynamic=False)
    torch.nn.init.normal_(layer.weight)
    d = cfg.d_model
    with torch.no_grad():  # h = GLU(x W_in + b) = 2 sigmoid(20) ~ 2 everywhere; W_O = identity
        layer.glu_in.weight.zero_()
        layer.glu_in.bias.copy_(torch.cat([torch.full((d,), 2.0), torch.full((d,), 20.0)]))
        layer.proj.weight.copy_(torch.eye(d))
        layer.proj.bias.zero_()
        y = layer(torch.randn(1, 10, d))
    h = 2.0 * torch.sigmoid(torch.tensor(20.0))
    torch.testing.assert_close(y[:, 2:], torch.full_like(y[:, 2:], h.item()))
    assert (y[:, :2] < h - 0.01).all()
