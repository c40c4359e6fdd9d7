"""The gold reward that best-of-n and RL are measured with: the task's grader, or a gold
reward model.

Gao, Schulman & Hilton (2022, sec. 2) measure overoptimisation against a *gold reward
model* (6B parameters) that stands in for human preference: the proxies are trained on
pairs the gold model labels, and the policy's true quality is the gold model's score. Here
the gold is either the grader (``gold=None``: what the proxies were trained to imitate,
when the pairs were grader-labelled) or a reward-model stage (``--gold RUN``), usually one
larger than every proxy and trained on many grader-labelled pairs. With a gold reward model
the grader's mean is still logged beside it (``grader_reward``), so the gold model's own
error is visible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scalelab.posttrain.grade import grade

if TYPE_CHECKING:
    import torch

    from scalelab.posttrain.rollout import Rollout
    from scalelab.runs import FinishedRun


class Gold:
    """``gold(rollout) -> (gold rewards, grader scores, FLOPs of the gold forwards)``."""

    def __init__(
        self,
        task: str,
        parent: FinishedRun | None = None,
        grader: Callable[[str, list[str], list[str]], list[float]] | None = None,
    ) -> None:
        from scalelab.posttrain.stage import build_lm, n_params

        self.task = task
        self.grader = grader
        self.parent = parent
        self.model: Any = build_lm(parent).eval() if parent is not None else None
        self.run_id = parent.run_id if parent is not None else "grader"
        self.N = n_params(self.model) if self.model is not None else None

    @property
    def is_model(self) -> bool:
        return self.model is not None

    def __call__(self, r: Rollout) -> tuple[list[float], list[float], float]:
        # the caller's grader when given (read when called: a test may replace it)
        scores = (self.grader or grade)(self.task, r.prompts, r.completions)
        if self.model is None:
            return scores, scores, 0.0
        return [float(x) for x in self.tensor(r)], scores, self.flops(r)

    def tensor(self, r: Rollout) -> torch.Tensor:
        import torch

        from scalelab.posttrain.rewardmodel import rewards

        with torch.no_grad():
            return rewards(self.model, r.prompt_ids, r.new_ids, r.mask)

    def flops(self, r: Rollout) -> float:
        from scalelab.posttrain.rollout import sequence_flops

        return float(sequence_flops(self.model, r.prompt_ids, r.new_ids)) if self.is_model else 0.0

    def keys(self) -> dict[str, Any]:
        """What a point says of its gold: ``gold`` (``grader`` or the run id) and its size."""
        return {"gold": self.run_id, "gold_N": self.N}
