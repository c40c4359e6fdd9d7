import pytest

from scalelab.errors import ConfigError
from scalelab.study import expand, load_study, study_from_dict
from study_fakes import fake_sizer

BASE = {
    "model": {"n_layer": 1, "n_head": 2, "vocab_size": 64, "context": 16},
    "data": {"tokenizer": "bytes"},
    "train": {"batch_size": 4},
}


def study(**s):
    return {"study": {"name": "t", **s}, **{k: dict(v) for k, v in BASE.items()}}


def test_grid_order_and_axes():
    spec = study_from_dict(
        study(
            sizes=[{"name": "s", "d_model": 16}, {"name": "m", "d_model": 32}],
            tokens=[1000, 2000],
            seeds=[0, 1],
            grid={"train.lr": [1e-3, 3e-3]},
        )
    )
    runs = expand(spec)
    assert len(runs) == 2 * 2 * 2 * 2
    assert len({r.run_id for r in runs}) == len(runs)
    first = runs[0]
    assert first.axes == {
        "arch": "transformer",
        "size": "s",
        "budget": "tokens=1k",
        "seed": 0,
        "train.lr": 1e-3,
    }
    assert first.config.model.d_model == 16 and first.config.train.tokens == 1000
    # order: grid value, then size, then budget, then seed
    assert [r.config.train.seed for r in runs[:2]] == [0, 1]
    assert [r.config.train.tokens for r in runs[:4]] == [1000, 1000, 2000, 2000]
    assert runs[4].axes["size"] == "m" and runs[8].config.train.lr == 3e-3
    # shared sections reach every run
    assert all(r.config.data.tokenizer == "bytes" and r.config.train.batch_size == 4 for r in runs)
    # pure: expanding again gives the same ids
    assert [r.run_id for r in expand(spec)] == [r.run_id for r in runs]


def test_budget_kinds_union_and_fraction(monkeypatch):
    spec = study_from_dict(study(tokens=[1e4], tokens_per_param=[5, 20], epochs=[1, 2]))
    runs = expand(spec)
    assert [r.axes["budget"] for r in runs] == [
        "tokens=10k",
        "tpp=5",
        "tpp=20",
        "epochs=1",
        "epochs=2",
    ]
    assert runs[1].config.train.tokens_per_param == 5 and runs[1].config.train.tokens is None
    assert runs[4].config.train.epochs == 2
    with pytest.raises(ConfigError, match=r"study\.fraction needs study\.epochs"):
        study_from_dict(study(fraction=[0.5]))


def test_fraction_budget_writes_data_fraction_and_epochs():
    runs = expand(study_from_dict(study(fraction=[0.25, 0.5], epochs=[1, 4])))
    assert [r.axes["budget"] for r in runs][:2] == ["fraction=0.25x1ep", "fraction=0.25x4ep"]
    assert runs[1].config.data.fraction == 0.25 and runs[1].config.train.epochs == 4
    assert len({r.run_id for r in runs}) == len(runs)


def test_params_ladder_uses_the_sizer():
    calls = []

    def sizer(target, base, kind, options):
        calls.append((target, kind, dict(options)))
        return fake_sizer(target, base, kind, options)

    spec = study_from_dict(study(params=[3e4, 1e5], params_kind="total", size_for={"aspect": 32}))
    runs = expand(spec, sizer=sizer)
    assert [c[0] for c in calls] == [3e4, 1e5]
    assert calls[0][1:] == ("total", {"aspect": 32})
    assert [r.axes["size"] for r in runs] == ["30k", "100k"]
    assert runs[0].axes["target_params"] == 3e4 and runs[0].axes["params_kind"] == "total"
    assert runs[0].config.model.d_model < runs[1].config.model.d_model
    # the shared [model] keys that are not shape reach the sized model
    assert runs[0].config.model.vocab_size == 64


def test_arch_corpus_axes_and_dedup():
    spec = study_from_dict(
        study(arch=["transformer"], corpus=["markov:a", "markov:b"], seeds=[0], tokens=[100, 100])
    )
    runs = expand(spec)
    assert [r.config.data.corpus for r in runs] == ["markov:a", "markov:b"]
    assert runs[0].axes["data.corpus"] == "markov:a"
    single = expand(study_from_dict(study(corpus="markov:z")))
    assert single[0].config.data.corpus == "markov:z" and "data.corpus" not in single[0].axes


