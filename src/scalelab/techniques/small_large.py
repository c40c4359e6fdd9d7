"""Small vs large: every technique point read as an effective size on the ladder's law.

``technique_table(db)`` returns one row per technique point (distilled students and
compressed models) with its loss, its plain twin's loss, and the effective N read off the
plain ladder's law (:func:`scalelab.laws.effective_n`) with its bootstrap interval. The
law is the Chinchilla L(N, D) when the plain runs span two or more token budgets, else,
at the single D they share, ``L = E + A / N^alpha``.

For distilled students the row also carries the three compute accountings
(``C_student``, ``C_teacher``, ``C_total``, the trainer's exact FLOPs) and whether the
student beats the plain ladder at *equal total compute*: the law's loss for a plain model
of ``N_c`` at the same D (a plain run given the teacher's FLOPs as extra parameters;
Busbridge et al. 2025, eq. 9, frame the question this way).

Both sides of that comparison are in one currency, the law's own (``COMPUTE_CURRENCY``):
``C = 6 N D`` with the law's N (non-embedding, Kaplan et al. 2020), and the teacher's
forward pass converted the same way, ``2 N_teacher`` per token (Busbridge et al.'s
``F(N) ~ 2N``) times the tokens it ran on. So ``N_c = N_student + N_teacher / 3`` for a
teacher run on every training token, and a free teacher (``C_teacher = 0``) gives the
student's own N. Dividing the exact ``C_total`` by ``6 D`` instead would mix currencies:
the exact count includes the head and attention, which the law's N leaves out, and at these
sizes it is 1.3-1.9x ``6 N D`` (``C_exact`` against ``C`` in the store), so the plain
model would get that much more N than the student had for free.

``bits_table(db)`` puts plain runs (at 16 bits per parameter) and compressed models on
the loss-against-model-bits plane; ``small_large_section(db, out)`` writes the report's
"Small vs large" figures and HTML (it depends on nothing of the report package; the
report's builder only calls it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from scalelab.errors import FitError, StoreError
from scalelab.plugin import plane_kinds

TITLE = "Small vs large"
COMPUTE_CURRENCY = (
    "the law's C = 6 N D with its non-embedding N; the teacher's forward pass counted as "
    "2 N_teacher per token it ran on"
)


def technique_kinds() -> tuple[str, ...]:
    """The point kinds read as a technique's models: the registered plug-ins' plane kinds
    (:attr:`scalelab.plugin.Plugin.plane_kinds`: distilled, compressed), so a new technique's
    points show here without editing this module."""
    return plane_kinds()


def __getattr__(name: str) -> Any:
    """``TECHNIQUE_KINDS``, the name of the table before it came from the plug-ins."""
    if name == "TECHNIQUE_KINDS":
        return technique_kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def compute_matched_n(
    n_student: float, tokens: float, extra: dict[str, Any]
) -> tuple[float, float]:
    """(``N_c``, ``C_teacher`` in the law's currency) for a student of ``n_student``
    non-embedding parameters trained on ``tokens``: the plain model whose ``6 N_c D`` equals
    the student's ``6 N D`` plus the teacher's forward pass in the same currency.

    The tokens the teacher ran on are its exact ``C_teacher`` over its exact forward FLOPs
    per token (0 when ``alpha = 0``; every training token otherwise), each charged
    ``2 N_teacher``; a point without the per-token count is taken to have run the teacher
    on all ``tokens``.
    """
    c_teacher = float(extra.get("C_teacher") or 0.0)
    if c_teacher <= 0:
        return float(n_student), 0.0
    n_teacher = extra.get("teacher_N_non_embedding")
    if not n_teacher:
        raise StoreError(
            "a distilled point has C_teacher > 0 but no teacher_N_non_embedding: its teacher "
            "cannot be put in the law's currency; re-record the student with this scalelab"
        )
    per_token = float(extra.get("teacher_forward_flops_per_token") or 0.0)
    teacher_tokens = c_teacher / per_token if per_token > 0 else float(tokens)
    c_law_teacher = 2.0 * float(n_teacher) * teacher_tokens
    return float(n_student) + c_law_teacher / (6.0 * float(tokens)), c_law_teacher


def _extra(row: Any) -> dict[str, Any]:
    raw = row.get("extra_json") if hasattr(row, "get") else None
    return json.loads(raw) if isinstance(raw, str) and raw else {}


def load_all(db: str | Path, study: str | None = None) -> pd.DataFrame:
    """Every finished point of the store (runs and techniques), one per (kind, run id),
    with the technique's ``extra_json`` and the ``run_dir`` (which ``load_points`` leaves
    out as internal)."""
    from scalelab.results import load_points
    from scalelab.results.store import Store

    pts = load_points(db, study=study)
    # a run recorded in two studies: keep the row that knows its ladder size
    pts = pts.assign(_sized=pts["size"].notna()).sort_values(
        "_sized", ascending=False, kind="stable"
    )
    pts = pts.drop_duplicates(["kind", "run_id"]).drop(columns="_sized").sort_index()
    with Store(db, create=False) as s:
        rows = s.query("SELECT DISTINCT kind, run_id, extra_json, run_dir FROM points")
    internal = pd.DataFrame(
        [dict(r) for r in rows], columns=["kind", "run_id", "extra_json", "run_dir"]
    ).drop_duplicates(["kind", "run_id"])
    return pts.merge(internal, on=["kind", "run_id"], how="left").reset_index(drop=True)


def ladder_law(plain: pd.DataFrame, bootstrap: int = 200, seed: int = 0) -> Any:
    """The plain ladder's law: Chinchilla over several budgets, else a power law in N."""
    from scalelab.laws import fit_law

    if plain["N"].nunique() < 3:
        raise FitError(
            f"the plain ladder has {plain['N'].nunique()} sizes; effective sizes need >= 3"
        )
    if plain["D"].nunique() >= 2:
        return fit_law(plain, "chinchilla", bootstrap=bootstrap, seed=seed, extrapolation=False)
    return fit_law(plain, "power", x="N", bootstrap=bootstrap, seed=seed, extrapolation=False)


