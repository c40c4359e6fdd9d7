"""The run id: the 12-hex hash of a resolved run config, the name of its run directory.

The rule is what keeps runs stored long ago findable: fields added later are left out of the
hash at their defaults, so every run keeps the id it had before the field existed. Changing
anything here renames runs (``tests/test_plugin.py`` pins ids).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalelab.plugin import section_plugins

if TYPE_CHECKING:
    from scalelab.config.run import RunConfig

BRANCH_DEFAULTS: dict[str, Any] = {
    "warmup_tokens": None,
    "cooldown": "linear",
    "save_at": [],
    "branch_of": None,
    "branch_at": None,
}

# muP fields added after runs with muP were stored: left out of the run id at these values,
# so those runs keep their names
_MUP_DEFAULTS: dict[str, Any] = {"base_n_head": None}


def _file_sha256(path: str) -> str | None:
    """SHA-256 of a selection file's content, its timing (``seconds``) left out so that
    making the same selection again names the same runs."""
    try:
        raw = Path(path).expanduser().read_bytes()
    except OSError:
        return None  # a missing file fails when the run loads it, with the fix named
    try:
        value = json.loads(raw)
        if isinstance(value, dict):
            value.pop("seconds", None)
            raw = json.dumps(value, sort_keys=True).encode()
    except ValueError:
        pass
    return hashlib.sha256(raw).hexdigest()


def run_id(cfg: RunConfig) -> str:
    """Hash of the resolved config: the name of the run's directory.

    ``train.device`` is left out: where a run executes does not change what it is.
    ``data.fraction`` at its default 1.0 is left out too, so runs stored before the
    field existed keep their names (and a sweep still finds them finished); so is an
    unset ``data.select``, and a set one counts by the SHA-256 of the selection file's
    content, not by its path; so are ``model.parametrization = "sp"`` and its
    muP-only fields, and muP fields added later at their defaults (``_MUP_DEFAULTS``); so
    are the WSD branch fields at their defaults (``train.warmup_tokens``,
    ``cooldown``, ``save_at``, ``branch_of``, ``branch_at``). Each plug-in's section counts as its
    :meth:`~scalelab.plugin.Plugin.run_id_part` says: left out when the technique does
    not change the run (no canaries; a ``[distill]`` without a teacher, or alpha = 0
    without a teacher initialisation: the scratch twin of a distilled run is the plain
    run), so runs stored before a technique existed keep their names.
    """
    d = cfg.to_dict()
    d["train"].pop("device", None)
    if d["data"].get("fraction") == 1.0:
        d["data"].pop("fraction")
    if d["model"].get("parametrization") == "sp":  # likewise for runs before muP
        d["model"].pop("parametrization")
        d["model"].pop("base_width", None)
        d["model"].pop("mup_zero_readout", None)
        for name in _MUP_DEFAULTS:
            d["model"].pop(name, None)
    for name, default in _MUP_DEFAULTS.items():  # muP fields added later, at their defaults
        if d["model"].get(name, default) == default:
            d["model"].pop(name, None)
    if d["data"].get("select") is None:
        d["data"].pop("select", None)
    elif (digest := _file_sha256(d["data"]["select"])) is not None:
        # the selection's content names the run, wherever the file lies
        d["data"]["select"] = f"sha256:{digest}"
    for key, plugin in section_plugins().items():
        head, _, sub = key.partition(".")
        where, name = (d[head], sub) if sub else (d, head)
        part = plugin.run_id_part(cfg)
        if part is None:
            where.pop(name, None)
        else:
            where[name] = part
    # the WSD branch fields at their defaults: runs stored before them keep their names
    for key, default in BRANCH_DEFAULTS.items():
        if d["train"].get(key) == default:
            d["train"].pop(key)
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