def test_nested_grid_table_is_the_same_as_dotted_keys():
    a = expand(study_from_dict(study(grid={"train": {"lr": [1e-3, 2e-3]}})))
    b = expand(study_from_dict(study(grid={"train.lr": [1e-3, 2e-3]})))
    assert [r.run_id for r in a] == [r.run_id for r in b]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"sezes": []}, r"unknown key study.sezes.*did you mean 'sizes'"),
        ({"grid": {"train.lrr": [1]}}, r"unknown key 'train.lrr'.*did you mean 'lr'"),
        ({"grid": {"trian.lr": [1]}}, r"unknown section 'trian'.*did you mean 'train'"),
        ({"sizes": [{"d_modle": 8}]}, r"study.sizes\[0\].d_modle.*did you mean 'd_model'"),
        ({"sizes": [{"d_model": 8}], "params": [1e4]}, "not both"),
        ({"params": [-1]}, "positive numbers"),
        ({"tokens": []}, "empty list"),
        ({"tokens": [1.5]}, "whole numbers"),
        ({"seeds": [0, 0]}, "repeated"),
        ({"params_kind": "totl"}, "did you mean 'total'"),
        ({"grid": {"train.seed": [1, 2]}}, "study.seeds"),
        ({"size_for": {"aspect": 32}}, "need target counts"),
    ],
)
def test_bad_study_keys_name_the_field(bad, message):
    with pytest.raises(ConfigError, match=message):
        study_from_dict(study(**bad))


def test_structure_errors():
    with pytest.raises(ConfigError, match="needs a \\[study\\] section"):
        study_from_dict({"model": {}})
    with pytest.raises(ConfigError, match=r"study\.name is required"):
        study_from_dict({"study": {}})
    with pytest.raises(ConfigError, match=r"unknown section \[trian\]"):
        study_from_dict({"study": {"name": "x"}, "trian": {}})
    with pytest.raises(ConfigError, match="not both"):
        study_from_dict({"study": {"name": "x", "tokens": [10]}, "train": {"tokens": 5}})


def test_invalid_run_is_named_by_its_axes():
    spec = study_from_dict(study(sizes=[{"name": "odd", "d_model": 15}]))
    with pytest.raises(ConfigError, match=r"run \(arch=transformer, size=odd.*divisible"):
        expand(spec)


@pytest.mark.parametrize(
    ("axis", "values", "field"),
    [
        ("train.beta2", [0.95, 1.5], r"train\.beta2 must be in \[0, 1\)"),
        ("train.min_lr_ratio", [0.1, 2.0], r"train\.min_lr_ratio"),
        ("train.decay_fraction", [0.2, 0.0], r"train\.decay_fraction"),
        ("train.grad_clip", [1.0, -1.0], r"train\.grad_clip"),
        ("train.early_stopping", [3, 0], r"train\.early_stopping"),
        ("model.causal", [True, False], r"model\.causal"),  # clm needs a causal model
        ("train.lr", [1e-3, float("nan")], r"train\.lr must be a finite number"),
    ],
)
def test_every_grid_point_is_validated_before_anything_trains(axis, values, field):
    """The cross-field checks live in RunConfig, so expanding the grid (what
    `sweep --dry-run` does) rejects the bad point, naming its run and the field."""
    spec = study_from_dict(study(sizes=[{"name": "s", "d_model": 16}], tokens=[1000],
                                 grid={axis: values}))  # fmt: skip
    with pytest.raises(ConfigError, match=rf"run \(.*{axis.replace('.', '[.]')}.*{field}"):
        expand(spec)


def test_load_study_file(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(
        '[study]\nname = "ladder"\ntokens = [1e3]\n[[study.sizes]]\nname = "a"\nd_model = 16\n'
        '[[study.sizes]]\nname = "b"\nd_model = 32\n'
        '[study.grid]\n"model.pos" = ["learned", "rotary"]\n'
        "[model]\nn_layer = 1\nn_head = 2\nvocab_size = 64\ncontext = 16\n"
    )
    spec = load_study(p)
    assert spec.name == "ladder" and spec.source == str(p)
    runs = expand(spec)
    assert len(runs) == 4 and {r.config.model.pos for r in runs} == {"learned", "rotary"}
    with pytest.raises(ConfigError, match="does not exist"):
        load_study(tmp_path / "missing.toml")


def test_params_ladder_with_accountings_size_for():
    from scalelab.accounting import count

    shape_free = {"n_layer", "n_head"}
    model = {k: v for k, v in BASE["model"].items() if k not in shape_free}
    runs = expand(study_from_dict({**study(params=[3e4, 1e5, 3e5]), "model": model}))
    for r in runs:
        n = count(r.config).params.non_embedding
        assert abs(n / r.axes["target_params"] - 1) < 0.1
        assert r.config.model.vocab_size == 64 and r.config.model.context == 16
    # a shape field the study pins is kept: size_for chooses the others
    pinned = expand(study_from_dict({**study(params=[1e5]), "model": {**model, "n_layer": 3}}))
    assert pinned[0].config.model.n_layer == 3
    with pytest.raises(ConfigError, match="nothing to choose"):
        study_from_dict({**study(params=[1e5]), "model": {"n_layer": 2, "d_model": 32}})
