"""``count(model, ...) -> Count``: exact parameters, FLOPs per token and memory, analytically.

Definitions (the same in the API, ``scalelab count --json`` and the docs):

* ``params.total``: every stored parameter, tied tensors once (Hoffmann et al. 2022 count N
  this way, embeddings included).
* ``params.non_embedding``: Kaplan et al. (2020, sec. 2.1): ``total`` minus the input embedding
  tables (token, position, token type) and an untied output head. The N of scaling-law fits.
* ``params.hf_non_embedding``: Hugging Face's ``num_parameters(exclude_embeddings=True)``:
  ``total`` minus the input embedding tables only; an untied head stays in.
* ``params.active``: parameters a token passes through; for a mixture of experts the shared
  parts plus ``top_k`` experts (= ``total`` for a dense model). ``active_non_embedding`` is its
  Kaplan counterpart, used by ``flops.kaplan``.
* ``flops.forward_per_token`` at sequence length T: 2 x every weight-matrix MAC a token costs
  (the LM head included even when tied; biases, norms and softmax left out, as in
  FlopCounterMode) + attention scores and values, ``4 T n_head head_dim`` per layer (the full
  T x T products dense kernels compute; ``causal=True`` counts only the unmasked half,
  ``(T + 1) / 2`` positions on average). ``train_per_token`` = 3 x forward (backward = 2 x
  forward, Kaplan et al. 2020 sec. 2.1). ``six_n`` = 6 N_active. ``kaplan`` = Kaplan's forward
  count ``2 N + 2 n_layer n_ctx d_attn`` (Table 1, N non-embedding). ``palm`` = the training
  count ``6 N + 12 L H Q T`` of Chowdhery et al. 2022 (App. B), N total (active).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scalelab import presets
from scalelab.accounting.blocks import COMPONENTS, Tally
from scalelab.accounting.hf import read_json, shape_from_json
from scalelab.accounting.memory import (
    DEFAULT_MFU,
    H100_BF16_DENSE_FLOPS,
    activation_bytes_per_token,
    adamw_bytes_per_param,
    check_dtype,
    nbytes,
    parse_count,
    parse_size,
)
from scalelab.accounting.transformer import tally_shape
from scalelab.architectures import get_arch
from scalelab.config import ModelConfig, RunConfig, read_toml, section_from_dict
from scalelab.errors import ConfigError

N_DEFINITIONS = ("total", "non_embedding", "hf_non_embedding", "active", "active_non_embedding")


@dataclass(frozen=True)
class Params:
    total: int
    non_embedding: int
    active: int
    embedding: int
    breakdown: dict[str, int]
    untied_head: int
    hf_non_embedding: int
    active_non_embedding: int

    def n(self, definition: str = "non_embedding") -> int:
        """N under one of the definitions in :data:`N_DEFINITIONS`."""
        if definition not in N_DEFINITIONS:
            raise ConfigError(
                f"N definition {definition!r} is not one of {', '.join(N_DEFINITIONS)}"
            )
        return int(getattr(self, definition))


@dataclass(frozen=True)
class Flops:
    seq_len: int
    causal: bool  # attention counted over unmasked (earlier) positions only
    forward_per_token: int
    train_per_token: int
    six_n: int
    kaplan: int
    palm: int
    matmul_per_token: int  # forward, weight matmuls (incl. the head)
    attention_per_token: int  # forward, attention scores and values


@dataclass(frozen=True)
class Memory:
    dtype: str  # of the weights and KV cache at inference
    batch: int
    seq_len: int
    weights_bytes: int
    train_bytes: int  # weights, gradients, fp32 master and Adam moments
    train_bytes_per_param: dict[str, int]
    kv_cache_bytes_per_token: int
    kv_cache_bytes: int  # batch x seq_len tokens
    inference_bytes: int  # weights + KV cache for batch x seq_len
    recompute: str
    activation_bytes_per_token: int  # Korthikanti et al. 2022, at seq_len, the chosen recompute
    activation_bytes_per_token_none: int
    activation_bytes_per_token_selective: int
    activation_bytes_per_token_full: int
    activation_bytes: int  # batch x seq_len tokens, the chosen recompute
    train_total_bytes: int  # train_bytes + activation_bytes


@dataclass(frozen=True)
class Fit:
    device_memory: int
    inference_fits: bool  # weights + KV cache for batch x seq_len
    max_inference_tokens: int | None  # KV-cache tokens beside the weights; None: no KV cache
    max_inference_batch: int | None  # sequences of seq_len; None: no KV cache to limit it
    train_fits: bool  # training state + activations of batch x seq_len on one device
    train_devices_zero3: int | None  # devices with the training state sharded (ZeRO-3); None: never
    train_devices_zero3_full_recompute: int | None  # the same with full activation recomputation


@dataclass(frozen=True)
class TrainingTime:
    tokens: float
    devices: int
    mfu: float
    peak_flops: float  # per device, FLOP/s
    flops: float  # train_per_token x tokens
    seconds: float
    days: float


@dataclass(frozen=True)
class Count:
    model: str
    params: Params
    flops: Flops
    memory: Memory
    fits: Fit | None = None
    training: TrainingTime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``scalelab count --json`` object; the key names are a contract."""
        return asdict(self)


