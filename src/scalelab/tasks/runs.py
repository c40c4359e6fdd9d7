"""A finished run as a scorer sees it: its config, its model with the newest intact
checkpoint's weights, and its tokenizer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalelab import rundir
from scalelab.config import RunConfig, run_config_from_dict
from scalelab.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from torch import nn

    from scalelab.data import Tokenizer


@dataclass
class LoadedRun:
    run_dir: Path
    run_id: str
    cfg: RunConfig
    model: nn.Module
    step: int  # the checkpoint's step (0: initial weights, no checkpoint read)


def read_config(run: str | Path) -> RunConfig:
    """The run's config: a run directory's ``config.json``, or the run config a Hugging Face
    export of a run carries (``scalelab export``)."""
    run_dir = Path(run)
    if (run_dir / rundir.EXPORT_META).is_file():
        from scalelab.train.export import export_meta

        return run_config_from_dict(export_meta(run_dir)["config"])
    if not (run_dir / rundir.CONFIG).is_file():
        raise StoreError(
            f"{run_dir} is not a run directory (no {rundir.CONFIG}); give the directory of a "
            "trained run, e.g. runs/<run_id>"
        )
    return run_config_from_dict(rundir.read_json(run_dir / rundir.CONFIG))


def load_run(run: str | Path, *, initial: bool = False) -> LoadedRun:
    """The run's model on the CPU, in eval mode, with its newest intact checkpoint's weights
    (``initial=True``: the weights before training, from the run's seed: the "no
    pretraining" point of a d90-against-steps curve)."""
    import torch

    from scalelab.models import build_model
    from scalelab.train.checkpoint import latest_checkpoint

    run_dir = Path(run)
    cfg = read_config(run_dir)
    if (
        run_dir / rundir.EXPORT_META
    ).is_file() and not initial:  # a Hugging Face export: its weights, our model
        from scalelab.train.export import load_export

        cfg, model, meta = load_export(run_dir)
        model.eval()
        # the export's results are its own, beside the run's: "<run id>-hf"
        return LoadedRun(run_dir, f"{meta['run_id']}-hf", cfg, model, int(meta["step"]))
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model)
    step = 0
    if not initial:
        ckpt = latest_checkpoint(run_dir / rundir.CHECKPOINTS)
        if ckpt is None:
            raise StoreError(
                f"{run_dir} has no intact checkpoint: train it (or resume it) first; "
                "tasks score a run's trained weights"
            )
        ckpt.restore(model)
        step = ckpt.step
    model.eval()
    return LoadedRun(run_dir, run_dir.name, cfg, model, step)


def run_tokenizer(cfg: RunConfig) -> Tokenizer:
    """The tokenizer the run was trained with (from the token cache)."""
    from scalelab.data import load_tokens

    return load_tokens(cfg.data, cfg.model.vocab_size).tokenizer


def check_causal(cfg: RunConfig, what: str) -> None:
    if not cfg.model.causal:
        raise ConfigError(
            f"{what} scores a causal language model's next-token likelihoods, and this run is "
            "bidirectional (model.causal = false); use a causal run"
        )


def summary_of(run_dir: Path) -> dict[str, Any]:
    path = run_dir / rundir.SUMMARY
    return rundir.read_json(path) if path.exists() else {}
