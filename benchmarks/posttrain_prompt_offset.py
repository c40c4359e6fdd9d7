"""Greedy accuracy of a finished run on a task's validation prompts placed at several offsets
in the context: at position 0 (no eos before it), after one eos (the format of
``scalelab.posttrain.rollout.encode_prompts``, which the ladder's scores use), and after one
to three training demonstrations, as most prompts sit in a pretraining window
(docs/posttrain.md, "Sizing"). A model that learned the look-up relative to the prompt scores
the same at every offset; one that learned it at absolute positions does not.

    PYTHONPATH=src nice -n 5 python benchmarks/posttrain_sizing.py --task copy3 --work W
    PYTHONPATH=src nice -n 5 python benchmarks/posttrain_prompt_offset.py W copy3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import posttrain_sizing as sizing  # the probes' definitions
from scalelab.data.tokenizer import ByteTokenizer
from scalelab.posttrain import tasks as T
from scalelab.runs import open_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", help="the --work folder of a posttrain_sizing.py run")
    ap.add_argument("task")
    a = ap.parse_args()
    if a.task in sizing.PROBES:
        p = sizing.PROBES[a.task]()
        T.VERIFIABLE[a.task] = T.Verifiable(
            a.task, p.prompt_len, p.max_answer, p.make, p.solve, a.task
        )
    (run,) = (Path(a.work) / "runs").iterdir()
    model = open_run(run).model.eval()
    tok = ByteTokenizer()
    pairs = T.prompts(a.task, "val", 500, 0)
    demos = [[*tok.encode(p + ans), tok.eos_id] for p, ans in T.prompts(a.task, "train", 3, 1)]
    n = len(pairs[0][1])
    prefixes = {"none": [], "eos": [tok.eos_id]}
    for k in (1, 2, 3):
        prefixes[f"{k} demos + eos"] = [t for d in demos[:k] for t in d] + [tok.eos_id]
    for name, pre in prefixes.items():
        x = torch.tensor([pre + tok.encode(p) for p, _ in pairs])
        with torch.no_grad():  # greedy, answer length only (no stop at eos)
            for _ in range(n):
                x = torch.cat([x, model(x)[:, -1].argmax(-1, keepdim=True)], dim=1)
        out = x[:, -n:].tolist()
        right = [
            [o[i] == ord(ans[i]) for i in range(n)] for o, (_, ans) in zip(out, pairs, strict=True)
        ]
        exact = sum(all(r) for r in right) / len(pairs)
        per = [round(sum(r[i] for r in right) / len(pairs), 3) for i in range(n)]
        print(f"prefix {name:14s} prompt at {len(pre):2d}: exact {exact:.3f} per position {per}")


if __name__ == "__main__":
    main()
