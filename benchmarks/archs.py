"""Training throughput of every architecture against the transformer at the same shape.

One training step is forward, cross-entropy (+ ``aux_loss``), backward and an AdamW update,
in fp32 on the chosen device, on random tokens. Architectures are timed round-robin (each
round times every architecture once) and the *fastest* round of each is reported: on a
shared machine other processes only ever slow a round down, so the minimum is the estimate
least polluted by them (and a slow moment spreads over all architectures, not one). Prints tokens/s, the
ratio to the transformer, and the analytic parameters and training FLOPs per token.

    .venv/bin/python benchmarks/archs.py                       # 4 x 128, context 128
    .venv/bin/python benchmarks/archs.py --n-layer 2 --d-model 64 --rounds 5
    .venv/bin/python benchmarks/archs.py --json
    .venv/bin/python benchmarks/archs.py --trainer    # through scalelab.train.train instead

With ``--trainer`` each measurement is a real run of ``scalelab.train.train`` (its thread
policy, micro-batching and precision choice included) on a Markov corpus, and the figure is
the run's own ``tokens_per_second`` (training steps only).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F

from scalelab.accounting import count
from scalelab.architectures import ARCHS
from scalelab.config import DataConfig, ModelConfig, RunConfig, TrainConfig, example_config
from scalelab.models import build_model


def config(arch: str, args: argparse.Namespace) -> ModelConfig:
    return example_config(
        arch,
        n_layer=args.n_layer,
        d_model=args.d_model,
        n_head=args.n_head,
        vocab_size=args.vocab_size,
        context=args.context,
    )


def trainer_tokens_per_s(arch: str, args: argparse.Namespace, seed: int, out: str) -> float:
    """One real run of scalelab.train.train; its own training-steps-only throughput."""
    from scalelab.train import train

    cfg = RunConfig(
        model=config(arch, args),
        data=DataConfig(corpus="markov:order=1,vocab=64,seed=0,tokens=200000", cache_dir=out),
        train=TrainConfig(
            batch_size=args.batch,
            tokens=args.batch * args.context * args.steps,
            eval_every=10**6,
            eval_batches=1,
            checkpoint_every=10**6,
            seed=seed,
            device=args.device,
        ),
    )
    summary = train(cfg, out, progress=False)
    assert summary.tokens_per_second is not None
    return summary.tokens_per_second


def make_step(cfg: ModelConfig, batch: int, device: torch.device):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = build_model(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, cfg.vocab_size, (batch, cfg.context), device=device)
    y = torch.randint(0, cfg.vocab_size, (batch, cfg.context), device=device)

    def step() -> None:
        logits = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        aux = getattr(model, "aux_loss", None)
        if aux is not None:
            loss = loss + aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--vocab-size", type=int, default=512)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=3, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--archs", nargs="*", default=list(ARCHS))
    p.add_argument("--json", action="store_true")
    p.add_argument("--trainer", action="store_true", help="time real runs of scalelab.train")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default: PyTorch's, or the trainer's policy); on a machine other "
        "jobs share, 1 thread is the measurement least disturbed by them",
    )
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["SCALELAB_THREADS"] = str(args.threads)  # the trainer's thread policy
    device = torch.device(args.device)
    archs = ["transformer", *[a for a in args.archs if a != "transformer"]]
    tokens = args.batch * args.context
    if args.trainer:
        import tempfile

        args.steps = max(args.steps, 8)  # a run includes its set-up; time enough steps
        per_s: dict[str, list[float]] = {a: [] for a in archs}
        with tempfile.TemporaryDirectory() as out:
            for r in range(args.rounds):
                for arch in archs:
                    per_s[arch].append(trainer_tokens_per_s(arch, args, r, out))
        best = {a: max(v) for a, v in per_s.items()}
    else:
        best = measure_steps(archs, args, device, tokens)
    report(archs, best, args)


def measure_steps(
    archs: list[str], args: argparse.Namespace, device: torch.device, tokens: int
) -> dict[str, float]:
    """Best tokens/s over round-robin rounds of bare training steps, per architecture."""
    steps = {}
    for arch in archs:
        steps[arch] = make_step(config(arch, args), args.batch, device)
        for _ in range(2):  # warm-up: allocator, kernels
            steps[arch]()
    times: dict[str, list[float]] = {a: [] for a in archs}
    for _ in range(args.rounds):
        for arch in archs:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(args.steps):
                steps[arch]()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[arch].append((time.perf_counter() - t) / args.steps)
    return {a: tokens / min(t) for a, t in times.items()}


def report(archs: list[str], best: dict[str, float], args: argparse.Namespace) -> None:
    rows = []
    for arch in archs:
        c = count(config(arch, args), causal=True)
        rows.append(
            {
                "arch": arch,
                "tokens_per_s": round(best[arch]),
                "params": c.params.total,
                "active": c.params.active,
                "train_flops_per_token": c.flops.train_per_token,
            }
        )
    base = rows[0]["tokens_per_s"]
    for r in rows:
        r["vs_transformer"] = round(r["tokens_per_s"] / base, 2)
    if args.json:
        print(json.dumps({"shape": vars(args), "threads": torch.get_num_threads(), "rows": rows}))
        return
    threads = os.environ.get("SCALELAB_THREADS", "policy") if args.trainer else None
    how = (
        f"scalelab.train runs ({threads} threads)"
        if args.trainer
        else f"{torch.get_num_threads()} threads"
    )
    print(
        f"{args.n_layer} x {args.d_model}, {args.n_head} heads, context {args.context}, "
        f"batch {args.batch}, vocab {args.vocab_size}, {args.device}, {how}; "
        f"best of {args.rounds} rounds x {args.steps} steps"
    )
    print(
        f"{'arch':<12}{'tokens/s':>10}{'x transf.':>10}{'params':>10}{'active':>10}{'MFLOP/tok':>11}"
    )
    for r in rows:
        print(
            f"{r['arch']:<12}{r['tokens_per_s']:>10,}{r['vs_transformer']:>10.2f}"
            f"{r['params']:>10,}{r['active']:>10,}{r['train_flops_per_token'] / 1e6:>11.2f}"
        )


if __name__ == "__main__":
    main()
