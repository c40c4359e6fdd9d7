"""load_points(extra=True): the keys of extra_json as columns."""

import json

from scalelab.results.store import Store
from scalelab.study import load_points


def test_extra_json_keys_become_columns_and_store_columns_win(tmp_path):
    db = tmp_path / "r.db"
    with Store(db) as store:
        for i, extra in enumerate([{"kl": 1.5, "arch": "not-this"}, {"kl": 0.0, "n": 4}]):
            store.put_point(
                {"run_id": f"p{i}", "kind": "posttrain", "arch": "transformer",
                 "status": "finished", "extra_json": json.dumps(extra)}
            )  # fmt: skip
        store.put_point({"run_id": "plain", "kind": "run", "status": "finished"})
    df = load_points(db, kind="posttrain", extra=True)
    assert df["kl"].tolist() == [1.5, 0.0]
    assert df["arch"].tolist() == ["transformer"] * 2  # the store's column, not the key
    assert df["n"].isna().tolist() == [True, False]
    assert "kl" not in load_points(db, kind="posttrain").columns  # off by default
    assert "extra_json" not in df.columns
    assert len(load_points(db, extra=True)) == 3  # a point without extra_json reads too
