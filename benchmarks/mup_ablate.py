"""One run of the docs/mup.md set-up (2 layers, 4 heads, bytes, 262k tokens, muP base width
32) with one muP rule switched, to find which rule a result rests on. The switches patch the
built model before the trainer makes its optimizer:

* ``emb=EXPR``: the embeddings' Adam rate times EXPR (``m`` is the width multiplier), e.g.
  ``emb=1/8``;
* ``attn=sp``: SP's 1/sqrt(d_head) attention scale instead of muP's;
* ``stop=STEP``: stop after the evaluation at STEP (``every=N`` evaluations); ``seed=N``.

    PYTHONPATH=src .venv/bin/python benchmarks/mup_ablate.py WIDTH LR [switch ...] --runs DIR
"""

from __future__ import annotations

import argparse
import json

import torch
from torch import nn

import scalelab.train.loop as loop
from scalelab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from scalelab.models import build_model


def patched(switches: dict[str, str], m: float):
    def build(cfg: ModelConfig) -> nn.Module:
        model = build_model(cfg)
        base = model.lr_scale
        emb = {id(model.tok_emb.weight), id(model.pos_emb.weight)}
        factor = float(eval(switches.get("emb", "1"), {"m": m}))  # a number or m-expression

        def scale(p: torch.Tensor) -> float:
            return base(p) * (factor if id(p) in emb else 1.0)

        model.lr_scale = scale
        if switches.get("attn") == "sp":
            for block in model.blocks:
                block.attn.scale = None
        return model

    return build


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("width", type=int)
    ap.add_argument("lr", type=float)
    ap.add_argument("switches", nargs="*", help="key=value")
    ap.add_argument("--runs", default="runs-ablate")
    args = ap.parse_args()
    sw = dict(a.split("=", 1) for a in args.switches)
    loop.build_model = patched(sw, args.width / 32)  # type: ignore[assignment]
    train = TrainConfig(
        tokens=262144, lr=args.lr, precision="fp32", batch_size=16,
        eval_every=int(sw.get("every", 64)), seed=int(sw.get("seed", 0)),
    )  # fmt: skip
    model = ModelConfig(
        n_layer=2, d_model=args.width, n_head=4, vocab_size=258, context=64,
        tie_embeddings=False, parametrization="mup", base_width=32,
    )  # fmt: skip
    cfg = RunConfig(model=model, data=DataConfig(tokenizer="bytes"), train=train)
    stop = int(sw.get("stop", 10**9))
    # a patched run is not the plain run of its config: its own directory per switch set
    out = f"{args.runs}/{'_'.join(args.switches).replace('/', 'd') or 'plain'}"
    s = loop.train(
        cfg, out, progress=False, on_eval=lambda step, v: "stop" if step >= stop else None
    )
    print(
        json.dumps(
            {
                "switches": args.switches,
                "step": s.step,
                "val_loss": s.val_loss,
                "train_loss": s.train_loss,
            }
        )
    )


if __name__ == "__main__":
    main()
