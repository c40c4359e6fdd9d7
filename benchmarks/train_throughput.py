"""Training throughput: scalelab's loop against a plain nanoGPT-style PyTorch loop.

Both train the same model (decoder-only GPT: LayerNorm, learned positions, exact GELU, no
biases, tied embeddings, SDPA attention), from the same initial weights, on the same corpus
(python-stdlib, byte-level BPE at vocab 512), for the same number of tokens, in fp32 with
AdamW, warmup + cosine, gradient clipping. The reference is written here the way nanoGPT's
``train.py`` is: random windows gathered per step, AdamW with its default implementation,
``loss.item()`` only at log steps. scalelab runs through ``scalelab.train.train``.

Printed per configuration and repetition: tokens/s over training steps (the first step,
with its one-off allocation and compilation, timed apart), MFU against an fp32 matmul peak
measured in the same process, the final train loss (mean of the last 10 steps) and the
validation loss of both on scalelab's fixed validation windows; then the median ratio and
its spread. The engines alternate (reference, scalelab, reference, ...) so a change in the
machine's load hits both.

    python benchmarks/train_throughput.py                # (a) and (b), 3 repetitions
    python benchmarks/train_throughput.py --configs a --repeats 5 --steps-a 300

``--precision`` measures instead, for the demo's smallest and largest ladder shapes and (a)
and (b), scalelab's training tokens/s in fp32 and under bf16 autocast, and which precision
``train.precision = "auto"`` picks (it times the run's own model: issue 24), so that the pick
can be checked against the faster of the two:

    python benchmarks/train_throughput.py --precision --json precision.json
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
        python benchmarks/train_throughput.py --precision --json precision-avx2.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scalelab.accounting import count
from scalelab.config import load_run_config
from scalelab.data import load_tokens
from scalelab.models import build_model
from scalelab.train import train
from scalelab.train.device import Precision, matmul_flops
from scalelab.train.evaluate import Evaluator

CONFIGS = {
    "a": dict(n_layer=4, d_model=128, n_head=4, context=128, batch_size=32),
    "b": dict(n_layer=6, d_model=384, n_head=6, context=256, batch_size=16),
}
VOCAB = 512
# lr 1e-3: at 3e-3 these short runs spike and the final loss of the reference alone spread
# from 3.85 to 4.56 over three seeds (measured), too much to compare engines by.
LR, MIN_LR_RATIO, WARMUP, WD, CLIP = 1e-3, 0.1, 0.05, 0.1, 1.0


# --- the reference: a plain nanoGPT-style model and loop ------------------------------------


class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, n_head: int) -> None:
        super().__init__()
        self.c_attn = nn.Linear(d, 3 * d, bias=False)
        self.c_proj = nn.Linear(d, d, bias=False)
        self.n_head = n_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d, bias=False)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, d: int, n_head: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, bias=False)
        self.attn = CausalSelfAttention(d, n_head)
        self.ln_2 = nn.LayerNorm(d, bias=False)
        self.mlp = MLP(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, n_layer: int, d: int, n_head: int, context: int, vocab: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(context, d)
        self.h = nn.ModuleList(Block(d, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d, bias=False)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def reference_state(ours: nn.Module, n_layer: int) -> dict[str, torch.Tensor]:
    """scalelab's initial weights under the reference's names (same init for both)."""
    sd = ours.state_dict()
    out = {"wte.weight": sd["tok_emb.weight"], "wpe.weight": sd["pos_emb.weight"],
           "ln_f.weight": sd["norm_f.weight"], "lm_head.weight": sd["head.weight"]}  # fmt: skip
    for i in range(n_layer):
        for a, b in (("norm1", "ln_1"), ("norm2", "ln_2"), ("attn.qkv", "attn.c_attn"),
                     ("attn.proj", "attn.c_proj"), ("mlp.fc", "mlp.c_fc"), ("mlp.proj", "mlp.c_proj")):  # fmt: skip
            out[f"h.{i}.{b}.weight"] = sd[f"blocks.{i}.{a}.weight"]
    return {k: v.clone() for k, v in out.items()}


def reference_lr(it: int, steps: int) -> float:
    warm = round(WARMUP * steps)
    if it < warm:
        return LR * (it + 1) / warm
    ratio = (it - warm) / max(1, steps - 1 - warm)
    return LR * MIN_LR_RATIO + 0.5 * (1 + math.cos(math.pi * ratio)) * LR * (1 - MIN_LR_RATIO)


@dataclass
class Result:
    engine: str
    tokens_per_second: float
    first_step_seconds: float
    train_loss: float
    val_loss: float


def run_reference(
    spec: dict, data, init: nn.Module, steps: int, evaluate: Evaluator, seed: int
) -> Result:
    torch.manual_seed(seed)
    B, T = spec["batch_size"], spec["context"]
    model = GPT(spec["n_layer"], spec["d_model"], spec["n_head"], T, VOCAB)
    model.load_state_dict(reference_state(init, spec["n_layer"]))
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": no_decay, "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.95))  # fmt: skip
    train_data = data.train

    def get_batch() -> tuple[torch.Tensor, torch.Tensor]:
        ix = torch.randint(len(train_data) - T, (B,))
        x = torch.stack([torch.from_numpy(train_data[i : i + T].astype(np.int64)) for i in ix])
        y = torch.stack(
            [torch.from_numpy(train_data[i + 1 : i + 1 + T].astype(np.int64)) for i in ix]
        )
        return x, y

    losses = []
    t_first = t0 = time.perf_counter()
    first = 0.0
    for it in range(steps):
        for g in opt.param_groups:
            g["lr"] = reference_lr(it, steps)
        x, y = get_batch()
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())
        if it == 0:
            losses[-1].item()
            first = time.perf_counter() - t_first
            t0 = time.perf_counter()
        elif it % 10 == 0:
            losses[-1].item()  # nanoGPT reads the loss at log steps only
    torch.stack(losses).sum().item()
    rate = (steps - 1) * B * T / (time.perf_counter() - t0)
    final = torch.stack(losses[-10:]).mean().item()
    return Result("reference", rate, first, final, evaluate(model))


def run_scalelab(cfg, data, steps: int, out: Path, evaluate: Evaluator) -> Result:
    s = train(cfg, out, data=data, progress=False)
    assert s.status == "finished" and s.step == steps, s
    rows = [json.loads(line) for line in (Path(s.path) / "metrics.jsonl").read_text().splitlines()]
    model = build_model(cfg.model)
    from scalelab.train.checkpoint import latest_checkpoint

    latest_checkpoint(Path(s.path) / "checkpoint").restore(model)
    last = [r["train_loss"] for r in rows if "train_loss" in r][-1]  # mean of the last 10 steps
    return Result("scalelab", s.tokens_per_second, s.first_step_seconds, last, evaluate(model))


# the demo's ladder ends (scalelab.apps.demo: 2 layers, widths by size_for for 1e4 and
# 1.6e5 non-embedding parameters, bytes, context 128, batch 16), and (a), (b)
PRECISION_SHAPES = {
    "demo-smallest": dict(n_layer=2, d_model=20, n_head=4, context=128, batch_size=16, vocab=258),
    "demo-largest": dict(n_layer=2, d_model=80, n_head=4, context=128, batch_size=16, vocab=258),
    "a": {**CONFIGS["a"], "vocab": VOCAB},
    "b": {**CONFIGS["b"], "vocab": VOCAB},
}


def precision_table(steps: dict[str, int], out_json: Path | None) -> None:
    """tokens/s of scalelab's own loop in fp32 and bf16, and what "auto" picks, per shape."""
    import os

    from scalelab.train.device import cpu_capability

    # an AVX2-only machine, emulated: ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
    # MKL_ENABLE_INSTRUCTIONS=AVX2 (the kernels' instruction set is printed, to check it took)
    isa = cpu_capability()
    bf16_gemm = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    report: dict = {"torch": torch.__version__, "loadavg": os.getloadavg(), "shapes": {},
                    "isa": isa, "onednn_bf16_gemm": bf16_gemm}  # fmt: skip
    print(f"torch {torch.__version__}; kernels {isa}; oneDNN bf16 matmul {bf16_gemm}; "
          f"load average {os.getloadavg()}")  # fmt: skip
    print(f"{'shape':14s} {'steps':>5s} {'fp32 tok/s':>11s} {'bf16 tok/s':>11s} {'faster':>6s} "
          f"{'auto':>5s}  auto's timing (ms/step fp32, bf16)")  # fmt: skip
    for name, spec in PRECISION_SHAPES.items():
        n = steps.get(name, 20)
        tokens = n * spec["batch_size"] * spec["context"]
        with tempfile.TemporaryDirectory() as tmp:
            base = [
                f"model.n_layer={spec['n_layer']}", f"model.d_model={spec['d_model']}",
                f"model.n_head={spec['n_head']}", f"model.context={spec['context']}",
                f"model.vocab_size={spec['vocab']}", f"train.batch_size={spec['batch_size']}",
                f"train.tokens={tokens}", f"train.eval_every={10 * n}", "train.eval_batches=1",
                f"train.checkpoint_every={10 * n}", f"data.cache_dir={tmp}/cache",
                "data.corpus=python-stdlib", "data.tokenizer=bytes" if spec["vocab"] == 258
                else "data.tokenizer=bpe",
            ]  # fmt: skip
            data = load_tokens(load_run_config(None, base).data, spec["vocab"])
            rate = {}
            for p in ("fp32", "bf16"):
                s = train(load_run_config(None, [*base, f"train.precision={p}"]), Path(tmp) / p,
                          data=data, progress=False)  # fmt: skip
                rate[p] = s.tokens_per_second
            os.environ.pop("SCALELAB_PRECISION", None)
            auto = train(load_run_config(None, [*base, "train.precision=auto", "train.tokens="
                         f"{spec['batch_size'] * spec['context']}"]), Path(tmp) / "auto",
                         data=data, progress=False)  # fmt: skip
        faster = max(rate, key=lambda k: rate[k])
        t = auto.precision_timings or {}
        print(f"{name:14s} {n:5d} {rate['fp32']:11,.0f} {rate['bf16']:11,.0f} {faster:>6s} "
              f"{auto.precision:>5s}  {1e3 * t.get('fp32', 0):.2f}, {1e3 * t.get('bf16', 0):.2f}",
              flush=True)  # fmt: skip
        report["shapes"][name] = {"spec": spec, "steps": n, "tokens_per_second": rate,
                                  "faster": faster, "auto": auto.precision,
                                  "auto_reason": auto.precision_reason, "auto_timings": t}  # fmt: skip
    report["loadavg_end"] = os.getloadavg()
    if out_json:
        out_json.write_text(json.dumps(report, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--configs", default="a,b")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps-a", type=int, default=200)
    ap.add_argument("--steps-b", type=int, default=40)
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        help="extra scalelab overrides (e.g. train.compile=true)",
    )
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--precision", action="store_true", help="fp32 vs bf16 vs auto, per shape")
    ap.add_argument("--steps-demo", type=int, default=60)
    args = ap.parse_args()
    if args.precision:
        steps = {"demo-smallest": args.steps_demo, "demo-largest": args.steps_demo,
                 "a": args.steps_a, "b": args.steps_b}  # fmt: skip
        precision_table(steps, args.json)
        return

    # the best of a few sizes: MKL's blocking favours some sizes over others
    peak = max(matmul_flops(torch.float32, n=n, seconds=0.5) for n in (512, 1024, 2048))
    bf16_peak = matmul_flops(torch.bfloat16, n=512, seconds=0.3, max_reps=3)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"measured matmul peak: fp32 {peak / 1e9:.1f} GFLOP/s, bf16 {bf16_peak / 1e9:.2f} GFLOP/s"
    )
    report: dict = {"peak_fp32_flops": peak, "peak_bf16_flops": bf16_peak, "configs": {}}
    for name in args.configs.split(","):
        spec = CONFIGS[name]
        steps = args.steps_a if name == "a" else args.steps_b
        tokens = steps * spec["batch_size"] * spec["context"]
        cfg = load_run_config(None, [
            f"model.n_layer={spec['n_layer']}", f"model.d_model={spec['d_model']}",
            f"model.n_head={spec['n_head']}", f"model.context={spec['context']}",
            f"model.vocab_size={VOCAB}", f"train.batch_size={spec['batch_size']}",
            f"train.tokens={tokens}", f"train.lr={LR}", f"train.min_lr_ratio={MIN_LR_RATIO}",
            f"train.warmup={WARMUP}", f"train.weight_decay={WD}", f"train.grad_clip={CLIP}",
            f"train.eval_every={10 * steps}", f"train.checkpoint_every={10 * steps}",
            "train.eval_batches=4", "train.precision=fp32", *args.set,
        ])  # fmt: skip
        data = load_tokens(cfg.data, VOCAB)
        evaluate = Evaluator(cfg, data, torch.device("cpu"), Precision("fp32", "benchmark"))
        torch.manual_seed(cfg.train.seed)
        init = build_model(cfg.model)  # the initial weights train() builds from the same seed
        flops_per_token = count(cfg.model, causal=True).flops.train_per_token
        print(f"\n({name}) {spec}, vocab {VOCAB}: {steps} steps, {tokens:,} tokens, "
              f"{flops_per_token / 1e6:.1f} MFLOP/token (train)")  # fmt: skip
        results: list[Result] = []
        for rep in range(args.repeats):
            results.append(run_reference(spec, data, init, steps, evaluate, seed=rep))
            with tempfile.TemporaryDirectory() as tmp:
                results.append(run_scalelab(cfg, data, steps, Path(tmp), evaluate))
            for r in results[-2:]:
                mfu = r.tokens_per_second * flops_per_token / peak
                print(f"  rep {rep} {r.engine:9s} {r.tokens_per_second:9,.0f} tok/s  MFU {mfu:6.1%}  "
                      f"first step {r.first_step_seconds:6.2f}s  train loss {r.train_loss:.4f}  "
                      f"val loss {r.val_loss:.4f}", flush=True)  # fmt: skip
        ref = [r.tokens_per_second for r in results if r.engine == "reference"]
        ours = [r.tokens_per_second for r in results if r.engine == "scalelab"]
        ratios = [o / r for o, r in zip(ours, ref, strict=True)]
        print(f"  ratio scalelab/reference: median {statistics.median(ratios):.2f}x "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f}); tok/s reference median "
              f"{statistics.median(ref):,.0f}, scalelab median {statistics.median(ours):,.0f}")  # fmt: skip
        report["configs"][name] = {
            "spec": spec, "steps": steps, "tokens": tokens, "train_flops_per_token": flops_per_token,
            "results": [r.__dict__ for r in results], "ratios": ratios,
        }  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    sys.exit(main())
