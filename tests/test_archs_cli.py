"""`scalelab archs`: every architecture with its inductive bias, a thin mirror of archs_table."""

import json

from scalelab.accounting import count
from scalelab.accounting.display import archs_table
from scalelab.architectures import ARCHS
from scalelab.config import example_config


def test_archs_json_lists_every_architecture_counted_at_the_shape(cli):
    r = cli("archs", "--json", "--n-layer", "2", "--d-model", "64")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["arch"] for row in rows] == list(ARCHS)
    assert len(rows) >= 12  # the transformer and the ten (lconv and dconv are two)
    by_arch = {row["arch"]: row for row in rows}
    for arch in ARCHS:
        c = count(example_config(arch, n_layer=2, d_model=64), causal=True)
        assert by_arch[arch]["params"] == c.params.total
        assert by_arch[arch]["active"] == c.params.active
        assert by_arch[arch]["train_flops_per_token"] == c.flops.train_per_token
        assert by_arch[arch]["description"] == ARCHS[arch].description
    assert by_arch["switch"]["fields"] == {"n_experts": 8, "capacity_factor": 1.25, "aux_loss_coef": 0.01}  # fmt: skip
    assert by_arch["glu"]["fields"] == {"mlp": "swiglu"}
    assert by_arch["switch"]["active"] < by_arch["switch"]["params"]


def test_archs_table_names_each_bias(cli):
    r = cli("archs")
    assert r.returncode == 0, r.stderr
    for arch in ARCHS:
        assert arch in r.stdout
    assert len(archs_table()) == len(ARCHS)


def test_a_bad_shape_is_one_line_of_error(cli):
    r = cli("archs", "--d-model", "30", "--n-head", "4")
    assert r.returncode == 2
    assert "model.d_model (30) must be divisible by model.n_head (4)" in r.stderr
    assert "Traceback" not in r.stderr
