"""Data selection as a plug-in: the point a run trained on a selection writes, its report
section and its command.

``data.select`` (a selection file) is read by the core's data layer
(:mod:`scalelab.data.subset_file`); the selections are made by :mod:`scalelab.select`. This
module tells the results store how such a run is a technique's point. Torch- and
numpy-free (``import scalelab`` registers it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from scalelab.plugin import Plugin


class SelectPlugin(Plugin):
    """Runs trained on a data selection (``data.select``)."""

    name = "select"
    point_kinds = ("select",)
    report = "scalelab.reporting.data_section:data_section"
    cli = "scalelab.cli.selection"

    def point_fields(
        self, summary: Mapping[str, Any], config: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        data = config.get("data")
        if not isinstance(data, Mapping) or not data.get("select"):
            return None
        sel = summary.get("selection") if isinstance(summary.get("selection"), Mapping) else {}
        order = sel.get("order")
        return {
            "kind": "select",
            "technique": f"{sel['method']}{'-' + order if order else ''}" if sel else None,
            "parent_run_id": sel.get("reference"),
            "extra_json": json.dumps({"selection": dict(sel)}, sort_keys=True) if sel else None,
        }
