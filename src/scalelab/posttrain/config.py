"""The ``[posttrain]`` settings (``--set posttrain.KEY=VALUE``), checked when made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scalelab.config import apply_overrides, check_choice, section_from_dict
from scalelab.errors import ConfigError
from scalelab.ranges import check_rate

METHODS = ("sft", "reward", "dpo", "rl")
DPO_LOSSES = ("sigmoid", "ipo", "conservative", "rpo")


@dataclass(frozen=True)
class PosttrainConfig:
    """How a stage trains. Keys a method does not read are still part of its id only when
    they differ from the default, so adding a key never renames old stages."""

    lr: float = 1e-3
    steps: int = 200
    batch_size: int = 32  # demonstrations (sft), pairs (reward, dpo) or prompts (rl) per step
    weight_decay: float = 0.0  # 0: a zero gradient leaves a weight where it is (GRPO test)
    seed: int = 0
    eval_every: int = 50  # steps between evaluations (rl: a point on the KL curve each)
    checkpoint_every: int = 25
    eval_prompts: int = 500  # validation prompts of the final accuracy
    # preference pairs (reward, dpo): drawn from the parent policy's samples, labelled by
    # the gold reward (--reward), unless pairs_file names a pairs.jsonl
    pairs: int = 2000
    pairs_file: str = ""
    holdout: float = 0.1  # share of pairs held out (the reward model's pair accuracy)
    # DPO (Rafailov et al. 2023), IPO (Azar et al. 2023), conservative DPO (label smoothing)
    beta: float = 0.1
    loss: str = "sigmoid"
    label_smoothing: float = 0.0
    rpo_alpha: float = 1.0  # loss = "rpo": weight of the chosen completion's NLL per token
    # pairs drawn from the policy (reward, dpo): keep only those whose chosen completion the
    # gold scores 1.0 (right against wrong, as Pang et al. 2024 pair their samples)
    chosen_right: bool = False
    # RL: GRPO (Shao et al. 2024, DeepSeekMath sec. 4.1)
    group: int = 8  # samples per prompt
    clip: float = 0.2  # PPO's clipped ratio epsilon
    kl_coef: float = 0.04  # weight of the KL(policy || reference) penalty; 0: none
    updates: int = 2  # policy updates per batch of samples (the clip matters from the 2nd)
    temperature: float = 1.0
    top_k: int = 0  # 0: the whole vocabulary
    kl_prompts: int = 128  # validation prompts behind each logged KL, gold and proxy reward

    def __post_init__(self) -> None:
        check_choice("posttrain.loss", self.loss, DPO_LOSSES)
        for name in (
            "steps",
            "batch_size",
            "eval_every",
            "checkpoint_every",
            "eval_prompts",
            "pairs",
            "group",
            "updates",
            "kl_prompts",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"posttrain.{name} must be a positive integer, got {getattr(self, name)}"
                )
        # counts bounded as every count option is: beyond these a value is a typo
        for name, most in (("steps", 10**9), ("eval_every", 10**9), ("checkpoint_every", 10**9),
                           ("batch_size", 2**16), ("group", 2**12), ("updates", 2**10),
                           ("pairs", 10**8), ("eval_prompts", 10**7), ("kl_prompts", 10**7),
                           ("top_k", 2**20)):  # fmt: skip
            if getattr(self, name) > most:
                raise ConfigError(
                    f"posttrain.{name} = {getattr(self, name):,} is more than this machine can "
                    f"use: give at most {most:,}"
                )
        check_rate("posttrain.lr", self.lr)
        check_rate("posttrain.temperature", self.temperature)
        if not (self.beta > 0 and self.beta < float("inf")):
            raise ConfigError(
                f"posttrain.beta must be positive (the KL weight of DPO), got {self.beta}; "
                "0.1 is the usual value"
            )
        if not 0 <= self.weight_decay < float("inf"):
            raise ConfigError(f"posttrain.weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.rpo_alpha < float("inf"):
            raise ConfigError(f"posttrain.rpo_alpha must be >= 0, got {self.rpo_alpha}")
        if not 0 <= self.kl_coef < float("inf"):
            raise ConfigError(f"posttrain.kl_coef must be >= 0, got {self.kl_coef}")
        if not 0 < self.clip < 1:
            raise ConfigError(f"posttrain.clip must be in (0, 1), got {self.clip}")
        if not 0 < self.holdout < 1:
            raise ConfigError(f"posttrain.holdout must be in (0, 1), got {self.holdout}")
        if not 0 <= self.label_smoothing < 0.5:
            raise ConfigError(
                f"posttrain.label_smoothing must be in [0, 0.5), got {self.label_smoothing}"
            )
        if self.group < 2:
            raise ConfigError(
                f"posttrain.group must be >= 2 (GRPO's advantage is relative to the group), "
                f"got {self.group}"
            )
        if self.top_k < 0:
            raise ConfigError(f"posttrain.top_k must be >= 0 (0: none), got {self.top_k}")

    def changed(self) -> dict[str, Any]:
        """The keys that differ from the defaults (what names a stage)."""
        default = PosttrainConfig()
        return {k: v for k, v in vars(self).items() if getattr(default, k) != v}


def posttrain_config(overrides: list[str] | tuple[str, ...] = (), **fields: Any) -> PosttrainConfig:
    """A config from ``posttrain.key=value`` overrides and keywords."""
    values = apply_overrides({"posttrain": dict(fields)}, overrides)
    extra = set(values) - {"posttrain"}
    if extra:
        raise ConfigError(
            f"post-training takes posttrain.KEY=VALUE settings, not {sorted(extra)[0]}.*"
        )
    return section_from_dict(PosttrainConfig, values["posttrain"], "posttrain")
