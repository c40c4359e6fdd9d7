"""The reward model: a language model with a scalar head, and its rewards of completions.

The head is a linear map of the last hidden state (the final norm's output) at the
completion's last token (its eos), so the score has read the prompt and the whole
completion. Its training is the ``reward`` stage (:mod:`.reward`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from scalelab.posttrain.rollout import encode_completions, encode_prompts, forward_flops_per_token
from scalelab.posttrain.tasks import get_verifiable

if TYPE_CHECKING:
    import torch

    from scalelab.data import Tokenizer


class RewardModel(nn.Module):
    """``lm`` with a scalar head on its last hidden state at a chosen position."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm
        self.cfg = lm.cfg
        self._hidden: list[Any] = []
        # the final norm's output is the last hidden state in every architecture of the zoo
        lm.norm_f.register_forward_hook(self._keep)
        self.score = nn.Linear(lm.cfg.d_model, 1)
        nn.init.zeros_(self.score.weight)  # every completion starts at reward 0
        nn.init.zeros_(self.score.bias)

    def _keep(self, _module: nn.Module, _args: tuple[Any, ...], out: Any) -> None:
        self._hidden.append(out)

    def forward(self, idx: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """Rewards [B] of sequences ``idx`` [B, T] read at positions ``last`` [B]."""
        import torch

        self._hidden.clear()
        self.lm(idx)
        h = self._hidden[-1].float()
        return self.score(h[torch.arange(idx.shape[0]), last]).squeeze(-1)


def rewards(
    rm: RewardModel, prompt_ids: torch.Tensor, new_ids: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """The reward of each completion: read at its last token (its eos)."""
    import torch

    seq = torch.cat([prompt_ids, new_ids], dim=1)
    last = prompt_ids.shape[1] + mask.sum(1).long() - 1
    return rm(seq, last)


def score_text(
    rm: Any, tokenizer: Tokenizer, task: str, ps: list[str], cs: list[str]
) -> tuple[list[float], float]:
    """Rewards of text completions and the FLOPs of the forward."""
    import torch

    width = get_verifiable(task).max_answer + 1
    prompt_ids = encode_prompts(tokenizer, ps)
    new_ids, mask = encode_completions(tokenizer, cs, width)
    with torch.no_grad():
        r = rewards(rm, prompt_ids, new_ids, mask)
    flops = forward_flops_per_token(rm) * (prompt_ids.numel() + new_ids.numel())
    return r.tolist(), flops
