"""The names the intrinsic-dimension search's options take, torch-free: one table the search,
the ``[study] intrinsic`` keys and ``scalelab intrinsic --help`` read."""

from __future__ import annotations

# the random projections P of theta = theta_0 + P z (scalelab.intrinsic.projections)
PROJECTIONS = ("dense", "sparse", "fastfood")
