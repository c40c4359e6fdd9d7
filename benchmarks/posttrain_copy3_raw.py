"""Bisect for docs/posttrain.md's "Sizing": train on ``copy3`` sequences held in memory, with no
corpus, token cache, sampler or trainer of scalelab: random-offset windows of a stream of
``'37+70=703' + eos`` documents, plain AdamW (wd 0, grad clip 1, constant lr), printing the
training loss every 100 steps. ``--model scalelab`` is ``build_model`` of a 2-layer, d64,
4-head transformer (``--set`` adds ModelConfig fields as JSON, e.g. '{"init_std": 0.125}');
``--model ref`` is a hand-written GPT of the same shape with PyTorch's default initialisation.
A perfect copier's loss is 4 ln 10 / 10 = 0.92 nats per token; guessing the answer, 1.61.

    PYTHONPATH=src nice -n 5 python benchmarks/posttrain_copy3_raw.py --model scalelab
"""

from __future__ import annotations

import argparse
import json
import random

import torch
import torch.nn.functional as F
from torch import nn

from scalelab.config import run_config_from_dict
from scalelab.models import build_model


class _Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.n1, self.n2, self.heads = nn.LayerNorm(d), nn.LayerNorm(d), heads
        self.qkv, self.out = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(d, 4 * d, bias=False), nn.GELU(), nn.Linear(4 * d, d, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = (
            t.view(B, T, self.heads, D // self.heads).transpose(1, 2)
            for t in self.qkv(self.n1(x)).split(D, -1)
        )
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.out(y.transpose(1, 2).reshape(B, T, D))
        return x + self.mlp(self.n2(x))


class _Ref(nn.Module):
    def __init__(self, context: int, d: int = 64, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(258, d), nn.Embedding(context, d)
        self.blocks = nn.ModuleList(_Block(d, heads) for _ in range(layers))
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, 258, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="scalelab", help="scalelab or ref")
    ap.add_argument("--set", default="{}", help="ModelConfig fields (JSON), scalelab only")
    ap.add_argument("--context", type=int, default=16)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--lr", type=float, default=3e-3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng, stream = random.Random(0), []
    while len(stream) < 400_000:
        p = f"{rng.randrange(100):02d}+{rng.randrange(100):02d}="
        stream += [*(p + p[1] + p[4] + p[0]).encode(), 256]
    data = torch.tensor(stream)
    if a.model == "ref":
        model: nn.Module = _Ref(a.context)
    else:
        fields = {"n_layer": 2, "d_model": 64, "n_head": 4, "vocab_size": 258}
        cfg = run_config_from_dict(
            {
                "model": {**fields, "context": a.context, **json.loads(a.set)},
                "data": {"corpus": "jsonl:unused.jsonl:text", "tokenizer": "bytes"},
            }
        )
        model = build_model(cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    for step in range(a.steps):
        starts = torch.randint(0, len(data) - a.context - 1, (32,))
        w = torch.stack([data[s : s + a.context + 1] for s in starts])
        loss = F.cross_entropy(model(w[:, :-1]).flatten(0, 1), w[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == a.steps - 1:
            print(step, round(loss.item(), 3), flush=True)


if __name__ == "__main__":
    main()
