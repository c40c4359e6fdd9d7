"""Our muP against the reference: the ``mup`` package (Microsoft, 1.0.0) of Yang et al. 2022.

One model, two ways: ours (``model.parametrization = "mup"``, the trainer's AdamW groups) and
the same weights with the head replaced by the package's ``MuReadout`` and the optimizer by
its ``MuAdamW`` after ``set_base_shapes`` against the base width. The readout (the head's
1/m multiplier, its unscaled rate), the hidden matrices (lr / m, weight decay x m) and the
vectors must then train identically, step for step."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from scalelab.config import ModelConfig, RunConfig, TrainConfig
from scalelab.models import build_model
from scalelab.train.optim import make_optimizer

mup = pytest.importorskip("mup")

LR, WD, BASE = 1e-2, 0.5, 32


def model_cfg(d: int) -> ModelConfig:
    return ModelConfig(
        n_layer=2, d_model=d, n_head=4, vocab_size=64, context=32,
        parametrization="mup", base_width=BASE, tie_embeddings=False,
    )  # fmt: skip


def with_mu_readout(model: torch.nn.Module) -> torch.nn.Module:
    """A copy whose head is the package's MuReadout holding the same weights; the logits'
    1/m then comes from the readout (x / width_mult), not from our ``output_mult``."""
    ref = copy.deepcopy(model)
    d, vocab = model.cfg.d_model, model.cfg.vocab_size
    ref.head = mup.MuReadout(d, vocab, bias=False)
    ref.head.weight.data.copy_(model.head.weight.data)
    ref.output_mult = 1.0
    return ref


def groups(model: torch.nn.Module) -> list[dict]:
    """Decay on matrices and embeddings, none on vectors: the trainer's convention."""
    params = list(model.parameters())
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": WD},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


@pytest.mark.parametrize("d", [64, 256])
def test_readout_and_optimizer_match_mureadout_and_muadamw(d: int) -> None:
    torch.manual_seed(0)
    ours = build_model(model_cfg(d))
    ref = with_mu_readout(ours)
    base = with_mu_readout(build_model(model_cfg(BASE)))
    delta = with_mu_readout(build_model(model_cfg(2 * BASE)))
    mup.set_base_shapes(ref, base, delta=delta, rescale_params=False)  # keep our init
    run = RunConfig(model=ours.cfg, train=TrainConfig(lr=LR, weight_decay=WD, precision="fp32"))
    opt = make_optimizer(ours, run, torch.device("cpu"))
    for group in opt.param_groups:
        group["lr"] = LR * group["lr_scale"]
    ref_opt = mup.MuAdamW(groups(ref), lr=LR, betas=(0.9, 0.95))
    x = torch.randint(0, 64, (8, 33), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(ours(x[:, :-1]), ref(x[:, :-1]), atol=1e-6)
    for _ in range(5):
        for model, o in ((ours, opt), (ref, ref_opt)):
            loss = F.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())
            o.zero_grad()
            loss.backward()
            o.step()
    theirs = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert torch.allclose(p, theirs[name], rtol=1e-4, atol=1e-6), name
    with torch.no_grad():
        assert torch.allclose(ours(x[:, :-1]), ref(x[:, :-1]), atol=1e-5)
