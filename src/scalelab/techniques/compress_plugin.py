"""Compression as a plug-in: the points a compressed run writes, its report and commands.

A compressed model is a derived run written by ``scalelab compress``
(:mod:`scalelab.techniques.compress`), not a hook of the trainer: the plug-in tells the
results store how to read its summary's ``compression`` block. Torch-free.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from scalelab.plugin import Plugin


class CompressPlugin(Plugin):
    """Pruning, quantization, low rank and sharing of a finished run."""

    name = "compress"
    point_kinds = ("compressed",)
    plane_kinds = ("compressed",)
    report = "scalelab.reporting.sections:small_vs_large"
    cli = "scalelab.cli.techniques"

    def point_fields(
        self, summary: Mapping[str, Any], config: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        comp = summary.get("compression")
        if not isinstance(comp, Mapping):
            return None
        return {
            "kind": "compressed",
            "technique": comp.get("method"),
            "parent_run_id": comp.get("parent_run_id"),
            "extra_json": json.dumps(dict(comp), sort_keys=True, default=str),
        }
