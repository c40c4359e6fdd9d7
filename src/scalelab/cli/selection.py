"""Data selection: ``select``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from scalelab.cli._app import QuietOption, app, say

PANEL = "Select data"


@app.command("select", rich_help_panel=PANEL)
def select_cmd(
    corpus: Annotated[
        str,
        typer.Argument(help="Corpus spec (python-stdlib, text:PATH, jsonl:PATH:FIELD, ...)."),
    ],
    method: Annotated[
        str,
        typer.Option("--method", help="random, dedup, perplexity, prototype or active."),
    ],
    out: Annotated[Path, typer.Option("--out", help="The selection JSON to write.")],
    keep: Annotated[
        float | None,
        typer.Option(
            "--keep",
            help="Share of the training tokens to keep, in (0, 1] (dedup without it: "
            "drop exactly the duplicates).",
        ),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="A finished run directory: the scoring model (perplexity, prototype) or "
            "the config of each round's small model (active).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of draws, ties and k-means.")] = 0,
    unit: Annotated[
        str, typer.Option("--unit", help="doc (training documents) or chunk (fixed-size).")
    ] = "doc",
    chunk_tokens: Annotated[
        int | None, typer.Option("--chunk-tokens", help="Tokens per chunk (--unit chunk).")
    ] = None,
    order: Annotated[
        str | None,
        typer.Option(
            "--order",
            help="perplexity: low, middle or high (default low); prototype: hard or easy "
            "(default hard).",
        ),
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="dedup: Jaccard threshold (0.8).")
    ] = None,
    shingle: Annotated[
        int | None, typer.Option("--shingle", help="dedup: words per shingle (3).")
    ] = None,
    k: Annotated[int | None, typer.Option("--k", help="prototype: k-means clusters (16).")] = None,
    rounds: Annotated[
        int | None, typer.Option("--rounds", help="active: rounds of training (3).")
    ] = None,
    cache_dir: Annotated[
        str | None,
        typer.Option("--cache-dir", help="Default: $SCALELAB_CACHE or ~/.cache/scalelab."),
    ] = None,
    quiet: QuietOption = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the selection's summary as JSON.")
    ] = False,
) -> None:
    """Score every training document (or chunk) of a corpus and keep a share: a file for
    data.select. Validation is never scored or kept."""
    from scalelab.cli import checks
    from scalelab.select import select

    checks.seed(seed, "--seed")
    checks.out_file(out, "--out")
    sel = select(
        corpus,
        method,
        keep,
        reference=reference,
        seed=seed,
        unit=unit,
        chunk_tokens=chunk_tokens,
        order=order,
        threshold=threshold,
        shingle=shingle,
        k=k,
        rounds=rounds,
        cache_dir=cache_dir,
        out=out,
        progress=not quiet,
    )
    info = {
        **sel.summary(),
        "out": str(out),
        "seconds": sel.seconds,
        **{
            k_: v
            for k_, v in sel.extra.items()
            if k_ not in ("clusters", "rounds", "cluster_sizes")
        },
    }
    if as_json:
        print(json.dumps(info, indent=1))
        return
    say(
        f"{sel.label}: kept {len(sel.kept)} of {sel.n_units} {sel.unit}s, "
        f"{sel.tokens.get('kept', 0):,} of {sel.tokens.get('total', 0):,} training tokens "
        f"({sel.kept_fraction:.1%}) in {sel.seconds or 0:.1f} s -> {out}"
    )
    if sel.method == "dedup":
        say(
            f"duplicates: {sel.extra['duplicates']} in {len(sel.extra['clusters'])} clusters "
            f"({sel.extra['exact_pairs']} exact, {sel.extra['near_pairs']} near pairs at "
            f"Jaccard >= {sel.params['threshold']})"
        )
        for c in sel.extra["clusters"][:10]:
            say(f"  {len(c['ids']):4d} x {c['kind']:5s} {c['preview']}")
    if sel.method == "active":
        for r in sel.extra["rounds"]:
            say(
                f"  round {r['round']}: trained on {r['kept_fraction']:.1%} (run {r['run_id']}, "
                f"val loss {r['val_loss']:.4f}), added {len(r['added'])} units"
            )
