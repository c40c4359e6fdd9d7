"""The capacity calibration's plan: each arm offered the content asked for, errors by name."""

import math

import pytest

from scalelab.apps.capacity_calibration import load_calibration, planned_runs
from scalelab.errors import ConfigError

FILE = """
[calibration]
name = "cal"
corpus = "facts:attributes=6,templates=1,seed=0"
bits_per_param = 2.0
content = 2.5
exposures = [1000, 100]

[[calibration.arms]]
name = "small"
model = { n_layer = 1, d_model = 20, n_head = 4 }
lr = 0.02
batch_size = 16

[[calibration.arms]]
name = "small-lr"
model = { n_layer = 1, d_model = 20, n_head = 4 }
lr = 0.005
batch_size = 64
exposures = [300]
weight_decay = 0.0

[model]
vocab_size = 293
context = 64

[train]
precision = "fp32"
"""


def test_each_arm_is_offered_content_times_the_published_capacity(tmp_path):
    path = tmp_path / "cal.toml"
    path.write_text(FILE)
    plan = planned_runs(load_calibration(path))
    assert [(a.name, e) for a, e, _ in plan] == [
        ("small", 1000.0),
        ("small", 100.0),
        ("small-lr", 300.0),
    ]
    # 1 layer, d 20: 4,860 non-embedding parameters; 53.16 attribute bits a person
    per_person = math.log2(12 * 28 * 100) + math.log2(200 * 300 * 100 * 250 * 200)
    people = math.ceil(2.5 * 2.0 * 4860 / per_person)
    for arm, exposures, cfg in plan:
        assert cfg.data.corpus == f"facts:attributes=6,templates=1,seed=0,people={people}"
        assert cfg.train.epochs == exposures and cfg.train.lr == arm.lr
        assert cfg.train.batch_size == arm.batch_size and cfg.model.d_model == 20
    assert plan[2][2].train.weight_decay == 0.0 and plan[0][2].train.weight_decay == 0.1
    assert len({cfg.run_id() for _, _, cfg in plan}) == 3


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ('name = "cal"', 'name = ""', "calibration.name"),
        ("content = 2.5", "contents = 2.5", "calibration.contents"),
        ('corpus = "facts:', 'corpus = "facts:people=10,', "leave people out"),
        ('corpus = "facts:attributes=6,templates=1,seed=0"', 'corpus = "bits:strings=8"', "facts"),
        ("lr = 0.02", "lr = -1", r"arms\[0\]\.lr"),
        ("batch_size = 16", "batch_size = 0", r"arms\[0\]\.batch_size"),
        ("exposures = [300]", "exposures = []", r"arms\[1\]\.exposures"),
        ('name = "small-lr"', 'name = "small"', "distinct"),
    ],
)
def test_a_bad_calibration_file_is_refused_by_key(tmp_path, old, new, match):
    path = tmp_path / "cal.toml"
    assert old in FILE
    path.write_text(FILE.replace(old, new, 1))
    with pytest.raises(ConfigError, match=match):
        planned_runs(load_calibration(path))
