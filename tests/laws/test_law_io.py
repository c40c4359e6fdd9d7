"""Law.to_dict is the --json contract and FIT.json round-trips through save/load."""

import json

import numpy as np
import pytest

from scalelab.errors import FitError
from scalelab.laws import Law, fit_law, resolve_law

P = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


@pytest.fixture(scope="module")
def law(synthetic):
    return fit_law(synthetic(P, noise=0.01, seed=4), bootstrap=30)


def test_contract_keys(law):
    d = law.to_dict()
    for k in ("params", "objective", "ci", "extrapolation"):
        assert k in d
    assert set(d["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert set(d["ci"]) == {"E", "A", "B", "alpha", "beta"}
    json.dumps(d, allow_nan=False)  # strict JSON


def test_save_load_round_trip(law, tmp_path):
    path = law.save(tmp_path / "sub" / "fit.json")
    assert not list(path.parent.glob(".*tmp"))  # atomic: no temporary left behind
    back = resolve_law(path)
    assert back.params == law.params and back.ci == law.ci
    np.testing.assert_array_equal(back.samples, law.samples)
    assert back.predict(N=1e9, D=2e10) == law.predict(N=1e9, D=2e10)
    assert back.predict_interval(N=1e9, D=2e10) == law.predict_interval(N=1e9, D=2e10)


def test_predict_shapes(law):
    assert isinstance(law.predict(N=1e8, D=1e9), float)
    out = law.predict(N=np.array([1e8, 1e9]), D=1e10)
    assert out.shape == (2,)
    with pytest.raises(FitError, match=r"needs N, D; missing D"):
        law.predict(N=1e8)


def test_bad_law_files(tmp_path):
    with pytest.raises(FitError, match=r"does not exist"):
        Law.load(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FitError, match=r"cannot read"):
        Law.load(bad)
    bad.write_text(json.dumps({"form": "chinchilla", "params": {"E": 1.0}}))
    with pytest.raises(FitError, match=r"needs params A, B, alpha, beta"):
        Law.load(bad)


def test_preset_without_samples_has_no_interval():
    with pytest.raises(FitError, match=r"no bootstrap samples"):
        resolve_law("hoffmann2022").predict_interval(N=1e9, D=1e10)
