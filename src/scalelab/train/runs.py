"""A finished run, opened once: the one way every command reads a run directory or its export
(imported as :mod:`scalelab.runs`).

``open_run(path)`` returns a :class:`FinishedRun`: the run's config, its summary, the newest
checkpoint whose manifest checks out (damaged ones are skipped and named), and on demand the
model built and loaded and the tokenizer it was trained with. A Hugging Face export of a run
(``scalelab export``: ``config.json`` + ``model.safetensors`` + ``scalelab.json``) opens the
same way: its ``scalelab.json`` carries the run's config and the checksums of the files
written beside it, so an export with flipped weight bytes is refused like a damaged
checkpoint (``verify=False`` reads a hand-made export that has no checksums).

A derived run (a post-training stage) opens the same way: its ``config.json`` is its own
record (``kind``, ``run_id``, the parent, ...) with the root run's config under
``run_config``; the model is built from that config, the run is named by its ``run_id``, and
the record is kept as :attr:`FinishedRun.derived` for the technique that wrote it.

Whatever is wrong (not a run, not finished, no intact checkpoint, a damaged file) is one
:class:`RunError`, whose message names the path, what is wrong and what to do.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalelab import rundir
from scalelab.config import RunConfig, run_config_from_dict
from scalelab.errors import ScalelabError, StoreError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from scalelab.data import Tokenizer
    from scalelab.train.checkpoint import Checkpoint

FINISHED = ("finished", "stopped_early")
EXPORT_WEIGHTS = "model.safetensors"
EXPORT_FILES = ("config.json", EXPORT_WEIGHTS)  # what scalelab.json's checksums cover


class RunError(StoreError):
    """A path given as a run is not one, has not finished, or is damaged."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_checksums(folder: Path, names: tuple[str, ...] = EXPORT_FILES) -> dict[str, Any]:
    """``{name: {bytes, sha256}}`` of the files ``names`` in ``folder`` (an export's record)."""
    return {n: {"bytes": (folder / n).stat().st_size, "sha256": sha256(folder / n)} for n in names}


@dataclass
class FinishedRun:
    """A run directory (or a run's export) that is finished and intact.

    ``run_id`` is the directory's name for a run, a derived run's own ``run_id`` and
    ``"<run id>-hf"`` for an export (its results are its own, beside the run's). ``step`` is the loaded weights' step.
    """

    path: Path
    cfg: RunConfig
    summary: dict[str, Any]
    run_id: str
    step: int
    checkpoint: Checkpoint | None = None  # None for an export, or when weights were not asked
    export: dict[str, Any] | None = None  # an export's scalelab.json
    skipped: list[str] = field(default_factory=list)  # damaged checkpoints passed over
    initial: bool = False  # opened for its initial weights (its config alone was read)
    derived: dict[str, Any] | None = None  # a derived run's own config.json (see the module)

    @property
    def run_dir(self) -> Path:
        return self.path

    @property
    def is_export(self) -> bool:
        return self.export is not None

    def load_model(
        self,
        device: torch.device | str | None = None,
        *,
        initial: bool | None = None,
        fork_rng: bool = True,
    ) -> nn.Module:
        """A fresh model with the run's weights, on ``device`` (default CPU), in eval mode.

        ``initial``: the weights before training, drawn from the run's seed as training draws
        them. The caller's torch RNG is left as it was, unless ``fork_rng=False``: then the
        model is built in the caller's RNG stream (a trainer loading a teacher keeps the
        draws it always made)."""
        import contextlib

        import torch

        from scalelab.models import build_model

        dev = torch.device(device or "cpu")
        guard = torch.random.fork_rng(devices=[]) if fork_rng else contextlib.nullcontext()
        if self.initial if initial is None else initial:
            with guard:
                torch.manual_seed(self.cfg.train.seed)
                return build_model(self.cfg.model).to(dev).eval()
        with guard:
            model = build_model(self.cfg.model).to(dev)
        if self.export is not None:
            model.load_state_dict(_export_state(self.path, self.cfg, model), strict=False)
        elif self.checkpoint is not None:
            self.checkpoint.restore(model)
        else:
            raise RunError(f"{self.path} was opened for its initial weights only")
        return model.eval()

    @functools.cached_property
    def model(self) -> nn.Module:
        """The run's model on the CPU, in eval mode (loaded once)."""
        return self.load_model()

    def tokenizer(self) -> Tokenizer:
        """The tokenizer the run was trained with (from the token cache)."""
        from scalelab.data import load_tokens

        return load_tokens(self.cfg.data, self.cfg.model.vocab_size).tokenizer


