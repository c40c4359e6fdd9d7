"""The run config: :class:`RunConfig`, the three core sections and the plug-ins' sections,
with the checks across sections and the dict a run directory's ``config.json`` holds.

The sections of the registered plug-ins (:mod:`scalelab.plugin`) are each owned by their
technique: ``[distill]`` (``scalelab.techniques.distill_plugin``), ``data.canaries``
(``scalelab.memorization.canaries_plugin``), ... A config naming a section that no
registered plug-in owns is an error naming what to register.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scalelab.config.fields import section_from_dict
from scalelab.config.run_id import run_id as hash_run_id
from scalelab.config.sections import DataConfig, ModelConfig, TrainConfig
from scalelab.errors import ConfigError, did_you_mean
from scalelab.plugin import plugins, section_plugins


@dataclass(frozen=True)
class RunConfig:
    """A run's resolved config. Every check runs when one is made (each section checks its
    own fields, then :meth:`validate` the rules across sections), so a study's grid is
    validated whole by ``sweep --dry-run`` before anything trains.

    ``sections`` holds the plug-ins' sections (:mod:`scalelab.plugin`): section key
    (``"distill"``, ``"data.canaries"``) -> its dataclass (a mapping is checked by the
    owning plug-in's dataclass). Only sections that differ from the plug-in's default are
    kept, so a config that sets ``[distill]`` to its defaults equals one that does not.
    :meth:`section` reads one (the default when unset); ``cfg.distill`` does the same.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sections: Any = ()  # normalised to a tuple of (key, value) pairs, sorted by key

    def __post_init__(self) -> None:
        raw = self.sections
        items = raw.items() if isinstance(raw, Mapping) else raw
        owners = section_plugins()
        kept: dict[str, Any] = {}
        for key, value in items:
            if key not in owners:
                raise ConfigError(_unknown_section(key, owners))
            plugin = owners[key]
            assert plugin.config is not None
            if value is None:  # unset: the plug-in's default
                value = plugin.default()
            elif isinstance(value, Mapping):
                value = section_from_dict(plugin.config, value, key)
            elif value is not None and not isinstance(value, plugin.config):
                raise ConfigError(
                    f"{key} must be a table of {plugin.config.__name__} fields, got {value!r}"
                )
            if value != plugin.default():
                kept[key] = value
        object.__setattr__(self, "sections", tuple(sorted(kept.items(), key=lambda kv: kv[0])))
        self.validate()

    def __getattr__(self, name: str) -> Any:
        """``cfg.distill``: a plug-in's top-level section (its default when unset)."""
        if name.startswith("_") or name in ("model", "data", "train", "sections"):
            raise AttributeError(name)
        if name not in section_plugins():
            raise AttributeError(f"RunConfig has no section {name!r}")
        return self.section(name)

    def section(self, key: str) -> Any:
        """A plug-in's section (``"distill"``, ``"data.canaries"``); its default if unset."""
        for k, v in self.sections:
            if k == key:
                return v
        owners = section_plugins()
        if key not in owners:
            raise ConfigError(_unknown_section(key, owners))
        return owners[key].default()

    def with_section(self, key: str, value: Any) -> RunConfig:
        """This config with a plug-in's section replaced (``None``: its default)."""
        return dataclasses.replace(self, sections={**dict(self.sections), key: value})

    def validate(self) -> None:
        """Checks that involve more than one section of the config (and the active
        plug-ins' own, :meth:`scalelab.plugin.Plugin.check`)."""
        if self.train.objective == "mlm" and self.model.causal:
            raise ConfigError(
                "train.objective = 'mlm' needs a bidirectional model: set model.causal = false"
            )
        if self.train.objective == "clm" and not self.model.causal:
            raise ConfigError(
                "model.causal = false lets every position see the token it must predict: "
                "set model.causal = true for train.objective = 'clm' (or train.objective = 'mlm')"
            )
        for plugin in plugins():
            if plugin.section is not None and plugin.active(self):
                plugin.check(self)

    def to_dict(self) -> dict[str, Any]:
        """The config as nested dicts (``config.json``): the core sections, then every
        registered plug-in's section, at its key, whether set or not (a table of defaults,
        or None), so a run directory's config names every section of its time."""
        d: dict[str, Any] = {
            "model": dataclasses.asdict(self.model),
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
        }
        for key in section_plugins():
            value = self.section(key)
            head, _, sub = key.partition(".")
            where = d.setdefault(head, {}) if sub else d
            where[sub or head] = dataclasses.asdict(value) if value is not None else None
        d["train"]["save_at"] = list(self.train.save_at)  # as JSON reads it back
        return d

    def run_id(self) -> str:
        """Hash of the resolved config: the name of the run's directory (what it leaves out,
        and why: :func:`scalelab.config.run_id.run_id`)."""
        return hash_run_id(self)


def _unknown_section(key: str, owners: Mapping[str, Any]) -> str:
    known = [*SECTIONS, *owners]
    return (
        f"unknown section {key!r}{did_you_mean(key, known)}: sections are "
        f"{', '.join(known)}; a technique's section is known once its plug-in is registered "
        "(import scalelab registers the built-in ones; import the module that calls "
        "scalelab.plugin.register_plugin for another)"
    )


# the core sections; the plug-ins add theirs (config_sections)
SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
}


def config_sections() -> dict[str, type]:
    """Every top-level section a run config may have: the core's and the registered
    plug-ins' (``[distill]``), name -> dataclass."""
    out = dict(SECTIONS)
    for key, plugin in section_plugins().items():
        if "." not in key and plugin.config is not None:
            out[key] = plugin.config
    return out


def section_keys(section: str) -> list[str]:
    """The keys a section may hold: its dataclass's fields and the plug-ins' sub-keys
    (``data.canaries``)."""
    cls = config_sections()[section]
    subs = [k.split(".", 1)[1] for k in section_plugins() if k.startswith(section + ".")]
    return [*(f.name for f in dataclasses.fields(cls)), *subs]
