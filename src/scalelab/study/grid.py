"""Grid expansion: a :class:`Study` -> the list of runs it asks for.

Expansion is a pure function of the study (and of the sizer that turns target
parameter counts into shapes): no training, no files. Each run is a validated
``RunConfig`` named by its ``run_id()`` plus the study-level *axes* it came from
(architecture, size label, target count, data budget, seed, grid values), which
the store keeps beside the point so laws and reports can group by them.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scalelab.accounting import size_for
from scalelab.config import ModelConfig, RunConfig, run_config_from_dict, section_from_dict
from scalelab.errors import ConfigError, ScalelabError
from scalelab.fmt import si
from scalelab.study.studyfile import Study, as_study

# (target parameter count, the [model] keys the study sets, which count, options) -> a shape
Sizer = Callable[[float, Mapping[str, Any], str, Mapping[str, Any]], ModelConfig]


@dataclass(frozen=True)
class PlannedRun:
    """One run of a study: its resolved config and the axis values that produced it."""

    config: RunConfig
    axes: Mapping[str, Any]

    @property
    def run_id(self) -> str:
        return self.config.run_id()


def accounting_sizer(
    target: float, model: Mapping[str, Any], kind: str, options: Mapping[str, Any]
) -> ModelConfig:
    """The default sizer: ``scalelab.accounting.size_for`` (the parameter formulas live
    there). The study's own [model] keys are passed as fixed fields: ``arch``, the
    vocabulary and context, variants such as ``mlp``, and any shape field the study pins
    (a fixed ``n_layer`` leaves size_for only the width to choose)."""
    return size_for(target, n=kind, **{**dict(model), **dict(options)})


def _model_key_values(cfg: ModelConfig) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def _size_label(target: float) -> str:
    """A ladder rung's label: its target parameter count, ``1.5M``, ``2B``."""
    return si(target, billion="B")


def expand(study: Study | str | Any, *, sizer: Sizer | None = None) -> list[PlannedRun]:
    """All runs of a study, in a stable order: arch, grid values, size, budget, seed.

    Runs that resolve to the same config (hence the same ``run_id``) appear once.
    """
    study = as_study(study)
    sizer = sizer or accounting_sizer
    base = {section: dict(values) for section, values in study.base.items()}
    archs = study.archs or (str(base["model"].get("arch", ModelConfig.arch)),)
    grid_keys = [k for k, _ in study.grid]
    grid_values = [v for _, v in study.grid]
    combos = list(itertools.product(*grid_values)) if grid_keys else [()]
    budgets = study.budgets or (None,)
    seeds = study.seeds or (None,)

    runs: list[PlannedRun] = []
    seen: set[str] = set()
    for arch in archs:
        for combo in combos:
            point = dict(zip(grid_keys, combo, strict=True))
            values = {section: dict(v) for section, v in base.items()}
            # an architecture's own defaults (glu: a gated mlp) fill in what the study leaves
            # unset when the ModelConfig is made, so one study lists glu beside the transformer
            values["model"]["arch"] = arch
            for path, value in point.items():
                section, key = path.split(".")
                values[section][key] = value
            for size_name, target, model_values in _ladder(study, values["model"], sizer, point):
                for budget in budgets:
                    for seed in seeds:
                        run_values = {section: dict(v) for section, v in values.items()}
                        run_values["model"] = dict(model_values)
                        axes: dict[str, Any] = {"arch": arch, "size": size_name}
                        if target is not None:
                            axes["target_params"] = target
                            axes["params_kind"] = study.params_kind
                        if budget is not None:
                            for (section, key), v in budget.assignments().items():
                                run_values[section].pop(key, None)
                                if v is not None:
                                    run_values[section][key] = v
                            axes["budget"] = budget.label
                        if seed is not None:
                            run_values["train"]["seed"] = seed
                        axes.update(point)
                        cfg = _build(run_values, axes)
                        axes["seed"] = cfg.train.seed
                        if cfg.run_id() in seen:
                            continue
                        seen.add(cfg.run_id())
                        runs.append(PlannedRun(cfg, axes))
    if study.branches:  # one WSD run per size, the shorter budgets its branches
        from scalelab.study.branching import branch_configs

        labels = [" ".join(str(r.axes.get(k)) for k in ("size", "budget")) for r in runs]
        configs = branch_configs(study, [r.config for r in runs], labels)
        runs = [PlannedRun(c, r.axes) for c, r in zip(configs, runs, strict=True)]
    return runs


def _ladder(
    study: Study, model_values: dict[str, Any], sizer: Sizer, point: Mapping[str, Any]
) -> list[tuple[str, float | None, dict[str, Any]]]:
    """(label, target count or None, model keys) for each size of the ladder."""
    if study.sizes:
        return [(s.name, None, {**model_values, **s.model}) for s in study.sizes]
    if not study.params:
        return [("base", None, model_values)]
    try:  # check the keys here, so a typo is reported as such rather than by the sizer
        section_from_dict(ModelConfig, model_values, "model")
    except ConfigError as e:
        raise ConfigError(f"study {study.name!r}, {_where(point)}[model]: {e}") from None
    out = []
    for target in study.params:
        try:
            shaped = sizer(target, dict(model_values), study.params_kind, study.size_for)
        except ScalelabError as e:
            raise ConfigError(
                f"study.params: no shape for {target:g} {study.params_kind} parameters "
                f"({e}); adjust study.params or study.size_for"
            ) from None
        out.append((_size_label(target), target, _model_key_values(shaped)))
    return out


def _where(point: Mapping[str, Any]) -> str:
    return "".join(f"{k}={v!r}, " for k, v in point.items())


def _build(values: dict[str, dict[str, Any]], axes: Mapping[str, Any]) -> RunConfig:
    try:
        return run_config_from_dict(values)
    except ConfigError as e:
        where = ", ".join(f"{k}={v}" for k, v in axes.items())
        raise ConfigError(f"run ({where}): {e}") from None


__all__ = ["PlannedRun", "Sizer", "accounting_sizer", "expand"]
