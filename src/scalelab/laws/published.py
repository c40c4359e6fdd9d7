"""Published scaling laws as named presets, with their numbers and where they come from.

Loss is in nats per token of each paper's own tokenizer and data, N in parameters
(Kaplan: non-embedding), D in training tokens: a preset is a reference point, not a
prediction for another corpus. The table is data: each entry is the fields of a
:class:`~scalelab.laws.law.Law`, with where its numbers come from; ``scalelab presets --laws``
shows it.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

from scalelab.errors import FitError, did_you_mean
from scalelab.laws.forms import R_D_STAR, R_N_STAR
from scalelab.laws.law import Law

# name -> the Law's fields, as published (Law(**entry) is the law)
PUBLISHED: dict[str, dict[str, Any]] = {
    # The paper prints E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28 (eq. 10).
    # Full precision: the values Besiroglu et al. 2024 test against (`true_params` in
    # epoch-research/analyzing-chinchilla data_analysis.ipynb): log A, log B, log E, alpha, beta.
    "hoffmann2022": dict(
        form="chinchilla",
        params={
            "E": math.exp(0.5267228),
            "A": math.exp(6.0073404),
            "B": math.exp(6.0179186),
            "alpha": 0.33917084,
            "beta": 0.2849083,
        },
        name="hoffmann2022",
        source=(
            "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, eq. 10 "
            "(approach 3; MassiveText, 70M-16B parameters); full-precision values as used by "
            "Besiroglu et al. 2024"
        ),
    ),
    # Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt, eq. 4 / Table 1:
    # E = 1.82, A = 482.01, B = 2085.43, alpha = 0.3478, beta = 0.3658; full precision from
    # their notebook (data_analysis.ipynb, the fit printed as log A, log B, log E, alpha,
    # beta = 6.17795598, 7.64273236, 0.59711196, 0.34781303, 0.36585412) with the 95%
    # bootstrap intervals it prints (4000 resamples).
    "epoch2024": dict(
        form="chinchilla",
        params={
            "E": math.exp(0.59711196),
            "A": math.exp(6.17795598),
            "B": math.exp(7.64273236),
            "alpha": 0.34781303,
            "beta": 0.36585412,
        },
        ci={
            "E": (1.769, 1.871),
            "A": (285.214, 743.626),
            "B": (1042.357, 5810.344),
            "alpha": (0.317, 0.373),
            "beta": (0.331, 0.415),
        },
        name="epoch2024",
        source=(
            "Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt (Epoch AI), "
            "refit of the 240 points re-extracted from Hoffmann et al. 2022, Fig. 4"
        ),
    ),
    # Muennighoff et al. 2023, Scaling Data-Constrained Language Models, eq. 5 and App. A:
    # base fitted to Chinchilla's C4 IsoFLOP points (alpha = beta tied), then R_D*, R_N*
    # fitted to their runs (huggingface/datablations utils/parametric_fit.ipynb).
    "muennighoff2023": dict(
        form="data-constrained",
        params={
            "E": math.exp(0.6254804),
            "A": math.exp(6.255414),
            "B": math.exp(7.3049974),
            "alpha": 0.3526596,
            "beta": 0.3526596,
            R_D_STAR: 15.387756,
            R_N_STAR: 5.309743,
        },
        fixed=("E", "A", "B", "alpha", "beta"),
        name="muennighoff2023",
        source=(
            "Muennighoff et al. 2023, Scaling Data-Constrained Language Models, eq. 5 "
            "(C4, GPT-2 tokenizer); R_D* = 15.4, R_N* = 5.3"
        ),
    ),
    # Kaplan et al. 2020, Scaling Laws for Neural Language Models, eq. 1.5 with the constants
    # of Table 2, row "Fits to L(N, D)": alpha_N = 0.076, alpha_D = 0.103, N_c = 6.4e13,
    # D_c = 1.8e13 (non-embedding N, tokens D). The one-variable fits of eqs. 1.1 and 1.2
    # (alpha_D = 0.095, N_c = 8.8e13, D_c = 5.4e13) are other fits and do not belong here.
    "kaplan2020": dict(
        form="kaplan",
        params={"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103},
        name="kaplan2020",
        source=(
            "Kaplan et al. 2020, Scaling Laws for Neural Language Models, eq. 1.5 with "
            "Table 2's fit to L(N, D) (WebText2; N without embeddings)"
        ),
    ),
}
PRESETS = tuple(PUBLISHED)


def published_law(name: str) -> Law:
    """A published law by name: hoffmann2022, epoch2024, muennighoff2023, kaplan2020."""
    if name not in PUBLISHED:
        raise FitError(
            f"unknown law preset {name!r}{did_you_mean(name, PRESETS)}; "
            f"choose from {', '.join(PRESETS)} or give a FIT.json path"
        )
    return Law(**copy.deepcopy(PUBLISHED[name]))


def resolve_law(spec: str | Path | Law) -> Law:
    """A Law from a Law, a preset name, or the path of a FIT.json written by ``fit --out``."""
    if isinstance(spec, Law):
        return spec
    s = str(spec)
    if s in PUBLISHED:
        return published_law(s)
    path = Path(s)
    if path.suffix.lower() == ".json" or path.exists():
        return Law.load(path)
    return published_law(s)  # raises with the list of presets