def n_of(t: Tally, definition: str) -> int:
    """N of a tally under one of :data:`N_DEFINITIONS` (defined in this module's docstring)."""
    total = t.body.total
    excluded = t.embedding + t.untied_head
    return {
        "total": total,
        "non_embedding": total - excluded,
        "hf_non_embedding": total - t.embedding,
        "active": t.body.active,
        "active_non_embedding": t.body.active - excluded,
    }[definition]


def tally_of_config(cfg: ModelConfig) -> Tally:
    """The tally of a ``ModelConfig`` from its architecture's accounting function (torch-free:
    the registry holds it; the config was checked against the registry when it was made)."""
    return get_arch(cfg.arch).tally(cfg)


def _model_config_from_toml(path: Path) -> ModelConfig:
    values = read_toml(path)
    if "model" in values:  # a run config: only its [model] section matters here
        section = values["model"]
    elif any(isinstance(v, dict) for v in values.values()):
        raise ConfigError(f"{path}: a model TOML has a [model] section or top-level model keys")
    else:
        section = values
    # a file is user input: ModelConfig checks it against the registry (architecture-only
    # fields, the architecture's own checks) as load_run_config would
    return section_from_dict(ModelConfig, section, "model")


def resolve(
    model: ModelConfig | RunConfig | str | os.PathLike[str] | dict[str, Any],
) -> tuple[str, Tally]:
    """A display name and the tally of anything :func:`count` accepts."""
    if isinstance(model, RunConfig):
        model = model.model
    if isinstance(model, ModelConfig):
        return f"{model.arch} {model.n_layer}x{model.d_model}", tally_of_config(model)
    if isinstance(model, dict):
        return str(model.get("_name_or_path", "config")), tally_shape(
            shape_from_json(model, "config")
        )
    if not isinstance(model, (str, os.PathLike)):
        raise ConfigError(
            f"model must be a ModelConfig, a preset name or a path, got {type(model).__name__}"
        )
    text = os.fspath(model)
    if presets.is_preset(text):
        p = presets.get_preset(text)
        return p.name, tally_shape(shape_from_json(presets.preset_config(p.name), p.name))
    path = Path(text)
    if not path.exists():
        if path.suffix in (".json", ".toml") or os.sep in text or "/" in text:
            raise ConfigError(f"config file {text!r} does not exist")
        presets.get_preset(text)  # raises: unknown preset, with the nearest name
    if path.suffix == ".toml":
        return path.stem, tally_of_config(_model_config_from_toml(path))
    if path.is_dir():
        path = path / "config.json"
    name = path.parent.name if path.name == "config.json" else path.name
    name = name.removesuffix(".json").removesuffix(".params")
    return name, tally_shape(shape_from_json(read_json(path), str(path)))


