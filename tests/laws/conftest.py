from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "laws"


@pytest.fixture(scope="session")
def epoch_points() -> pd.DataFrame:
    """Epoch AI's 245 re-extracted Chinchilla points less the 5 of highest loss (240),
    selected as their notebook does: loss strictly below the 5th-highest loss."""
    df = pd.read_csv(DATA / "epoch_chinchilla_245.csv").rename(
        columns={"N_params": "N", "D_tokens": "D", "C_flop": "C"}
    )
    return df[df["loss"] < np.sort(df["loss"].to_numpy())[-5]].reset_index(drop=True)


@pytest.fixture(scope="session")
def datablations() -> pd.DataFrame:
    return pd.read_csv(DATA / "datablations_fit_set_182.csv").rename(
        columns={
            "N_params": "N",
            "D_tokens": "D",
            "U_unique_tokens": "unique_tokens",
            "val_loss": "loss",
        }
    )


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def synthetic():
    """A factory of Chinchilla-law ladders (see ``_synthetic``)."""
    return _synthetic


def _synthetic(
    params: dict[str, float],
    n_sizes: int = 6,
    n_budgets: int = 4,
    noise: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """A ladder of Chinchilla-law points: sizes x tokens-per-parameter, optional log noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in np.geomspace(1e6, 3e8, n_sizes):
        for tpp in np.geomspace(5, 80, n_budgets):
            d = n * tpp
            loss = (
                params["E"] + params["A"] / n ** params["alpha"] + params["B"] / d ** params["beta"]
            )
            rows.append({"N": n, "D": d, "loss": loss * np.exp(noise * rng.standard_normal())})
    return pd.DataFrame(rows)
