"""The names the fits' options take, one table each: read by the fits that check them and by
``scalelab fit --help``. Numpy-free, so the command line reads them without the fitting code.
"""

from __future__ import annotations

RESAMPLING = ("row", "size")  # a bootstrap resamples points, or whole model sizes
REWARDS = ("gold", "proxy")  # a Gao law fits the gold (grader's) or the proxy reward
VARIABLES = ("N", "D", "C")  # the variable x of a one-variable form (power, bnsl, slope)