def technique_table(
    db: str | Path, study: str | None = None, *, bootstrap: int = 200
) -> tuple[pd.DataFrame, Any]:
    """One row per technique point with its effective N; and the law used."""
    from scalelab.laws.effective import effective_n

    pts = load_all(db, study)
    plain = pts[pts["kind"] == "run"]
    kinds = technique_kinds()
    tech = pts[pts["kind"].isin(kinds)]
    if tech.empty:
        raise StoreError(f"{db} has no {' or '.join(kinds)} points")
    law = ladder_law(plain, bootstrap=bootstrap)
    by_id = plain.set_index("run_id")
    rows = []
    for _, p in tech.iterrows():
        ex = _extra(p)
        twin_id = ex.get("scratch_run_id") if p["kind"] == "distilled" else p["parent_run_id"]
        twin = by_id.loc[twin_id] if twin_id in by_id.index else None
        if isinstance(twin, pd.DataFrame):
            twin = twin.iloc[0]
        eff = effective_n(law, float(p["loss"]), float(p["D"]), N=float(p["N"]))
        row: dict[str, Any] = {
            "run_id": p["run_id"],
            "kind": p["kind"],
            "technique": p["technique"],
            "size": (twin["size"] if twin is not None else None) or p.get("size"),
            "seed": p.get("seed"),
            "N": p["N"],
            "D": p["D"],
            "loss": p["loss"],
            "twin_run_id": twin_id,
            "twin_loss": None if twin is None else float(twin["loss"]),
            "N_eff": eff.value,
            "multiplier": eff.multiplier,
            "multiplier_lo": (eff.multiplier_ci or (None, None))[0],
            "multiplier_hi": (eff.multiplier_ci or (None, None))[1],
            "status": eff.status,
        }
        if p["kind"] == "distilled":
            c_total = float(ex.get("C_total") or 0.0)
            # one currency on both sides: the law's 6 N D (see the module docstring)
            n_c, c_law_teacher = compute_matched_n(float(p["N"]), float(p["D"]), ex)
            at_total = float(law.predict(N=n_c, D=float(p["D"])))
            row.update(
                alpha=ex.get("alpha"),
                teacher=ex.get("teacher_run_id"),
                teacher_N=ex.get("teacher_N_non_embedding"),
                teacher_loss=ex.get("teacher_loss"),
                C_student=ex.get("C_student"),
                C_teacher=ex.get("C_teacher"),
                C_total=c_total,
                C_law_total=6.0 * n_c * float(p["D"]),
                C_law_teacher=c_law_teacher,
                N_at_total_compute=n_c,
                plain_loss_at_total_compute=at_total,
                wins_at_total_compute=bool(float(p["loss"]) < at_total),
            )
        else:
            # against the parent's own effective N: a parent off the law by seed noise
            # does not make a lossless compression look like a loss
            par = None if twin is None else effective_n(law, float(twin["loss"]), float(p["D"]))
            ok = par is not None and par.status == "ok" and eff.status == "ok"
            row.update(
                multiplier_vs_parent=eff.value / par.value if ok else None,
                method=ex.get("method"),
                level=ex.get("level"),
                options=ex.get("options"),
                recover_tokens=ex.get("recover_tokens"),
                bits=ex.get("bits"),
                bits_per_param=ex.get("bits_per_param"),
                parent_bits=ex.get("parent_bits"),
            )
        rows.append(row)
    return pd.DataFrame(rows), law


