"""Why ``add-rev`` stays at 0% after brief pretraining: pretrain one tiny transformer on a
task's demonstrations and print its greedy exact match (Wilson interval), the sampled grader
reward and the greedy accuracy at each answer position (docs/posttrain.md, "Sizing").

Besides the registered tasks it knows variants of addition, defined here and not registered
(probes, not tasks): ``add1`` (one digit each, '8+3=' -> '11'), ``addb5`` (5-bit binary),
``addh`` (the second operand's digits 0-4), ``addcf`` (three digits 0-4: no carries) and
``copy3`` ('37+70=' -> '703': copy three prompt digits, no arithmetic).

    PYTHONPATH=src nice -n 5 python benchmarks/posttrain_sizing.py --task add-rev --tokens 6e5
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import torch

from scalelab.config import run_config_from_dict
from scalelab.data.tokenizer import ByteTokenizer
from scalelab.posttrain import tasks as T
from scalelab.posttrain.grade import score_policy
from scalelab.posttrain.rollout import sample
from scalelab.runs import open_run
from scalelab.train import train


def _digits(n: int, base: int, width: int) -> str:
    out = []
    for _ in range(width):
        out.append(str(n % base))
        n //= base
    return "".join(reversed(out))


def _add(
    bits: int, base: int, top_b: int | None = None, top: int | None = None, width: int = 0
) -> T.Verifiable:
    """Reversed addition of two ``bits``-digit numbers in ``base`` (digits below ``top``; the
    second operand's below ``top_b``), the sum padded to ``width`` digits (bits + 1)."""
    width = width or bits + 1

    def draw(rng: random.Random, limit: int | None) -> str:
        return "".join(str(rng.randrange(limit or base)) for _ in range(bits))

    def solve(prompt: str) -> str:
        a, b = prompt.rstrip("=").split("+")
        return _digits(int(a, base) + int(b, base), base, width)[::-1]

    def make(rng: random.Random) -> tuple[str, str]:
        prompt = f"{draw(rng, top)}+{draw(rng, top_b or top)}="
        return prompt, solve(prompt)

    return T.Verifiable("probe", 2 * bits + 2, width, make, solve, "probe")


def _copy3() -> T.Verifiable:
    def solve(prompt: str) -> str:
        return prompt[1] + prompt[4] + prompt[0]

    def make(rng: random.Random) -> tuple[str, str]:
        prompt = f"{rng.randrange(100):02d}+{rng.randrange(100):02d}="
        return prompt, solve(prompt)

    return T.Verifiable("copy3", 6, 3, make, solve, "copy")


PROBES = {
    "add1": lambda: _add(1, 10),
    "addb5": lambda: _add(5, 2),
    "addh": lambda: _add(2, 10, top_b=5),
    "addcf": lambda: _add(3, 10, top=5, width=3),
    "copy3": _copy3,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="add-rev")
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--tokens", type=float, default=6e5)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--pos", default="learned", help="learned or rotary")
    ap.add_argument("--demos", type=int, default=20000)
    ap.add_argument("--work", default="", help="folder for the corpus and run (default: temp)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.task in PROBES:
        probe = PROBES[a.task]()
        T.VERIFIABLE[a.task] = T.Verifiable(
            a.task, probe.prompt_len, probe.max_answer, probe.make, probe.solve, a.task
        )
    root = Path(a.work or tempfile.mkdtemp(prefix="sizing-"))
    corpus = T.write_corpus(a.task, root / f"{a.task}-{a.demos}.jsonl", a.demos)
    cfg = run_config_from_dict(
        {
            "model": {
                "n_layer": a.layers,
                "d_model": a.d,
                "n_head": 4,
                "vocab_size": 258,
                "context": a.context,
                "pos": a.pos,
            },
            "data": {
                "corpus": f"jsonl:{corpus}:text",
                "tokenizer": "bytes",
                "cache_dir": str(root / "cache"),
            },
            "train": {
                "batch_size": a.batch,
                "tokens": int(a.tokens),
                "lr": a.lr,
                "eval_every": 10**6,
                "precision": "fp32",
                "device": "cpu",
            },
        }
    )
    t0 = time.time()
    summary = train(cfg, root / "runs", progress=False)
    model = open_run(root / "runs" / summary.run_id).model
    tok = ByteTokenizer()
    score = score_policy(model, tok, a.task, n=500)
    task = T.get_verifiable(a.task)
    pairs = T.prompts(a.task, "val", 500, 0)
    greedy = sample(model, tok, [p for p, _ in pairs], task.max_answer + 1, temperature=0.0)
    per_position = [
        sum(
            len(c) > i and c[i] == ans[i]
            for c, (_, ans) in zip(greedy.completions, pairs, strict=True)
        )
        / len(pairs)
        for i in range(task.max_answer)
    ]
    print(
        json.dumps(
            {
                **vars(a),
                "accuracy": score.accuracy,
                "accuracy_ci": [score.accuracy_lo, score.accuracy_hi],
                "sampled_reward": round(score.reward, 3),
                "per_position": [round(x, 3) for x in per_position],
                "seconds": round(time.time() - t0),
                "examples": list(
                    zip([p for p, _ in pairs[:4]], greedy.completions[:4], strict=True)
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
