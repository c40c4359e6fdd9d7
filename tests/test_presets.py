"""The presets table: names, files, and that every entry counts."""

import json

import pytest

from scalelab.accounting import count
from scalelab.accounting.display import presets_table
from scalelab.errors import ConfigError
from scalelab.presets import (
    CONFIG_DIR,
    PRESETS,
    get_preset,
    list_presets,
    preset_config,
)


def test_every_reference_config_is_a_preset():
    files = {p.name for p in CONFIG_DIR.glob("*.json") if not p.name.endswith(".params.json")}
    assert files == {p.config for p in list_presets()}
    assert len(PRESETS) == len(files)


@pytest.mark.parametrize("preset", list_presets(), ids=lambda p: p.name)
def test_preset_files_are_valid_and_count(preset):
    cfg = json.loads(preset.path.read_text())
    assert "model_type" in cfg
    c = count(preset.name)
    assert c.model == preset.name
    assert c.params.total > c.params.non_embedding > 0


def test_names_aliases_and_case():
    assert get_preset("GPT2-Small").name == "gpt2"
    assert get_preset("bert-base").name == "bert-base-uncased"
    with pytest.raises(ConfigError, match="did you mean 'qwen3-14b'"):
        get_preset("qwen3-14")
    cfg = preset_config("gpt2")
    cfg["n_layer"] = 1  # a fresh copy each time
    assert preset_config("gpt2")["n_layer"] == 12


def test_presets_table():
    df = presets_table(seq_len=2048)
    assert list(df["name"]) == [p.name for p in list_presets()]
    assert (df["seq_len"] == 2048).all()
    row = df.set_index("name").loc["llama-3.1-405b"]
    assert row["total"] == 405_853_388_800 and row["non_embedding"] == 401_650_696_192
