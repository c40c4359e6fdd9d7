"""Functional forms of scaling laws: the table of forms (:data:`FORM_TABLE`), and
:func:`make_form`, which builds one by name.

Each form is a :class:`~scalelab.laws.forms.base.Form` subclass, written in log space for
robust fitting (see :mod:`scalelab.laws.forms.base`), in one module per family:

* :mod:`~scalelab.laws.forms.two_variable`: laws of N and D (``chinchilla``,
  ``chinchilla-tied``, ``overtrain``, ``kaplan``);
* :mod:`~scalelab.laws.forms.one_variable`: laws of one variable (``power``, ``bnsl``,
  ``slope``);
* :mod:`~scalelab.laws.forms.data_constrained`: ``data-constrained`` (Muennighoff et al.);
* :mod:`~scalelab.laws.forms.reward`: reward against sqrt(KL) (``gao-bon``, ``gao-rl``);
* :mod:`~scalelab.laws.forms.pinned`: any form with some parameters held fixed.

The table is data, torch- and numpy-free (the classes are named as ``"module:Class"`` and
imported only by :func:`make_form`, as :mod:`scalelab.architectures` names model classes), so
the command line reads its ``--form`` choices from it without loading the fitting code.
Adding a form: its class in the module of its family, one row here.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scalelab._lazy import lazy_api

if TYPE_CHECKING:
    from scalelab.laws.forms.base import Form


@dataclass(frozen=True)
class FormEntry:
    """One row of :data:`FORM_TABLE`: where the form's class is, and how it is made."""

    cls: str  # "scalelab.laws.forms.module:Class", imported by make_form only
    x: str | None = None  # a one-variable form: its variable when --x is not given
    # the form takes ``fixed`` itself (its base law's parameters) instead of being pinned
    own_fixed: bool = False
    fixable: bool = True  # --fix may hold its parameters (Pinned)
    fits: str = "loss"  # what it fits: "loss" (points of runs) or "reward" (posttrain points)


_HERE = "scalelab.laws.forms"
FORM_TABLE: dict[str, FormEntry] = {
    "chinchilla": FormEntry(f"{_HERE}.two_variable:Chinchilla"),
    "chinchilla-tied": FormEntry(f"{_HERE}.two_variable:ChinchillaTied"),
    "overtrain": FormEntry(f"{_HERE}.two_variable:Overtrain"),
    "kaplan": FormEntry(f"{_HERE}.two_variable:Kaplan"),
    "power": FormEntry(f"{_HERE}.one_variable:Power", x="N"),
    "data-constrained": FormEntry(
        f"{_HERE}.data_constrained:DataConstrained", own_fixed=True, fixable=False
    ),
    "bnsl": FormEntry(f"{_HERE}.one_variable:BrokenPower", x="N"),
    "slope": FormEntry(f"{_HERE}.one_variable:Slope", x="C", fixable=False),
    "gao-bon": FormEntry(f"{_HERE}.reward:GaoBestOfN", own_fixed=True, fits="reward"),
    "gao-rl": FormEntry(f"{_HERE}.reward:GaoRL", own_fixed=True, fits="reward"),
}

FORMS = tuple(FORM_TABLE)
FIXABLE = tuple(name for name, e in FORM_TABLE.items() if e.fixable)
GAO_FORMS = tuple(name for name, e in FORM_TABLE.items() if e.fits == "reward")
ONE_VARIABLE = tuple(name for name, e in FORM_TABLE.items() if e.x is not None)  # take --x


def make_form(name: str, *, x: str | None = None, fixed: Mapping[str, float] | None = None) -> Form:
    """The form called ``name``; ``x`` picks the variable of one-variable forms; ``fixed``
    holds published parameters at given values (for data-constrained: its base law)."""
    entry = FORM_TABLE.get(name)
    if entry is None:
        raise KeyError(name)
    module, _, attr = entry.cls.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if entry.own_fixed:
        return cls(fixed=dict(fixed or {}))
    base = cls(x=x or entry.x) if entry.x is not None else cls()
    if not fixed:
        return base
    from scalelab.laws.forms.pinned import Pinned

    return Pinned(base=base, fixed=dict(fixed))


# the classes and helpers, loaded on first use (they need numpy)
_API: dict[str, str] = {
    "Array": f"{_HERE}.base",
    "Form": f"{_HERE}.base",
    "Chinchilla": f"{_HERE}.two_variable",
    "ChinchillaTied": f"{_HERE}.two_variable",
    "Overtrain": f"{_HERE}.two_variable",
    "Kaplan": f"{_HERE}.two_variable",
    "as_chinchilla": f"{_HERE}.two_variable",
    "Power": f"{_HERE}.one_variable",
    "BrokenPower": f"{_HERE}.one_variable",
    "Slope": f"{_HERE}.one_variable",
    "DataConstrained": f"{_HERE}.data_constrained",
    "R_D_STAR": f"{_HERE}.data_constrained",
    "R_N_STAR": f"{_HERE}.data_constrained",
    "optimal_n_for_data": f"{_HERE}.data_constrained",
    "Gao": f"{_HERE}.reward",
    "GaoBestOfN": f"{_HERE}.reward",
    "GaoRL": f"{_HERE}.reward",
    "Pinned": f"{_HERE}.pinned",
}
__getattr__, __dir__ = lazy_api(__name__, _API, globals())
__all__ = sorted(
    [*_API, "FIXABLE", "FORMS", "FORM_TABLE", "GAO_FORMS", "ONE_VARIABLE", "FormEntry", "make_form"]
)
