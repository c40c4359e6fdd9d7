"""Typed fields from TOML values: one config dataclass built from a mapping, each value
checked against its field's type hint (an integral float such as ``1e6`` is accepted for an
int field, because TOML writes large token counts that way), unknown keys rejected with the
nearest valid name suggested.

Every section of a run config goes through :func:`section_from_dict`: the core's
(``[model]``, ``[data]``, ``[train]``) and the plug-ins' (``[distill]``, ...).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from scalelab.errors import ConfigError, did_you_mean

T = TypeVar("T")


def check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    """``value`` is one of ``choices``, else a ConfigError naming the field and the choices."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(
            f"{name} = {value!r} is not one of {', '.join(choices)}{did_you_mean(value, choices)}"
        )


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a type hint, converting where TOML is looser than Python."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(name, value, inner[0])
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            # one rule for every section: a seed is a whole number >= 0 (numpy refuses less)
            if name.rsplit(".", 1)[-1].endswith("seed") and value < 0:
                raise ConfigError(f"{name} must be a whole number >= 0 (a seed), got {value}")
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # one rule for every section: no setting means anything at NaN or infinity
            if not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif dataclasses.is_dataclass(hint):  # a nested table, e.g. data.canaries
        if isinstance(value, hint):
            return value
        if isinstance(value, Mapping):
            return section_from_dict(hint, value, name)  # type: ignore[type-var]
    elif typing.get_origin(hint) is tuple:  # tuple[int, ...]: a TOML list
        if isinstance(value, (list, tuple)):
            item = typing.get_args(hint)[0]
            return tuple(_coerce(f"{name}[{i}]", v, item) for i, v in enumerate(value))
    else:  # pragma: no cover - only the hints above are used in configs
        return value
    raise ConfigError(f"{name} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def section_from_dict(cls: type[T], values: Mapping[str, Any], section: str) -> T:
    """Build a config dataclass from a mapping, rejecting unknown keys by name."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown key {section}.{key}{did_you_mean(key, known)}")
        kwargs[key] = _coerce(f"{section}.{key}", value, hints[key])
    return cls(**kwargs)
