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
    # fastfood keeps the first D of L = 4096 rows, so its columns are a little shorter
    assert torch.allclose(cols.norm(dim=0), torch.ones(d), atol=0.2 if kind == "fastfood" else 1e-4)
    z = torch.randn(d)
    assert torch.allclose(P(z), make_projection(kind, D, d, seed=1)(z))
    assert not torch.allclose(P(z), make_projection(kind, D, d, seed=2)(z))
    # nearly orthogonal random directions
    gram = cols.T @ cols
    assert (gram - torch.diag(torch.diag(gram))).abs().max() < 0.2


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
