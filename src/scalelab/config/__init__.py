"""Typed, frozen configs: defaults <- TOML file <- ``--set section.key=value`` overrides.

A run is fully described by a :class:`RunConfig` with three sections, whose key
names are a contract shared by the Python API, the TOML files and the CLI:

* ``[model]``  :class:`ModelConfig`  (``arch``, ``n_layer``, ``d_model``, ``n_head``, ...)
* ``[data]``   :class:`DataConfig`   (``corpus`` spec string, ``tokenizer``)
* ``[train]``  :class:`TrainConfig`  (``batch_size``, ``tokens``, ``lr``, ``seed``, ...)

and the sections of the registered plug-ins (:mod:`scalelab.plugin`), each owned by its
technique: ``[distill]`` (``scalelab.techniques.distill_plugin``), ``data.canaries``
(``scalelab.memorization.canaries_plugin``), ... A config naming a section that no
registered plug-in owns is an error naming what to register.

Unknown keys are rejected with the nearest valid name suggested; values are
type-checked (an integral float such as ``1e6`` is accepted for an int field,
because TOML writes large token counts that way).

One module per job, read in this order:

* :mod:`~scalelab.config.fields`: a dataclass from a mapping, each value checked by its type;
* :mod:`~scalelab.config.sections`: the core sections and the tables of their choices;
* :mod:`~scalelab.config.run`: :class:`RunConfig`, the plug-ins' sections, the cross checks;
* :mod:`~scalelab.config.run_id`: the run id (what the hash leaves out, so old runs keep
  their names);
* :mod:`~scalelab.config.parse`: TOML files and ``--set`` overrides;
* :mod:`~scalelab.config.budget`: the budget rule (tokens and steps a run trains).

Every name is importable from ``scalelab.config`` as before the split.
"""

from __future__ import annotations

from scalelab.architectures import GATED_MLPS, MLPS, NORMS, POSITIONS  # the variant choices
from scalelab.config.budget import (
    DEFAULT_TOKENS_PER_PARAM,
    MAX_EPOCHS,
    budget_tokens,
    check_budget,
    planned_steps,
)
from scalelab.config.fields import check_choice, section_from_dict
from scalelab.config.parse import (
    apply_overrides,
    example_config,
    load_run_config,
    parse_override,
    read_toml,
    run_config_from_dict,
)
from scalelab.config.run import SECTIONS, RunConfig, config_sections, section_keys
from scalelab.config.run_id import BRANCH_DEFAULTS
from scalelab.config.sections import (
    COOLDOWNS,
    OBJECTIVES,
    PRECISIONS,
    SCHEDULES,
    TOKENIZERS,
    DataConfig,
    ModelConfig,
    TrainConfig,
)

# the name other packages' code imported before the split
_check_choice = check_choice

__all__ = [
    "BRANCH_DEFAULTS",
    "COOLDOWNS",
    "DEFAULT_TOKENS_PER_PARAM",
    "GATED_MLPS",
    "MAX_EPOCHS",
    "MLPS",
    "NORMS",
    "OBJECTIVES",
    "POSITIONS",
    "PRECISIONS",
    "SCHEDULES",
    "SECTIONS",
    "TOKENIZERS",
    "DataConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "apply_overrides",
    "budget_tokens",
    "check_budget",
    "check_choice",
    "config_sections",
    "example_config",
    "load_run_config",
    "parse_override",
    "planned_steps",
    "read_toml",
    "run_config_from_dict",
    "section_from_dict",
    "section_keys",
]
