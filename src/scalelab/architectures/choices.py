"""The values of ``ModelConfig``'s variant switches (norm, positions, MLP).

They sit here, below :mod:`scalelab.config`, because the architectures' accounting
(:mod:`scalelab.accounting.tallies`) needs to know which MLPs are gated without importing the
config module that imports the registry.
"""

from __future__ import annotations

NORMS = ("layernorm", "rmsnorm")
POSITIONS = ("learned", "rotary", "none")
MLPS = ("gelu", "relu", "swiglu", "geglu", "reglu")
GATED_MLPS = ("swiglu", "geglu", "reglu")
PARAMETRIZATIONS = ("sp", "mup")  # standard, or muP (Yang et al. 2022): scalelab.models.mup
DEFAULT_MLP = "gelu"  # the MLP of an architecture that declares none (GPT-2's)


def default_d_ff(d_model: int, mlp: str) -> int:
    """4 d_model for a plain MLP (GPT-2); for a gated MLP, 2/3 of that rounded up to a
    multiple of 8 so the parameter count stays that of the plain MLP (Shazeer 2020, sec. 2)."""
    if mlp in GATED_MLPS:
        return 8 * -(-(8 * d_model // 3) // 8)
    return 4 * d_model
