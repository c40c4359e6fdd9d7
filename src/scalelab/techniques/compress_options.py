"""The compression methods and their options, as names: the one table the methods check
against and the command line lists (``scalelab compress --help``). Torch-free, so the
command line reads it without loading the methods (:mod:`scalelab.techniques.compress`).

The first entry of each option is its default.
"""

from __future__ import annotations

METHODS = ("prune", "quant", "lowrank", "share")
STRUCTURES = ("unstructured", "heads", "neurons")  # prune: what one pruned unit is
SCOPES = ("layer", "global")  # prune: where the smallest weights are ranked
BITS = (2, 3, 4, 5, 6, 8, 16)  # quant: bits per weight
ALGORITHMS = ("rtn", "gptq")  # quant: round to nearest, or GPTQ (Frantar et al. 2022)
GROUPS = (0, 32, 64, 128)  # quant: weights per scale (0: one scale per output channel)
