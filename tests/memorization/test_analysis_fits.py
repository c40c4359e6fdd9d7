import numpy as np
import pandas as pd
import pytest

from scalelab.memorization.analysis import extraction_slopes, loglinear_slope


def test_loglinear_slope_recovers_share_per_decade():
    x = np.array([1, 4, 16, 64, 256])
    got = loglinear_slope(x, 0.05 + 0.2 * np.log10(x), bootstrap=100)
    assert got["slope"] == pytest.approx(0.2) and got["n"] == 5
    assert got["ci"][0] == pytest.approx(0.2) and got["ci"][1] == pytest.approx(0.2)
    assert np.isnan(loglinear_slope([3, 3], [0.1, 0.2])["slope"])  # one x: no slope


def test_extraction_slopes_take_each_axis_at_the_others_largest_values():
    rows = []
    for n in (1e4, 1e5):
        for e in (4, 16, 64):
            for k in (8, 32):
                share = 0.1 * np.log10(n / 1e4) + 0.3 * np.log10(e / 4) + 0.05 * np.log10(k / 8)
                rows.append(
                    {
                        "source": "canary",
                        "N_non_embedding": n,
                        "exposures": e,
                        "k": k,
                        "share": share,
                    }
                )
    rows.append({"source": "val", "N_non_embedding": 1e5, "exposures": None, "k": 32, "share": 0.9})
    got = extraction_slopes(pd.DataFrame(rows), bootstrap=50)
    assert got["per_decade_of_size"]["slope"] == pytest.approx(0.1)
    assert got["per_decade_of_exposures"]["slope"] == pytest.approx(0.3)
    assert got["per_decade_of_prefix"]["slope"] == pytest.approx(0.05)
    assert extraction_slopes(pd.DataFrame(rows[-1:])) == {}
