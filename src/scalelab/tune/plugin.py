"""Hyperparameter search as a plug-in: the trial points it writes, its report section and
commands. A search trains its own trials (:mod:`scalelab.tune.search`); nothing here hooks
a run. Torch-free."""

from __future__ import annotations

from scalelab.plugin import Plugin


class TunePlugin(Plugin):
    """``scalelab tune``: searches whose trials are the store's ``trial`` points."""

    name = "tune"
    point_kinds = ("trial",)
    report = "scalelab.reporting.tuning:tuning_section"
    cli = "scalelab.cli.tuning"
