"""Real model shapes, by common name: one table of data.

Each preset points at a Hugging Face ``config.json`` shipped in ``scalelab/reference/configs``
(sources in ``reference/SOURCE.md``), so a preset is counted by the same code as any
config.json a user passes. ``list_presets()`` and ``scalelab presets`` list them; ``scalelab count NAME`` counts one.
Pure data: the table with counts is :func:`scalelab.accounting.display.presets_table`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from scalelab.errors import ConfigError, did_you_mean

CONFIG_DIR = Path(__file__).parent / "reference" / "configs"


@dataclass(frozen=True)
class Preset:
    name: str  # common name, lower case
    config: str  # file in reference/configs
    family: str
    description: str
    aliases: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return CONFIG_DIR / self.config


# name, config file, family, description, aliases
_TABLE: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("gpt2", "gpt2.json", "GPT-2", "OpenAI 2019, 124M", ("gpt2-small",)),
    ("gpt2-medium", "gpt2-medium.json", "GPT-2", "OpenAI 2019, 355M", ()),
    ("gpt2-large", "gpt2-large.json", "GPT-2", "OpenAI 2019, 774M", ()),
    ("gpt2-xl", "gpt2-xl.json", "GPT-2", "OpenAI 2019, 1.5B", ()),
    ("bert-base-uncased", "bert-base-uncased.json", "BERT", "Google 2018, encoder, MLM head", ("bert-base",)),
    ("pythia-70m", "pythia-70m.json", "Pythia", "EleutherAI 2023", ()),
    ("pythia-160m", "pythia-160m.json", "Pythia", "EleutherAI 2023", ()),
    ("pythia-410m", "pythia-410m.json", "Pythia", "EleutherAI 2023", ()),
    ("pythia-1b", "pythia-1b.json", "Pythia", "EleutherAI 2023", ()),
    ("pythia-1.4b", "pythia-1.4b.json", "Pythia", "EleutherAI 2023", ()),
    ("pythia-2.8b", "pythia-2.8b.json", "Pythia", "EleutherAI 2023", ()),
    ("pythia-6.9b", "pythia-6.9b.json", "Pythia", "EleutherAI 2023", ()),
    ("pythia-12b", "pythia-12b.json", "Pythia", "EleutherAI 2023", ()),
    ("llama-2-7b", "llama-2-7b.json", "Llama", "Meta 2023", ("llama2-7b",)),
    ("llama-3.2-3b", "llama-3.2-3b.json", "Llama", "Meta 2024, tied embeddings", ()),
    ("llama-3.1-8b", "llama-3.1-8b.json", "Llama", "Meta 2024, GQA", ("llama3.1-8b",)),
    ("llama-3.1-70b", "llama-3.1-70b.json", "Llama", "Meta 2024, GQA", ("llama3.1-70b",)),
    ("llama-3.1-405b", "llama-3.1-405b.json", "Llama", "Meta 2024, GQA", ("llama3.1-405b",)),
    ("mixtral-8x7b", "mixtral-8x7b.json", "Mixtral", "Mistral AI 2023, MoE 8 experts, top-2", ()),
    ("qwen2.5-14b", "qwen2.5-14b.json", "Qwen", "Alibaba 2024, QKV biases", ()),
    ("qwen3-14b", "qwen3-14b.json", "Qwen", "Alibaba 2025, QK norms", ()),
    ("qwen3-30b-a3b", "qwen3-30b-a3b.json", "Qwen", "Alibaba 2025, MoE 128 experts, top-8", ()),
    ("orion-14b", "orion-14b.json", "Orion", "OrionStar 2024, Llama layout + LayerNorm (reconstructed)", ()),
)  # fmt: skip

PRESETS: dict[str, Preset] = {row[0]: Preset(*row) for row in _TABLE}
_BY_ALIAS: dict[str, str] = {a: p.name for p in PRESETS.values() for a in (p.name, *p.aliases)}


def list_presets() -> list[Preset]:
    """Every preset, in table order (by family, then size)."""
    return list(PRESETS.values())


def get_preset(name: str) -> Preset:
    key = name.strip().lower()
    if key not in _BY_ALIAS:
        raise ConfigError(
            f"unknown preset {name!r}{did_you_mean(key, _BY_ALIAS)}; "
            "`scalelab presets` lists them (or pass a path to a config.json / model TOML)"
        )
    return PRESETS[_BY_ALIAS[key]]


def is_preset(name: str) -> bool:
    return name.strip().lower() in _BY_ALIAS


@cache
def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def preset_config(name: str) -> dict[str, Any]:
    """The Hugging Face config of a preset, as a fresh dict."""
    return dict(_load(get_preset(name).path))
