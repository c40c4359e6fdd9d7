"""Reading a run config: defaults <- TOML file <- ``--set section.key=value`` overrides.

The key names are a contract shared by the Python API, the TOML files and the CLI; each
section is built by :func:`scalelab.config.fields.section_from_dict` and the whole by
:class:`~scalelab.config.run.RunConfig`, so every check runs before anything starts.
"""

from __future__ import annotations

import tomllib
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from scalelab.config.fields import section_from_dict
from scalelab.config.run import SECTIONS, RunConfig, config_sections
from scalelab.config.sections import ModelConfig
from scalelab.errors import ConfigError, did_you_mean, read_user_text
from scalelab.plugin import section_plugins


def run_config_from_dict(values: Mapping[str, Any]) -> RunConfig:
    sections = config_sections()
    owners = section_plugins()
    for key in values:
        if key not in sections:
            raise ConfigError(
                f"unknown section [{key}]{did_you_mean(key, sections)}; "
                f"sections are {', '.join('[' + s + ']' for s in sections)} (a technique's "
                "section is known once its plug-in is registered: see scalelab.plugin)"
            )
    parts: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        table = dict(values.get(name, {}))
        for key in owners:  # a plug-in's sub-key of a core section (data.canaries)
            head, _, sub = key.partition(".")
            if head == name and sub in table:
                extra[key] = table.pop(sub)
        parts[name] = section_from_dict(cls, table, name)
    for key in values:
        if key not in SECTIONS:
            extra[key] = values[key]
    return RunConfig(**parts, sections=extra)


def example_config(arch: str, **fields: Any) -> ModelConfig:
    """A valid ``ModelConfig`` of ``arch``: ModelConfig's defaults, the architecture's own
    (``Arch.defaults``), then ``fields`` (a shape, variant switches), checked as TOML is."""
    return section_from_dict(ModelConfig, {"arch": arch, **fields}, "model")


def parse_override(text: str) -> tuple[str, str, Any]:
    """``'train.lr=1e-3'`` -> ``('train', 'lr', 0.001)``; the value is read as TOML, else a string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    path, raw = text.split("=", 1)
    parts = path.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"override {text!r} must name section.key, e.g. train.lr=1e-3")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    if not isinstance(value, str) and _is_text_field(parts[0], parts[1]):
        # a text field keeps what was typed: a run id such as 760597491209 (or 123e45678901)
        # is hex that TOML would read as a number (train.branch_of=RUN_ID)
        value = raw.strip()
    return parts[0], parts[1], value


def _is_text_field(section: str, key: str) -> bool:
    """Whether ``section.key`` of a core section is a ``str`` (or ``str | None``) field."""
    cls = SECTIONS.get(section)
    if cls is None:
        return False
    hint = typing.get_type_hints(cls).get(key)
    return hint is str or (hint is not None and set(typing.get_args(hint)) == {str, type(None)})


def apply_overrides(values: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    for k, v in values.items():
        if not isinstance(v, Mapping):
            raise ConfigError(
                f"{k} = {v!r}: a config holds sections ([model], [data], [train]) of "
                "key = value lines, not top-level values or arrays of tables"
            )
    merged: dict[str, Any] = {k: dict(v) for k, v in values.items()}
    for text in overrides:
        section, key, value = parse_override(text)
        merged.setdefault(section, {})[key] = value
    return merged


def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {str(p)!r} is a directory: give a TOML file")
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        return tomllib.loads(read_user_text(p, "config file"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML ({e})") from None


def load_run_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> RunConfig:
    """Defaults <- TOML file (if given) <- overrides, validated."""
    values = read_toml(path) if path is not None else {}
    return run_config_from_dict(apply_overrides(values, overrides))
