"""The muP coordinate check (Yang et al. 2022, sec. 4 and fig. 5) on real data, extended to
the updates: after ``--steps`` training steps of the trainer's own optimizer and schedule,
at each width, how far the logits have moved (mean |logits - logits at init|), the
readout's own share of that (output multiplier x (W_head - W_head0) h), the last block's
output, the attention logits, and how close Adam's second moment of the attention weights
is to its epsilon (sqrt(v) below 10 eps: the update is damped by eps, not normalised).

Under muP each should stay O(1) as the width grows (flat rows); under SP they grow.

    PYTHONPATH=src .venv/bin/python benchmarks/mup_coord.py [--widths 32 64 128 256 512]
        [--steps 20] [--parametrization mup] [--eps 1e-8]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from scalelab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from scalelab.data import load_tokens
from scalelab.models import build_model
from scalelab.train.optim import make_optimizer
from scalelab.train.schedule import lr_at

CONTEXT, BATCH, TOTAL_STEPS = 64, 16, 256  # studies/mup-wider.toml


def config(d: int, parametrization: str, lr: float) -> RunConfig:
    model = ModelConfig(
        n_layer=2, d_model=d, n_head=4, vocab_size=258, context=CONTEXT,
        tie_embeddings=False, parametrization=parametrization, base_width=32,
    )  # fmt: skip
    train = TrainConfig(lr=lr, batch_size=BATCH, precision="fp32", tokens=TOTAL_STEPS * 1024)
    return RunConfig(model=model, data=DataConfig(tokenizer="bytes"), train=train)


def windows(tokens: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    starts = rng.integers(0, len(tokens) - CONTEXT - 1, BATCH)
    return torch.from_numpy(
        np.stack([tokens[s : s + CONTEXT + 1] for s in starts]).astype(np.int64)
    )


def measure(
    d: int, parametrization: str, lr: float, steps: int, tokens: np.ndarray, eps: float
) -> dict:
    torch.manual_seed(0)
    cfg = config(d, parametrization, lr)
    model = build_model(cfg.model)
    opt = make_optimizer(model, cfg, torch.device("cpu"))
    for group in opt.param_groups:
        group["eps"] = eps
    probe = windows(tokens, np.random.default_rng(123))
    seen: dict[str, torch.Tensor] = {}
    model.norm_f.register_forward_hook(lambda m, i, o: seen.__setitem__("f", o.detach()))
    model.blocks[-1].register_forward_hook(lambda m, i, o: seen.__setitem__("h", o.detach()))
    head0 = model.head.weight.detach().clone()
    with torch.no_grad():
        logits0 = model(probe[:, :-1])
    rng = np.random.default_rng(0)
    loss = torch.zeros(())
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, TOTAL_STEPS, cfg.train) * group["lr_scale"]
        x = windows(tokens, rng)
        loss = F.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
    row: dict[str, float] = {"loss": loss.item()}
    with torch.no_grad():
        logits = model(probe[:, :-1])
        row["dlogits"] = (logits - logits0).abs().mean().item()
        readout = model.output_mult * seen["f"] @ (model.head.weight - head0).T
        row["readout"] = readout.abs().mean().item()
        row["hidden"] = seen["h"].abs().mean().item()
        for i, block in enumerate(model.blocks):
            a = block.attn
            xin = block.norm1(model.tok_emb(probe[:, :-1]) + model.pos_emb.weight[:CONTEXT])
            q, k, _ = a.heads(xin, None) if i == 0 else (None, None, None)
            if q is not None:
                scale = a.scale if a.scale is not None else a.head_dim**-0.5
                row["attn0"] = (q @ k.transpose(-1, -2) * scale).abs().mean().item()
            w = block.attn.qkv.weight
            v = opt.state[w]["exp_avg_sq"] / (1 - cfg.train.beta2**steps)
            row[f"eps{i}"] = (v.sqrt() < 10 * eps).float().mean().item()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--lr", type=float, default=3.9e-3)
    ap.add_argument("--parametrization", default="mup", choices=["mup", "sp"])
    ap.add_argument("--eps", type=float, default=1e-8, help="Adam's epsilon (PyTorch's default)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tokens = np.asarray(load_tokens(DataConfig(tokenizer="bytes"), 258).train)
    cols = ["loss", "dlogits", "readout", "hidden", "attn0", "eps0", "eps1"]
    print(f"{args.parametrization}, lr {args.lr:g}, eps {args.eps:g}, after {args.steps} steps")
    print("width " + " ".join(f"{c:>8}" for c in cols))
    for d in args.widths:
        row = measure(d, args.parametrization, args.lr, args.steps, tokens, args.eps)
        print(f"{d:5d} " + " ".join(f"{row[c]:8.4f}" for c in cols), flush=True)


if __name__ == "__main__":
    main()
