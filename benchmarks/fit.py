"""Fit speed and quality: scalelab's Chinchilla fit against the `chinchilla` package (PyPI).

Both fit L = E + A/N^alpha + B/D^beta to Epoch AI's 240 re-extracted Chinchilla points
(Besiroglu et al. 2024; the 5 highest-loss points dropped) with the same objective, Huber
(delta = 1e-3) on log residuals (the package's ``log_huber``; it averages over points
where we sum, which has the same minimiser), from the same 4500-start grid of Hoffmann
et al. 2022, sec. D.2. The package runs BFGS from every start (numerical gradients,
float128, a process per core); scalelab scores the grid in one NumPy call and refines the
best 8 starts with L-BFGS on analytic gradients. Both results are scored with the same
function (the sum of Huber terms), and the wall-clock seconds are compared.

The `chinchilla` package is not a dependency of scalelab; install it for this benchmark:

    .venv/bin/pip install -c constraints.txt chinchilla
    .venv/bin/python benchmarks/fit.py            # full grid: a few minutes for the package
    .venv/bin/python benchmarks/fit.py --quick    # a 32-start grid for both, seconds
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from scalelab.laws import fit_law
from scalelab.laws.forms import Chinchilla
from scalelab.laws.robust import grid_objective

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "laws" / "epoch_chinchilla_245.csv"


def epoch_points() -> pd.DataFrame:
    df = pd.read_csv(DATA).rename(columns={"N_params": "N", "D_tokens": "D", "C_flop": "C"})
    return df[df["loss"] < np.sort(df["loss"].to_numpy())[-5]].reset_index(drop=True)


def objective(df: pd.DataFrame, p: dict[str, float]) -> float:
    """The sum of Huber(1e-3) terms on log residuals at the parameters ``p``."""
    form = Chinchilla()
    feats = form.features({"N": df["N"].to_numpy(), "D": df["D"].to_numpy()})
    theta = form.from_public(p)[None, :]
    return float(grid_objective(form, feats, np.log(df["loss"].to_numpy()), theta)[0])


def hoffmann_grid(quick: bool) -> dict[str, np.ndarray]:
    if quick:
        return {
            "e": np.array([-1.0, 0.5]),
            "a": np.array([0.0, 10.0]),
            "b": np.array([0.0, 10.0]),
            "alpha": np.array([0.0, 0.5]),
            "beta": np.array([0.0, 0.5]),
        }
    # the order E, A, B, alpha, beta is the package's; e/a/b mark log-scale axes
    return {
        "e": np.arange(-1, 1.5, 0.5),
        "a": np.arange(0, 30, 5.0),
        "b": np.arange(0, 30, 5.0),
        "alpha": np.arange(0, 2.5, 0.5),
        "beta": np.arange(0, 2.5, 0.5),
    }


def run_package(df: pd.DataFrame, grid: dict[str, np.ndarray]) -> tuple[dict[str, float], float]:
    from chinchilla import Chinchilla as Package
    from chinchilla._metrics import log_huber

    with tempfile.TemporaryDirectory() as d:
        df[["C", "N", "D", "loss"]].to_csv(os.path.join(d, "df.csv"), index=False)
        cc = Package(
            d, param_grid=grid, loss_fn=functools.partial(log_huber, delta=1e-3), log_level=40
        )
        t = time.perf_counter()
        cc.fit(parallel=True)
        secs = time.perf_counter() - t
        return cc.get_params(), secs


def run_ours(df: pd.DataFrame, grid: dict[str, np.ndarray], quick: bool) -> tuple[dict, float]:
    t = time.perf_counter()
    if quick:
        starts = [
            {"E": np.exp(e), "A": np.exp(a), "B": np.exp(b), "alpha": al, "beta": be}
            for e in grid["e"]
            for a in grid["a"]
            for b in grid["b"]
            for al in grid["alpha"]
            for be in grid["beta"]
        ]
        law = fit_law(df, bootstrap=0, extrapolation=False, init=starts)
    else:
        law = fit_law(df, bootstrap=0, extrapolation=False)  # its grid is Hoffmann's
    return law.params, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 32-start grid for both")
    args = ap.parse_args()
    try:
        import chinchilla  # noqa: F401
    except ImportError:
        print("needs the chinchilla package: .venv/bin/pip install -c constraints.txt chinchilla")
        return 2
    df = epoch_points()
    grid = hoffmann_grid(args.quick)
    n_starts = int(np.prod([len(v) for v in grid.values()]))
    ours_p, ours_s = run_ours(df, grid, args.quick)
    pkg_p, pkg_s = run_package(df, grid)
    ours_obj, pkg_obj = objective(df, ours_p), objective(df, pkg_p)
    print(f"Epoch AI's {len(df)} Chinchilla points, {n_starts} starts, {os.cpu_count()} CPU cores")
    print(f"{'':22s}{'objective':>14s}{'seconds':>10s}   E      A        B        alpha  beta")
    for name, obj, secs, p in (
        ("scalelab", ours_obj, ours_s, ours_p),
        ("chinchilla (PyPI)", pkg_obj, pkg_s, pkg_p),
    ):
        print(
            f"{name:22s}{obj:14.10f}{secs:10.2f}   {p['E']:.3f}  {p['A']:7.1f}  {p['B']:7.1f}  "
            f"{p['alpha']:.4f} {p['beta']:.4f}"
        )
    print(f"time ratio (chinchilla / scalelab): {pkg_s / ours_s:.1f}x")
    print(f"objective ratio (scalelab / chinchilla): {ours_obj / pkg_obj:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
