"""The registry: what each architecture declares, torch-free, applied wherever a config is made."""

from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from scalelab.architectures import ARCH_ONLY_FIELDS, ARCHS
from scalelab.config import ModelConfig, load_run_config
from scalelab.errors import ConfigError


def _toml(values: dict[str, object]) -> str:
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


def test_counting_a_toml_of_every_architecture_imports_no_torch(tmp_path: Path) -> None:
    """In a fresh interpreter (this one has torch loaded by other tests): count a model
    TOML of each registered architecture, as `scalelab count FILE` does, then look."""
    paths = []
    for name in ARCHS:
        p = tmp_path / f"{name}.toml"
        p.write_text(_toml({"arch": name, "n_layer": 2, "d_model": 64, "n_head": 4}))
        paths.append(str(p))
    code = (
        "import json, sys\n"
        "from scalelab.accounting import count\n"
        "from scalelab.accounting.display import archs_table\n"
        "totals = {p: count(p).params.total for p in sys.argv[1:]}\n"
        "archs_table()\n"  # `scalelab archs`: every architecture counted at one shape
        "print(json.dumps({'torch': 'torch' in sys.modules, 'totals': totals}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *paths], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout)
    assert len(result["totals"]) == len(ARCHS) and all(v > 0 for v in result["totals"].values())
    assert result["torch"] is False


def test_scalelab_count_of_a_toml_imports_no_torch(tmp_path: Path) -> None:
    """The same through the CLI, for an architecture whose module needs torch to build."""
    p = tmp_path / "switch.toml"
    p.write_text(_toml({"arch": "switch", "n_layer": 2, "d_model": 64, "n_head": 4}))
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('torch' in sys.modules, file=sys.stderr))\n"
        "sys.argv = ['scalelab', 'count', sys.argv[1], '--json']\n"
        "from scalelab.cli import main\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["params"]["total"] > 0
    assert out.stderr.strip().splitlines()[-1] == "False"


def test_building_imports_the_model_class_lazily() -> None:
    torch = pytest.importorskip("torch")
    for arch in ARCHS.values():
        # a lazy reference to a module class, which exists (a typo fails here, not at a build)
        assert isinstance(arch.builder, str) and arch.builder.startswith("scalelab.models.")
        module, _, name = arch.builder.partition(":")
        assert issubclass(getattr(importlib.import_module(module), name), torch.nn.Module)
    model = ARCHS["universal"].build(ModelConfig(arch="universal", n_layer=2, d_model=32))
    assert isinstance(model, torch.nn.Module)


def test_a_run_toml_with_glu_and_no_mlp_trains_with_swiglu(tmp_path: Path) -> None:
    p = tmp_path / "run.toml"
    p.write_text('[model]\narch = "glu"\nn_layer = 2\nd_model = 64\nn_head = 4\n')
    cfg = load_run_config(p)
    assert cfg.model.mlp == "swiglu"
    assert cfg.model.d_ff == 176  # the gated default width: 8/3 d_model, rounded up to 8
    assert load_run_config(overrides=["model.arch=glu"]).model.mlp == "swiglu"  # --set too
    # the transformer keeps its plain MLP, and a set value always wins
    assert load_run_config(overrides=["model.arch=transformer"]).model.mlp == "gelu"
    geglu = load_run_config(p, overrides=["model.mlp=geglu"]).model
    assert geglu.mlp == "geglu"
    with pytest.raises(ConfigError, match=r"set model\.mlp to one of swiglu"):
        load_run_config(p, overrides=["model.mlp=gelu"])


def test_the_run_id_hashes_the_resolved_value() -> None:
    """mlp = None resolves before hashing: a run directory made before the registry (with
    mlp written out) keeps its name, and leaving the default unset names the same run."""
    cfg = ModelConfig()
    assert cfg.mlp == "gelu" and dataclasses.asdict(cfg)["mlp"] == "gelu"
    implicit = load_run_config(overrides=["model.arch=glu"])
    explicit = load_run_config(overrides=["model.arch=glu", "model.mlp=swiglu"])
    assert implicit.run_id() == explicit.run_id()
    assert implicit.run_id() != load_run_config(overrides=["model.mlp=swiglu"]).run_id()


def test_an_architectures_defaults_name_fields_left_to_it() -> None:
    """Arch.defaults apply to fields a config leaves None, so each must default to None."""
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    for arch in ARCHS.values():
        for name in arch.defaults:
            assert defaults[name] is None, (arch.name, name)
        assert set(arch.fields) <= ARCH_ONLY_FIELDS <= set(defaults)


def test_every_model_config_is_checked_against_the_registry() -> None:
    with pytest.raises(ConfigError, match=r"not a known architecture; .*known: albert"):
        ModelConfig(arch="nope")
    with pytest.raises(ConfigError, match=r"model\.pool is used only by arch funnel"):
        ModelConfig(pool=4)
    with pytest.raises(ConfigError, match="causal only"):
        ModelConfig(arch="mixer", causal=False)