def distill_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per student size and alpha (and teacher): mean loss over seeds, the scratch twins'
    mean, the gap and the seed spreads, and the mean multiplier."""
    d = table[table["kind"] == "distilled"]
    if d.empty:
        return pd.DataFrame()
    out = []
    for (size, alpha, teacher), g in d.groupby(["size", "alpha", "teacher"], dropna=False):
        twins = g["twin_loss"].dropna()
        out.append(
            {
                "size": size,
                "N": float(g["N"].iloc[0]),
                "alpha": alpha,
                "teacher": teacher,
                "teacher_N": g["teacher_N"].iloc[0],
                "teacher_loss": g["teacher_loss"].iloc[0],
                "seeds": len(g),
                "loss": g["loss"].mean(),
                "loss_spread": g["loss"].max() - g["loss"].min(),
                "scratch_loss": twins.mean() if len(twins) else math.nan,
                "scratch_spread": twins.max() - twins.min() if len(twins) else math.nan,
                "gap": (twins.mean() - g["loss"].mean()) if len(twins) else math.nan,
                "multiplier": g["multiplier"].mean(),
                "multiplier_lo": g["multiplier_lo"].min(),
                "multiplier_hi": g["multiplier_hi"].max(),
                "C_teacher_share": (g["C_teacher"] / g["C_total"]).mean(),
                "N_at_total_compute": g["N_at_total_compute"].mean(),
                "plain_loss_at_total_compute": g["plain_loss_at_total_compute"].mean(),
                "wins_at_total_compute": bool(g["wins_at_total_compute"].all()),
            }
        )
    return pd.DataFrame(out).sort_values(["N", "alpha"]).reset_index(drop=True)


def bits_table(db: str | Path, study: str | None = None) -> pd.DataFrame:
    """Plain runs (16 bits per parameter) and compressed models: total bits and loss."""
    pts = load_all(db, study)
    rows = []
    plain = pts[pts["kind"] == "run"]
    parents = set(pts.loc[pts["kind"] == "compressed", "parent_run_id"])
    for _, p in plain.iterrows():
        rows.append(
            {
                "run_id": p["run_id"],
                "label": "16-bit (plain)",
                "parent": p["run_id"],
                "N_total": p["N_total"],
                "bits": 16.0 * float(p["N_total"]),
                "loss": p["loss"],
                "is_parent": p["run_id"] in parents,
            }
        )
    for _, p in pts[pts["kind"] == "compressed"].iterrows():
        ex = _extra(p)
        opts = ex.get("options") or {}
        m = ex.get("method")
        if m == "quant":
            g = opts.get("group") or 0
            label = f"{opts.get('algorithm')} {ex.get('level'):g}-bit" + (f" g{g}" if g else "")
        elif m == "prune":
            label = f"prune {opts.get('structure')}" + (
                f" {opts.get('scope')}" if opts.get("structure") == "unstructured" else ""
            )
        else:
            label = str(m)
        if ex.get("recover_tokens"):
            label += " +recover"
        rows.append(
            {
                "run_id": p["run_id"],
                "label": label,
                "method": m,
                "level": ex.get("level"),
                "parent": p["parent_run_id"],
                "N_total": p["N_total"],
                "bits": float(ex.get("bits")),
                "loss": p["loss"],
                "is_parent": False,
            }
        )
    return pd.DataFrame(rows)


# --- the report section ------------------------------------------------------------------
