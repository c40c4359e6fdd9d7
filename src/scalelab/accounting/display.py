"""Readable tables of a :class:`Count` and of the presets (what ``scalelab count`` prints)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scalelab.accounting.core import Count
from scalelab.accounting.memory import format_bytes

if TYPE_CHECKING:
    from rich.table import Table


def human(n: float) -> str:
    """``8.03 B``, ``124 M``, ``70.4 k`` for parameter counts."""
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f}"


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