def _what(what: str, path: Path) -> str:
    return f"{what} {path}" if what else str(path)


def _read_json(path: Path, what: str) -> Any:
    try:
        return rundir.read_json(path)
    except ScalelabError as e:
        raise RunError(f"{what}: {e}; the run is damaged: train it again") from None


def read_config(path: str | Path, *, what: str = "") -> RunConfig:
    """The config of a run directory or of a run's export (no weights read)."""
    p = Path(path)
    name = _what(what, p)
    if (p / rundir.EXPORT_META).is_file():
        return run_config_from_dict(export_meta(p)["config"])
    if not p.is_dir():
        raise RunError(f"{name} is not a run directory (no such folder): give a run's path")
    if not (p / rundir.CONFIG).is_file():
        raise RunError(
            f"{name} is not a run directory (no {rundir.CONFIG}); give the directory of a "
            "trained run, e.g. runs/<run_id>"
        )
    raw = _derived_or_config(p, name)
    return run_config_from_dict(raw["run_config"] if _is_derived(raw) else raw)


def _is_derived(raw: dict[str, Any]) -> bool:
    return isinstance(raw.get("run_config"), dict) and isinstance(raw.get("run_id"), str)


def _derived_or_config(p: Path, name: str) -> dict[str, Any]:
    raw = _read_json(p / rundir.CONFIG, name)
    if not isinstance(raw, dict):
        raise RunError(f"{name}/{rundir.CONFIG} is not a config (a JSON object): train it again")
    return raw


def open_run(
    path: str | Path,
    *,
    what: str = "",
    initial: bool = False,
    verify: bool = True,
    strict: bool = False,
    note: bool = True,
) -> FinishedRun:
    """Open the finished run (or run export) at ``path``; see the module docstring.

    ``initial``: the config alone is read (the run need not have finished), and the model is
    the one its seed draws before training (the "no pretraining" point of a d90 curve). ``strict``: a damaged newest checkpoint is
    an error rather than a skip, which is otherwise a warning (``note=False``: the caller
    words it). ``what`` names the path in messages (``"--reference"``)."""
    p = Path(path)
    name = _what(what, p)
    if (p / rundir.EXPORT_META).is_file():
        return _open_export(p, name, verify=verify, initial=initial)
    cfg = read_config(p, what=what)
    raw = _derived_or_config(p, name)
    derived = raw if _is_derived(raw) else None
    run_id = str(raw["run_id"]) if derived is not None else p.name
    summary_path = p / rundir.SUMMARY
    summary = _read_json(summary_path, name) if summary_path.is_file() else {}
    if not isinstance(summary, dict):
        raise RunError(f"{name}/{rundir.SUMMARY} is not a JSON object: the run is damaged")
    if initial:
        return FinishedRun(p, cfg, summary, run_id, 0, initial=True, derived=derived)
    from scalelab.train.checkpoint import latest_checkpoint

    skipped: list[str] = []
    ckpt = latest_checkpoint(
        p / rundir.CHECKPOINTS, lambda c, why: skipped.append(f"{c.name} ({why})")
    )
    if ckpt is None:
        damaged = f" (damaged: {', '.join(skipped)})" if skipped else ""
        raise RunError(f"{name} has no intact checkpoint{damaged}: train (or resume) it first")
    if skipped and strict:
        raise RunError(
            f"{name}: the newest checkpoint is damaged: {'; '.join(skipped)}; the newest intact "
            f"one is step {ckpt.step}"
        )
    if skipped and note:
        warnings.warn(
            f"{name}: skipped the damaged checkpoint(s) {'; '.join(skipped)}; using step "
            f"{ckpt.step}, the newest intact one",
            stacklevel=2,
        )
    if summary.get("status") not in FINISHED:
        got = f"status {summary.get('status')!r}" if summary else f"no {rundir.SUMMARY}"
        raise RunError(f"{name} has not finished training ({got}): let it finish first")
    return FinishedRun(p, cfg, summary, run_id, ckpt.step, ckpt, skipped=skipped, derived=derived)


