"""Applications: experiments built on the library, each a driver (studies it sweeps or
trains) plus the analysis that reads its store. The top layer below the CLI: an app may
use anything (sweeps, techniques, the report); nothing in the library imports an app.

* :mod:`~scalelab.apps.demo`: ``make demo``: a size ladder, a Chinchilla fit, a held-out
  model, the report (``scalelab demo``; ``scalelab.demo`` in Python).
* :mod:`~scalelab.apps.keep_fraction`: data selection's keep-fraction experiment
  (``python -m scalelab.apps.keep_fraction --out runs/keep-fraction``).
* :mod:`~scalelab.apps.overfit`: ``studies/overfit.toml``'s analysis printed
  (``python -m scalelab.apps.overfit runs/overfit.db``).
* :mod:`~scalelab.apps.capacity_calibration`: memorization's capacity calibration
  (``python -m scalelab.apps.capacity_calibration studies/capacity-calibration.toml ...``).

Each app is a module (its name is not re-exported here, so that ``scalelab.apps.demo``
is always the module; the function is ``scalelab.apps.demo.demo``, or ``scalelab.demo``).
"""

from __future__ import annotations

__all__: list[str] = []
