"""Readable tables of a :class:`Count`, of the model presets and of the architectures (what
``scalelab count``, ``presets`` and ``archs`` print, and their ``--json``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scalelab.accounting.core import Count, count
from scalelab.accounting.memory import format_bytes
from scalelab.architectures import ARCHS
from scalelab.config import ModelConfig, example_config
from scalelab.fmt import si
from scalelab.presets import list_presets

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table


def presets_table(seq_len: int | None = None) -> pd.DataFrame:
    """One row per model preset with its parameter counts and FLOPs per token."""
    import pandas as pd

    rows = []
    for p in list_presets():
        c = count(p.name, seq_len=seq_len)
        rows.append(
            {
                "name": p.name,
                "family": p.family,
                "total": c.params.total,
                "non_embedding": c.params.non_embedding,
                "active": c.params.active,
                "embedding": c.params.embedding,
                "seq_len": c.flops.seq_len,
                "forward_flops_per_token": c.flops.forward_per_token,
                "description": p.description,
            }
        )
    return pd.DataFrame(rows)


def archs_table(causal: bool = True, **shape: Any) -> pd.DataFrame:
    """One row per architecture: its inductive bias, its own config fields (a dict of their
    defaults; None: derived from the shape), whether it has a bidirectional variant, and its
    parameters and FLOPs per token at one shape (``example_config(arch, **shape)``;
    ModelConfig's 4 x 128 by default). ``causal`` counts attention over earlier positions
    only, as the trainer records it. Torch-free, like every count."""
    import dataclasses

    import pandas as pd

    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    rows = []
    for arch in ARCHS.values():
        cfg = example_config(arch.name, **shape)
        c = count(cfg, causal=causal)
        own = {**{f: defaults[f] for f in arch.fields}, **arch.defaults}
        rows.append(
            {
                "arch": arch.name,
                "description": arch.description,
                "fields": own,
                "bidirectional": arch.bidirectional,
                "n_layer": cfg.n_layer,
                "d_model": cfg.d_model,
                "params": c.params.total,
                "non_embedding": c.params.non_embedding,
                "active": c.params.active,
                "train_flops_per_token": c.flops.train_per_token,
            }
        )
    return pd.DataFrame(rows)


def human(n: float) -> str:
    """``8.03 B``, ``124 M``, ``70.4 k`` for parameter counts."""
    return si(n, billion="B", sep=" ")


def duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.1f} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def _table(title: str | None = None) -> Table:
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    t.add_column("quantity", style="bold", no_wrap=True)
    t.add_column("value", justify="right", no_wrap=True)
    t.add_column("note", style="dim")
    return t


def count_table(c: Count) -> Table:
    p, f, m = c.params, c.flops, c.memory
    t = _table(f"{c.model}: seq_len {f.seq_len}, batch {m.batch}, {m.dtype}")

    def section(name: str) -> None:
        t.add_row(f"[underline]{name}[/]", "", "")

    section("parameters")
    t.add_row("total", f"{p.total:,}", human(p.total))
    t.add_row("non-embedding", f"{p.non_embedding:,}", "Kaplan's N")
    if p.active != p.total:
        t.add_row("active per token", f"{p.active:,}", human(p.active))
        t.add_row("  non-embedding", f"{p.active_non_embedding:,}", "")
    t.add_row("embedding", f"{p.embedding:,}", "input tables")
    if p.untied_head:
        t.add_row("untied head", f"{p.untied_head:,}", "")
    for name, n in p.breakdown.items():
        if n:
            t.add_row(f"  {name}", f"{n:,}", f"{100 * n / p.total:.1f}%")

    section("FLOPs per token")
    mask = "causal" if f.causal else "full T x T"
    t.add_row(
        "forward", f"{f.forward_per_token:.4g}", f"attention {f.attention_per_token:.3g}, {mask}"
    )
    t.add_row("train", f"{f.train_per_token:.4g}", "3 x forward")
    t.add_row("6N", f"{f.six_n:.4g}", "N active")
    t.add_row("Kaplan (forward)", f"{f.kaplan:.4g}", "2N + 2 L T d_attn")
    t.add_row("PaLM (train)", f"{f.palm:.4g}", "6N + 12 L H Q T")

    section("memory")
    t.add_row(f"weights ({m.dtype})", format_bytes(m.weights_bytes), "")
    bpp = m.train_bytes_per_param
    short = {"weights": "w", "gradients": "grad", "master": "master", "adam_m": "m", "adam_v": "v"}
    t.add_row(
        "training state", format_bytes(m.train_bytes), f"AdamW, {sum(bpp.values())} B/param ="
    )
    t.add_row("", "", " + ".join(f"{short.get(k, k)} {v}" for k, v in bpp.items()))
    t.add_row("KV cache per token", format_bytes(m.kv_cache_bytes_per_token), "")
    t.add_row("KV cache", format_bytes(m.kv_cache_bytes), f"{m.batch} x {m.seq_len} tokens")
    t.add_row("inference total", format_bytes(m.inference_bytes), "weights + KV cache")
    t.add_row(
        "activations/token",
        format_bytes(m.activation_bytes_per_token_none),
        "Korthikanti et al. 2022",
    )
    t.add_row("  selective recompute", format_bytes(m.activation_bytes_per_token_selective), "")
    t.add_row("  full recompute", format_bytes(m.activation_bytes_per_token_full), "")
    t.add_row("training total", format_bytes(m.train_total_bytes), f"recompute {m.recompute}")

    if c.fits is not None:
        fit = c.fits
        section(f"fits on {format_bytes(fit.device_memory)}")
        t.add_row(
            "inference", "yes" if fit.inference_fits else "no", f"{m.batch} x {m.seq_len} tokens"
        )
        if fit.max_inference_tokens is not None:
            t.add_row("  largest batch", f"{fit.max_inference_batch:,}", f"x {m.seq_len} tokens")
        t.add_row(
            "training, 1 device", "yes" if fit.train_fits else "no", f"recompute {m.recompute}"
        )

        def devices(n: int | None) -> str:
            return "never" if n is None else f"{n:,} devices"

        t.add_row("training, ZeRO-3", devices(fit.train_devices_zero3), "state sharded")
        if m.recompute != "full":
            t.add_row("  full recompute", devices(fit.train_devices_zero3_full_recompute), "")

    if c.training is not None:
        tr = c.training
        section("training time")
        t.add_row("time", duration(tr.seconds), f"{tr.flops:.3g} FLOPs for {tr.tokens:.3g} tokens")
        t.add_row(
            "", "", f"{tr.devices:,} x {tr.peak_flops / 1e12:.0f} TFLOP/s at {tr.mfu:.0%} MFU"
        )
    return t


def presets_rich_table(rows: list[tuple[str, str, Count]]) -> Table:
    from rich.table import Table

    t = Table(box=None, pad_edge=False)
    t.add_column("preset", no_wrap=True)
    t.add_column("family", no_wrap=True)
    t.add_column("total", justify="right", no_wrap=True)
    t.add_column("non-embedding", justify="right", no_wrap=True)
    t.add_column("active", justify="right", no_wrap=True)
    for name, family, c in rows:
        p = c.params
        t.add_row(name, family, f"{p.total:,}", f"{p.non_embedding:,}", human(p.active))
    return t
