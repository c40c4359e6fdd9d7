import pytest

from scalelab.config import (
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    load_run_config,
    parse_override,
)
from scalelab.errors import ConfigError


def test_defaults_resolve_derived_fields():
    cfg = ModelConfig(d_model=96, n_head=4)
    assert cfg.n_kv_head == 4
    assert cfg.d_ff == 384
    gated = ModelConfig(d_model=96, n_head=4, mlp="swiglu")
    assert gated.d_ff == 256 and gated.d_ff % 8 == 0


def test_toml_and_overrides(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text("[model]\nn_layer = 2\nd_model = 64\n[train]\ntokens = 1e6\nlr = 0.01\n")
    cfg = load_run_config(p, ["train.lr=1e-3", "data.tokenizer=bytes", "model.pos=rotary"])
    assert cfg.model.n_layer == 2 and cfg.model.pos == "rotary"
    assert cfg.train.tokens == 1_000_000 and isinstance(cfg.train.tokens, int)
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.data.tokenizer == "bytes"


def test_unknown_key_suggests_nearest(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text("[model]\nn_layers = 2\n")
    with pytest.raises(ConfigError, match=r"model\.n_layers.*did you mean 'n_layer'"):
        load_run_config(p)
    with pytest.raises(ConfigError, match=r"unknown section \[trian\].*'train'"):
        load_run_config(None, ["trian.lr=1"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.d_model=30", "divisible by model.n_head"),
        ("model.norm=batchnorm", "model.norm"),
        ("train.lr=fast", "train.lr must be float"),
        ("model.n_layer=2.5", "model.n_layer must be int"),
        ("model.arch=transformr", "did you mean 'transformer'"),
    ],
)
def test_bad_values_name_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(None, [override])


def test_one_budget_only():
    with pytest.raises(ConfigError, match="one training budget"):
        TrainConfig(tokens=1000, epochs=2.0)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_run_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_run_config(bad)


def test_run_id_is_stable_and_ignores_device():
    a = RunConfig()
    b = RunConfig(train=TrainConfig(device="cpu"))
    c = RunConfig(train=TrainConfig(seed=1))
    assert a.run_id() == b.run_id() != c.run_id()
    assert len(a.run_id()) == 12


def test_data_fraction_is_checked_and_the_default_keeps_old_run_ids():
    assert RunConfig(data=DataConfig(fraction=1.0)).run_id() == RunConfig().run_id()
    assert RunConfig(data=DataConfig(fraction=0.5)).run_id() != RunConfig().run_id()
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError, match=r"data\.fraction"):
            DataConfig(fraction=bad)


def test_parse_override_strings_and_numbers():
    assert parse_override("data.corpus=markov:order=1,vocab=8") == (
        "data",
        "corpus",
        "markov:order=1,vocab=8",
    )
    assert parse_override("train.compile=true") == ("train", "compile", True)
    with pytest.raises(ConfigError):
        parse_override("lr=1")


def test_a_text_field_keeps_a_run_id_that_toml_reads_as_a_number():
    from scalelab.config import parse_override

    # hex run ids can be all digits (an int to TOML) or digits around one 'e' (a float)
    assert parse_override("train.branch_of=760597491209")[2] == "760597491209"
    assert parse_override("train.branch_of=123e45678901")[2] == "123e45678901"
    assert parse_override("train.lr=1e-3")[2] == 0.001  # a number field still reads numbers
