import time

import pytest
import torch

from scalelab.errors import ConfigError
from scalelab.intrinsic.projections import PROJECTIONS, FastfoodProjection, fwht, make_projection


def hadamard(n: int) -> torch.Tensor:
    H = torch.ones(1, 1)
    while H.shape[0] < n:
        H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)
    return H


def test_fwht_is_the_hadamard_matrix():
    x = torch.randn(3, 64)
    assert torch.allclose(fwht(x), x @ hadamard(64).T, atol=1e-4)
    assert torch.allclose(fwht(fwht(x)) / 64, x, atol=1e-5)  # H H = L I
    with pytest.raises(ValueError):
        fwht(torch.zeros(6))


@pytest.mark.parametrize("kind", PROJECTIONS)
def test_projection_columns_have_unit_length_and_are_seeded(kind):
    D, d = 3000, 20
    P = make_projection(kind, D, d, seed=1)
    cols = torch.stack([P(torch.eye(d)[i]) for i in range(d)], 1)
    assert cols.shape == (D, d)
    # fastfood's columns are unit length on average over its random G (not exactly)
    assert torch.allclose(
        cols.norm(dim=0), torch.ones(d), atol=0.05 if kind == "fastfood" else 1e-4
    )
    z = torch.randn(d)
    assert torch.allclose(P(z), make_projection(kind, D, d, seed=1)(z))
    assert not torch.allclose(P(z), make_projection(kind, D, d, seed=2)(z))
    # nearly orthogonal random directions
    gram = cols.T @ cols
    assert (gram - torch.diag(torch.diag(gram))).abs().max() < 0.2


@pytest.mark.parametrize("D", [2049, 4095, 4096])
def test_fastfood_columns_are_unit_length_either_side_of_a_power_of_two(D):
    """Fastfood pads to L = 2^ceil(log2 D) and keeps D rows: normalised by the full length L
    alone, a column would be sqrt(D / L) long (0.71 at D = 2,049, 1.00 at 4,095), so a unit
    step in z would move theta by an amount that depends on where D falls between powers of
    two. Measured through make_projection, as the subspace trainer builds it."""
    d = 64
    for seed in (0, 1):
        P = make_projection("fastfood", D, d, seed=seed)
        cols = torch.stack([P(torch.eye(d)[i]) for i in range(d)], 1)
        norms = cols.norm(dim=0)
        assert ((norms - 1).abs() < 0.05).all(), (D, seed, norms.min(), norms.max())


def test_fastfood_never_materialises_P_at_a_million_parameters():
    """D = 1e6, d = 1e4: a dense P would hold 4e10 bytes; Fastfood holds O(L) (L = 2^20)."""
    D, d = 1_000_000, 10_000
    t0 = time.perf_counter()
    P = FastfoodProjection(D, d, seed=0)
    assert P.state_bytes() < 20 * P.L  # B and G (4 bytes each), Pi (8): 16 bytes per row
    z = torch.randn(d, requires_grad=True)
    out = P(z)
    (out**2).sum().backward()
    assert out.shape == (D,) and z.grad is not None and torch.isfinite(z.grad).all()
    assert time.perf_counter() - t0 < 20
    with pytest.raises(ConfigError, match="use --projection fastfood"):
        make_projection("dense", D, d)


def test_bad_dimensions():
    with pytest.raises(ConfigError, match="between 1 and"):
        make_projection("fastfood", 100, 101)
    with pytest.raises(ConfigError, match="not one of"):
        make_projection("fourier", 100, 10)