def export_meta(path: str | Path) -> dict[str, Any]:
    """An export's ``scalelab.json``: the run's config, its id, the checkpoint's step and the
    checksums of the export's files."""
    p = Path(path)
    meta = _read_json(p / rundir.EXPORT_META, str(p))
    if not (
        isinstance(meta, dict)
        and isinstance(meta.get("config"), dict)
        and isinstance(meta.get("step"), int)
    ):
        raise RunError(
            f"{p / rundir.EXPORT_META} is not an export's record (config, run_id, step): "
            "export the run again"
        )
    return meta


def _open_export(p: Path, name: str, *, verify: bool, initial: bool) -> FinishedRun:
    meta = export_meta(p)
    cfg = run_config_from_dict(meta["config"])
    run_id = f"{meta.get('run_id', p.name)}-hf"
    if not initial:
        if not (p / EXPORT_WEIGHTS).is_file():
            raise RunError(f"{name} has no {EXPORT_WEIGHTS}: export the run again")
        if verify:
            _verify_export(p, name, meta)
    step = 0 if initial else int(meta["step"])
    return FinishedRun(p, cfg, {}, run_id, step, export=meta, initial=initial)


def _verify_export(p: Path, name: str, meta: dict[str, Any]) -> None:
    files = meta.get("files")
    if not isinstance(files, dict) or EXPORT_WEIGHTS not in files:
        raise RunError(
            f"{name} has no checksums in {rundir.EXPORT_META} (an export made by hand or by an "
            "older scalelab): export the run again, or pass --no-verify to read it unchecked"
        )
    for fname, entry in files.items():
        f = p / str(fname)
        if not (isinstance(entry, dict) and f.is_file()):
            raise RunError(f"{name}: {fname} is missing: export the run again")
        if f.stat().st_size != entry.get("bytes") or sha256(f) != entry.get("sha256"):
            raise RunError(
                f"{name}: {fname} does not match its checksum (damaged or edited): export the "
                "run again, or pass --no-verify to read it unchecked"
            )


def _export_state(p: Path, cfg: RunConfig, model: nn.Module) -> dict[str, Any]:
    """The export's weights under our names, checked against the model's shapes."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from scalelab.train.hf_map import from_hf_state_dict

    try:
        hf = load_file(str(p / EXPORT_WEIGHTS))
    except (SafetensorError, OSError, ValueError) as e:
        raise RunError(f"{p / EXPORT_WEIGHTS} cannot be read ({e}): export the run again") from None
    try:
        state = from_hf_state_dict(hf, cfg.model)
    except (KeyError, StopIteration, RuntimeError) as e:
        raise RunError(
            f"{p / EXPORT_WEIGHTS} lacks a tensor the run's config needs ({e}): export the run "
            "again"
        ) from None
    ours = model.state_dict()
    state = {k: v for k, v in state.items() if k in ours}  # the zero biases of bias = false
    missing = [k for k in ours if k not in state]
    if missing:  # pragma: no cover - a mapping bug, not a user error
        raise RuntimeError(f"HF import mapping: missing {missing}")
    wrong = [k for k, v in state.items() if tuple(v.shape) != tuple(ours[k].shape)]
    if wrong:
        raise RunError(
            f"{p / EXPORT_WEIGHTS}: {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, the "
            f"run's config needs {tuple(ours[wrong[0]].shape)}: export the run again"
        )
    return state


__all__ = [
    "FINISHED",
    "FinishedRun",
    "RunError",
    "export_meta",
    "file_checksums",
    "open_run",
    "read_config",
]
