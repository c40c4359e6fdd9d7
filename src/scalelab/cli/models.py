"""How big is it: ``count``, ``presets`` (models and published laws), ``archs``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from scalelab.accounting.memory import DTYPE_BYTES, RECOMPUTE
from scalelab.cli import render
from scalelab.cli._app import app, console

PANEL = "How big is it"


@app.command("count", rich_help_panel=PANEL)
def count_cmd(
    model: Annotated[
        str,
        typer.Argument(
            help="A preset (see `scalelab presets`), a config.json / params.json, or a model TOML."
        ),
    ],
    seq_len: Annotated[
        int | None,
        typer.Option("--seq-len", "-T", help="Sequence length (default: the model's context)."),
    ] = None,
    batch: Annotated[
        int, typer.Option("--batch", "-b", help="Sequences held at once (KV cache, activations).")
    ] = 1,
    dtype: Annotated[
        str, typer.Option("--dtype", help=f"Inference dtype: {', '.join(DTYPE_BYTES)}.")
    ] = "bf16",
    device_memory: Annotated[
        str | None,
        typer.Option("--device-memory", help="Memory of one device: 80GiB, 80GB or 8e10."),
    ] = None,
    tokens: Annotated[
        str | None,
        typer.Option("--tokens", help="Training tokens, e.g. 15.6e12 or 15.6T: adds a time."),
    ] = None,
    devices: Annotated[int, typer.Option("--devices", help="Devices training together.")] = 1,
    mfu: Annotated[
        float, typer.Option("--mfu", help="Model FLOP utilisation, a fraction of the peak.")
    ] = 0.4,
    peak_flops: Annotated[
        str,
        typer.Option(
            "--peak-flops", help="Peak FLOP/s of one device (default: H100 SXM, dense BF16)."
        ),
    ] = "989e12",
    recompute: Annotated[
        str, typer.Option("--recompute", help=f"Activation recomputation: {', '.join(RECOMPUTE)}.")
    ] = "none",
    causal: Annotated[
        bool, typer.Option("--causal", help="Count attention FLOPs over earlier tokens only.")
    ] = False,
    grad_dtype: Annotated[
        str,
        typer.Option("--grad-dtype", help="Gradient dtype in training: bf16 (16 B/param) or fp32."),
    ] = "bf16",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """How big is this model: exact parameters, FLOPs per token and memory."""
    from scalelab.accounting import count

    c = count(
        model,
        seq_len=seq_len,
        batch=batch,
        dtype=dtype,
        device_memory=device_memory,
        tokens=tokens,
        devices=devices,
        mfu=mfu,
        peak_flops=peak_flops,
        recompute=recompute,
        causal=causal,
        grad_dtype=grad_dtype,
    )
    if json_out:
        print(json.dumps(c.to_dict(), indent=2))
        return
    from scalelab.accounting.display import count_table

    console.print(count_table(c))


@app.command("presets", rich_help_panel=PANEL)
def presets_cmd(
    laws: Annotated[
        bool, typer.Option("--laws", help="List the published scaling laws instead.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Every model preset with its parameters, or (--laws) every published law."""
    if laws:
        rows = render.law_presets_rows()
        if json_out:
            print(json.dumps(rows, indent=2))
        else:
            render.law_presets_table(rows)
        return
    from scalelab.accounting import count
    from scalelab.presets import list_presets

    found = [(p.name, p.family, count(p.name), p.description) for p in list_presets()]
    if json_out:
        keys = ("total", "non_embedding", "active", "embedding")
        print(
            json.dumps(
                [
                    {"name": name, "family": family, "description": description,
                     **{k: getattr(c.params, k) for k in keys}}
                    for name, family, c, description in found
                ],
                indent=2,
            )
        )  # fmt: skip
        return
    from scalelab.accounting.display import presets_rich_table

    console.print(presets_rich_table([(name, family, c) for name, family, c, _ in found]))


@app.command("archs", rich_help_panel=PANEL)
def archs_cmd(
    n_layer: Annotated[
        int, typer.Option("--n-layer", help="Shape at which to count each architecture.")
    ] = 4,
    d_model: Annotated[int, typer.Option("--d-model")] = 128,
    n_head: Annotated[int, typer.Option("--n-head")] = 4,
    context: Annotated[int, typer.Option("--context")] = 128,
    vocab_size: Annotated[int, typer.Option("--vocab-size")] = 512,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Every architecture: its inductive bias, its own config fields, and its size at one shape."""
    from scalelab.accounting.display import archs_table

    table = archs_table(
        n_layer=n_layer, d_model=d_model, n_head=n_head, context=context, vocab_size=vocab_size
    )
    if json_out:
        print(table.to_json(orient="records", indent=2))
        return
    render.archs_table(table, n_layer, d_model, n_head, context, vocab_size)
