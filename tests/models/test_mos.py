"""mos: the logits are log-probabilities of a mixture, and the mixture escapes the rank bound."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from archkit import measured_flops, tiny

from scalelab.accounting import count
from scalelab.models import build_model


def test_logits_are_log_probabilities():
    cfg = tiny("mos", n_softmax=3)
    torch.manual_seed(0)
    model = build_model(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.context))
    logp = model(idx)
    torch.testing.assert_close(logp.logsumexp(-1), torch.zeros(2, cfg.context), atol=1e-5, rtol=0)
    # cross-entropy normalises again and changes nothing
    torch.testing.assert_close(F.log_softmax(logp, -1), logp, atol=1e-5, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(idx)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low.logsumexp(-1), torch.zeros(2, cfg.context), atol=1e-4, rtol=0)


def test_one_component_is_a_single_softmax():
    cfg = tiny("mos", n_softmax=1)
    torch.manual_seed(0)
    model = build_model(cfg)
    x = torch.randn(2, 5, cfg.d_model)
    with torch.no_grad():
        single = F.log_softmax(model.head(torch.tanh(model.latent(model.norm_f(x)))), -1)
        torch.testing.assert_close(model.logits(x), single)


def log_prob_rank(arch: str, **fields) -> int:
    """Numerical rank of log P over 64 contexts x 64 tokens (Yang et al. sec. 2.2)."""
    cfg = tiny(arch, d_model=8, n_head=2, vocab_size=64, context=64, init_std=0.5, **fields)
    torch.manual_seed(0)
    model = build_model(cfg).double()
    with torch.no_grad():
        logp = F.log_softmax(model(torch.randint(0, 64, (1, 64))), -1)[0]
    return int(torch.linalg.matrix_rank(logp, rtol=1e-8))


def test_the_mixture_breaks_the_softmax_bottleneck():
    assert log_prob_rank("transformer") <= 8 + 1  # a single softmax: rank <= d + 1
    assert log_prob_rank("mos", n_softmax=4) > 8 + 1


def test_the_head_is_stored_once_and_multiplied_k_times():
    cfg = tiny("mos", n_softmax=4)
    d, V, K, L = cfg.d_model, cfg.vocab_size, 4, cfg.n_layer
    mos, dense = count(cfg), count(tiny("transformer"))
    assert mos.params.total - dense.params.total == d * K + d * K * d
    extra = 2 * ((K - 1) * d * V + d * K + d * K * d)
    assert mos.flops.forward_per_token - dense.flops.forward_per_token == extra
    torch.manual_seed(0)
    idx = torch.randint(0, V, (2, cfg.context))
    assert measured_flops(build_model(cfg), idx) == mos.flops.forward_per_token * idx.numel()
    assert L == 2