def _positive_int(name: str, value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value != int(value)
        or value < 1
    ):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def count(
    model: ModelConfig | RunConfig | str | os.PathLike[str] | dict[str, Any],
    *,
    seq_len: int | None = None,
    batch: int = 1,
    dtype: str = "bf16",
    causal: bool = False,
    recompute: str = "none",
    grad_dtype: str = "bf16",
    device_memory: int | float | str | None = None,
    tokens: int | float | str | None = None,
    devices: int = 1,
    mfu: float = DEFAULT_MFU,
    peak_flops: float | str = H100_BF16_DENSE_FLOPS,
) -> Count:
    """Parameters, FLOPs per token and memory of ``model``, without allocating a tensor.

    ``model``: a ``ModelConfig`` / ``RunConfig``, a preset name (``scalelab presets``), a
    path to a model TOML (a run config's ``[model]`` section or bare model keys), or a path to
    a Hugging Face ``config.json`` / Meta ``params.json`` (or a parsed config dict).

    ``seq_len`` (default: the model's context) sets attention FLOPs, the KV cache and
    activations; ``batch`` sequences of it size the cache and activations. ``dtype`` is that of
    weights and KV cache at inference; training is mixed-precision AdamW with ``grad_dtype``
    gradients. ``recompute`` (``none``, ``selective``, ``full``) picks the activation memory.
    ``device_memory`` (``"80GiB"``, ``"80GB"``, ``8e10``) adds what fits on one device;
    ``tokens`` adds the training time on ``devices`` devices of ``peak_flops`` FLOP/s at ``mfu``.
    """
    name, t = resolve(model)
    if seq_len is None:
        if t.context is None:
            raise ConfigError(f"{name} does not state its context length: pass seq_len (--seq-len)")
        seq_len = t.context
    seq_len = _positive_int("seq_len", seq_len)
    batch = _positive_int("batch", batch)
    dtype = check_dtype(dtype)
    body = t.body

    # parameters
    total = body.total
    breakdown = {k: body.params.get(k, 0) for k in COMPONENTS}
    breakdown.update({k: v for k, v in body.params.items() if k not in breakdown})
    params = Params(
        total=total,
        non_embedding=n_of(t, "non_embedding"),
        active=body.active,
        embedding=t.embedding,
        breakdown=breakdown,
        untied_head=t.untied_head,
        hf_non_embedding=n_of(t, "hf_non_embedding"),
        active_non_embedding=n_of(t, "active_non_embedding"),
    )

    # FLOPs per token; causal attention sees (T + 1) / 2 positions on average
    matmul = 2 * body.macs
    causal = causal and t.causal  # an encoder attends both ways whatever is asked
    if causal:
        attn = body.mix_macs_per_position * (seq_len + 1) + 2 * body.mix_macs
    else:
        attn = 2 * body.mix_macs_per_position * seq_len + 2 * body.mix_macs
    forward = matmul + attn
    mixing_full = body.mix_macs_per_position * seq_len  # Kaplan's 2 n_layer n_ctx d_attn
    flops = Flops(
        seq_len=seq_len,
        causal=causal,
        forward_per_token=forward,
        train_per_token=3 * forward,
        six_n=6 * params.active,
        kaplan=2 * params.active_non_embedding + mixing_full,
        palm=6 * params.active + 6 * mixing_full,
        matmul_per_token=matmul,
        attention_per_token=attn,
    )

    # memory
    per_param = adamw_bytes_per_param(grad_dtype)
    acts = {
        mode: activation_bytes_per_token(t.n_layer, t.d_model, t.n_head, seq_len, mode)
        for mode in ("none", "selective", "full")
    }
    if recompute not in acts:
        activation_bytes_per_token(t.n_layer, t.d_model, t.n_head, seq_len, recompute)  # raises
    tokens_in_flight = batch * seq_len
    weights = nbytes(total, dtype)
    kv_per_token = nbytes(body.kv, dtype)
    train_bytes = total * sum(per_param.values())
    activation_bytes = acts[recompute] * tokens_in_flight
    memory = Memory(
        dtype=dtype,
        batch=batch,
        seq_len=seq_len,
        weights_bytes=weights,
        train_bytes=train_bytes,
        train_bytes_per_param=per_param,
        kv_cache_bytes_per_token=kv_per_token,
        kv_cache_bytes=kv_per_token * tokens_in_flight,
        inference_bytes=weights + kv_per_token * tokens_in_flight,
        recompute=recompute,
        activation_bytes_per_token=acts[recompute],
        activation_bytes_per_token_none=acts["none"],
        activation_bytes_per_token_selective=acts["selective"],
        activation_bytes_per_token_full=acts["full"],
        activation_bytes=activation_bytes,
        train_total_bytes=train_bytes + activation_bytes,
    )

    fits = None
    if device_memory is not None:
        m = parse_size(device_memory, "device_memory")
        room = max(m - weights, 0)
        max_tokens = room // kv_per_token if kv_per_token else None
        spare = m - activation_bytes
        spare_full = m - acts["full"] * tokens_in_flight
        fits = Fit(
            device_memory=m,
            inference_fits=memory.inference_bytes <= m,
            max_inference_tokens=max_tokens,
            max_inference_batch=None if max_tokens is None else max_tokens // seq_len,
            train_fits=memory.train_total_bytes <= m,
            train_devices_zero3=math.ceil(train_bytes / spare) if spare > 0 else None,
            train_devices_zero3_full_recompute=(
                math.ceil(train_bytes / spare_full) if spare_full > 0 else None
            ),
        )

    # the training-time options are checked whether or not a time is asked for, so a bad
    # value is never silently ignored
    n_devices = _positive_int("devices", devices)
    if isinstance(mfu, bool) or not isinstance(mfu, (int, float)) or not 0 < mfu <= 1:
        raise ConfigError(f"mfu is a fraction of the peak in (0, 1], got {mfu!r}")
    peak = parse_count(peak_flops, "peak_flops")
    training = None
    if tokens is not None:
        n_tokens = parse_count(tokens, "tokens")
        total_flops = flops.train_per_token * n_tokens
        seconds = total_flops / (n_devices * peak * mfu)
        training = TrainingTime(
            tokens=n_tokens,
            devices=n_devices,
            mfu=float(mfu),
            peak_flops=peak,
            flops=total_flops,
            seconds=seconds,
            days=seconds / 86400,
        )
    return Count(
        model=name, params=params, flops=flops, memory=memory, fits=fits, training=training
    )
