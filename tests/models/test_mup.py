"""muP (model.parametrization = "mup"): the coordinate check of Yang et al. 2022 (fig. 5) and
the rules it rests on."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from scalelab.architectures import check_config
from scalelab.config import ModelConfig, RunConfig, TrainConfig
from scalelab.errors import ConfigError
from scalelab.models import build_model
from scalelab.train.optim import make_optimizer

WIDTHS = (32, 64, 128, 256, 512)


def cfg(parametrization: str, d: int, **kw) -> RunConfig:
    kw.setdefault("n_head", 4)
    model = ModelConfig(
        n_layer=2, d_model=d, vocab_size=64, context=32,
        parametrization=parametrization, base_width=32, tie_embeddings=False, **kw,
    )  # fmt: skip
    return RunConfig(model=model, train=TrainConfig(lr=1e-2, precision="fp32", weight_decay=0.0))


def coord_check(parametrization: str, d: int, steps: int = 4) -> dict[str, float]:
    """After ``steps`` Adam updates at one learning rate on a fixed batch of random tokens:
    mean |activation| of the last block's output (``hidden``) and of the logits
    (``logits``); mean |change of the logits| since initialisation (``dlogits``); and the
    readout's own share of that change, the output multiplier times (W_head - W_head0) h
    on the final features h (``readout``). Yang et al. 2022 (sec. 4, fig. 5): under muP
    each stays O(1) as the width grows; the updates are what must not grow or vanish."""
    torch.manual_seed(0)
    c = cfg(parametrization, d)
    model = build_model(c.model)
    opt = make_optimizer(model, c, torch.device("cpu"))
    for group in opt.param_groups:  # what the trainer's step does with the schedule's lr
        group["lr"] = c.train.lr * group.get("lr_scale", 1.0)
    x = torch.randint(0, 64, (16, 33), generator=torch.Generator().manual_seed(1))
    seen: dict[str, torch.Tensor] = {}
    model.blocks[-1].register_forward_hook(lambda m, i, o: seen.__setitem__("h", o.detach()))
    model.norm_f.register_forward_hook(lambda m, i, o: seen.__setitem__("f", o.detach()))
    head0 = model.head.weight.detach().clone()
    with torch.no_grad():
        logits0 = model(x[:, :-1])
    for _ in range(steps):
        loss = F.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits = model(x[:, :-1])
        readout = model.output_mult * seen["f"] @ (model.head.weight - head0).T
    return {
        "hidden": seen["h"].abs().mean().item(),
        "logits": logits.abs().mean().item(),
        "dlogits": (logits - logits0).abs().mean().item(),
        "readout": readout.abs().mean().item(),
    }


def spread(values: list[float]) -> float:
    return max(values) / min(values)


def test_coordinate_check_flat_under_mup_drifting_under_sp() -> None:
    torch.set_num_threads(1)
    mup = [coord_check("mup", d) for d in WIDTHS]
    sp = [coord_check("sp", d) for d in WIDTHS]
    # measured (widths 32 -> 512): muP hidden 0.094, 0.085, 0.079, 0.079, 0.081, logits
    # 0.26 -> 0.18, their change 0.25 -> 0.18, the readout's share 0.19 -> 0.13; SP hidden
    # 0.094 -> 39, logits 0.26 -> 1.7, change 0.25 -> 1.75, readout's share 0.19 -> 1.7
    assert spread([r["hidden"] for r in mup]) < 1.3
    assert spread([r["logits"] for r in mup]) < 2.0
    assert spread([r["hidden"] for r in sp]) > 20
    assert [r["logits"] for r in sp] == sorted(r["logits"] for r in sp)  # grows with width
    assert spread([r["logits"] for r in sp]) > 4
    # the updates: under muP the logits move, and the readout moves them, by the same O(1)
    # at every width; under SP (one lr) both grow with the width
    for key in ("dlogits", "readout"):
        assert spread([r[key] for r in mup]) < 1.6, key
        assert [r[key] for r in sp] == sorted(r[key] for r in sp), key
        assert spread([r[key] for r in sp]) > 5, key


def test_mup_rules_on_the_built_model() -> None:
    c = cfg("mup", 128)
    model = build_model(c.model)
    q_rows = 4 * 32
    assert model.blocks[0].attn.qkv.weight[:q_rows].abs().sum() == 0  # zero query
    assert model.head.weight.abs().sum() > 0  # the head as usual, unless asked
    zero = build_model(ModelConfig(**{**c.model.__dict__, "mup_zero_readout": True}))
    assert zero.head.weight.abs().sum() == 0  # zero readout (untied)
    assert model.output_mult == pytest.approx(32 / 128)
    assert model.blocks[0].attn.scale == pytest.approx(math.sqrt(32 / 4) / 32)
    # hidden init variance 1/fan_in: std 0.02 * sqrt(32/128) (times 1/sqrt(2L) on projections)
    assert model.blocks[0].mlp.fc.weight.std().item() == pytest.approx(0.01, rel=0.05)
    opt = make_optimizer(model, c, torch.device("cpu"))
    scales = {g["lr_scale"] for g in opt.param_groups}
    assert scales == {1.0, 0.25} and opt.param_groups[0]["lr_scale"] == 1.0
    hidden = {id(p) for g in opt.param_groups if g["lr_scale"] == 0.25 for p in g["params"]}
    assert id(model.blocks[0].attn.qkv.weight) in hidden
    assert id(model.tok_emb.weight) not in hidden and id(model.head.weight) not in hidden


def test_sp_at_base_width_keeps_the_attention_scale_and_old_run_ids() -> None:
    base = build_model(cfg("mup", 32).model)
    assert base.blocks[0].attn.scale == pytest.approx(1 / math.sqrt(8))
    assert build_model(cfg("sp", 64).model).blocks[0].attn.scale is None
    # runs stored before muP existed keep their names
    assert RunConfig().run_id() == "a1cada08057c"
    assert cfg("mup", 64).run_id() != cfg("sp", 64).run_id()


def test_weight_decay_per_step_is_the_same_at_every_width() -> None:
    """AdamW decays by lr x wd a step; with the hidden lr at lr/m the decay must be wd x m
    (``MuAdamW``), or a width-256 model's hidden weights decay 8x less than the base's."""
    lr, wd = 1e-2, 0.1
    for d in (32, 64, 256):
        c = cfg("mup", d)
        c = RunConfig(model=c.model, train=TrainConfig(lr=lr, precision="fp32", weight_decay=wd))
        model = build_model(c.model)
        opt = make_optimizer(model, c, torch.device("cpu"))
        for group in opt.param_groups:
            group["lr"] = lr * group["lr_scale"]
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        for p in model.parameters():  # no gradient: Adam's step is 0, only the decay acts
            p.grad = torch.zeros_like(p)
        opt.step()
        after = dict(model.named_parameters())
        for name in ("blocks.0.mlp.fc.weight", "blocks.1.attn.proj.weight", "head.weight"):
            ratio = (after[name] / before[name]).mean().item()
            assert ratio == pytest.approx(1 - lr * wd, rel=1e-6), (d, name)


def test_attention_scale_follows_the_base_models_head_size() -> None:
    """A ladder that adds heads at a fixed head size (8 here) keeps SP's 1/sqrt(8), when the
    config records the base model's head count; one that widens 4 heads scales by 1/d_head."""
    for d, heads in ((32, 4), (64, 8), (128, 16)):
        model = build_model(cfg("mup", d, n_head=heads, base_n_head=4).model)
        assert model.blocks[0].attn.scale == pytest.approx(1 / math.sqrt(8)), d
    wide = build_model(cfg("mup", 128, base_n_head=4).model)  # 4 heads of 32
    assert wide.blocks[0].attn.scale == pytest.approx(math.sqrt(8) / 32)
    # unset, the base head count is the model's own (the behaviour before the field)
    assert build_model(cfg("mup", 128).model).blocks[0].attn.scale == pytest.approx(
        math.sqrt(8) / 32
    )
    # the field at its default leaves muP run ids as they were stored (measured before it)
    assert cfg("mup", 64).run_id() == "acab3a27fe7c"
    assert cfg("mup", 64, base_n_head=4).run_id() != cfg("mup", 64).run_id()
    assert cfg("sp", 64, base_n_head=4).run_id() == cfg("sp", 64).run_id()


def test_bad_parametrizations() -> None:
    with pytest.raises(ConfigError, match=r"model.parametrization = 'mu' is not one of sp, mup"):
        ModelConfig(parametrization="mu")
    with pytest.raises(ConfigError, match=r"used only by arch .*transformer"):
        check_config(ModelConfig(arch="mixer", parametrization="mup"))
    with pytest.raises(ConfigError, match="base_width must be a positive integer"):
        ModelConfig(base_width=0)
    with pytest.raises(
        ConfigError, match=r"base_width \(32\) must be divisible by model.base_n_head"
    ):
        ModelConfig(parametrization="mup", base_width=32, base_n_head=3)
