"""The overoptimisation driver (Gao et al.'s protocol) and the gold reward model it measures
with: checks of the design before any work, and one tiny run of the whole chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from scalelab.errors import ConfigError
from scalelab.posttrain.overopt import check_design

SIZES = ["d8", "d16", "d24"]
GOOD = {"task": "sort", "policy": "d16", "gold": "d24", "proxies": ["d8", "d16"]}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"proxies": ["d8", "d12"]}, "proxies.1. = 'd12' is not a size"),
        ({"gold": "d256"}, "overopt.gold = 'd256'"),
        ({"pairs": 100, "pair_counts": [50, 200]}, "pair_counts go up to 200"),
        ({"pairs": 0}, "overopt.pairs must be a positive integer"),
        ({"best_of": [1, 3, 4]}, "does not divide"),
        ({"rl_kl_coefs": [-0.1]}, "kl_coef must be >= 0"),
        ({"rl": {"stepz": 3}}, "stepz"),
        ({"gold_rm": 5}, "overopt.gold_rm is a table"),
        ({"proxys": ["d8"]}, "unknown key overopt.proxys"),
        ({"task": "chess"}, "chess"),
    ],
)
def test_a_bad_design_is_refused_before_any_work(change: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        check_design({**GOOD, **change}, SIZES)


def test_a_missing_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"overopt\.gold is required"):
        check_design({k: v for k, v in GOOD.items() if k != "gold"}, SIZES)


def test_the_design_reads_its_settings() -> None:
    d = check_design({**GOOD, "rl": {"steps": 7}, "rl_kl_coefs": [0, 0.5]}, SIZES)
    assert d.cfg("rl", kl_coef=0.5).steps == 7
    assert d.cfg("rl", kl_coef=0.5).kl_coef == 0.5
    assert d.cfg("bon").steps == 200  # the default where the table says nothing
    assert d.rl_kl_coefs == (0.0, 0.5)


def _study(root: Path) -> dict[str, Any]:
    from scalelab.posttrain import write_corpus

    corpus = write_corpus("sort", root / "sort.jsonl", 3000)
    return {
        "study": {
            "name": "overopt-tiny",
            "corpus": f"jsonl:{corpus}:text",
            "tokenizer": "bytes",
            "arch": "transformer",
            "tokens": [40_000],
            "seeds": [0],
            "sizes": [{"name": n, "d_model": int(n[1:])} for n in SIZES],
        },
        "model": {"vocab_size": 258, "context": 32, "n_layer": 1, "n_head": 2},
        "data": {"cache_dir": str(root / "cache")},
        "train": {"batch_size": 16, "lr": 3e-3, "eval_every": 1000, "precision": "fp32"},
        "overopt": {
            **GOOD,
            "gold_pairs": 120,
            "pairs": 60,
            "test_pairs": 40,
            "pair_counts": [30],
            "pair_count_size": "d8",
            "best_of": [1, 4],
            "rl_kl_coefs": [0.0],
            "gold_rm": {"steps": 6, "batch_size": 8, "eval_every": 6},
            "proxy_rm": {"steps": 4, "batch_size": 8, "eval_every": 4},
            "bon": {"kl_prompts": 6},
            "rl": {
                "steps": 2,
                "batch_size": 2,
                "group": 2,
                "eval_every": 1,
                "kl_prompts": 4,
                "eval_prompts": 8,
            },
        },
    }


def test_the_whole_chain_measures_with_the_gold_reward_model(tmp_path: Path) -> None:
    """Gold RM on grader pairs -> proxies on gold-labelled pairs -> best-of-n and RL measured
    by the gold RM: the proxies' pairs carry the gold RM's scores, best-of-n at n = 1 is the
    gold RM's mean over the very samples drawn, and every curve names the gold."""
    from scalelab.posttrain.overopt import run_overopt
    from scalelab.posttrain.pairs import read_pairs
    from scalelab.posttrain.rewardmodel import rewards, score_text
    from scalelab.posttrain.rollout import sample
    from scalelab.posttrain.stage import (
        build_lm,
        is_reward_model,
        open_policy,
        stage_record,
        tokenizer_of,
    )
    from scalelab.posttrain.tasks import get_verifiable, prompts
    from scalelab.runs import open_run
    from scalelab.study import load_points

    db = tmp_path / "o.db"
    r = run_overopt(_study(tmp_path), db=db, runs=tmp_path / "runs")
    assert json.loads((tmp_path / "runs" / "overopt.json").read_text())["gold"] == r["gold"]
    gold = open_policy(r["gold"]["run_dir"])
    assert is_reward_model(gold) and stage_record(gold)["reward"] == "grader"
    assert [p["size"] for p in r["proxies"]] == ["d8", "d16"]
    assert [p["pairs"] for p in r["pair_curve"]] == [30]
    for p in [*r["proxies"], *r["pair_curve"]]:
        assert stage_record(open_policy(p["run_dir"]))["posttrain"]["pairs_file"] == r["pairs_file"]
        assert p["test_accuracy_lo"] <= p["test_accuracy"] <= p["test_accuracy_hi"]

    # the proxies' pairs: the gold RM's scores, the higher one chosen
    tok = tokenizer_of(gold)
    gold_rm = build_lm(gold).eval()
    pairs = read_pairs(r["pairs_file"], "sort")
    assert len(pairs) == 100
    ps = [p.prompt for p in pairs[:10]]
    chosen, _ = score_text(gold_rm, tok, "sort", ps, [p.chosen for p in pairs[:10]])
    rejected, _ = score_text(gold_rm, tok, "sort", ps, [p.rejected for p in pairs[:10]])
    assert chosen == pytest.approx([p.gold_chosen for p in pairs[:10]], abs=1e-5)
    assert all(c > rj for c, rj in zip(chosen, rejected, strict=True))

    pts = load_points(db, kind="posttrain", extra=True)
    bon = pts[pts["method"] == "bon"]
    rl = pts[pts["method"] == "rl"]
    assert len(bon) == 2 * 2 and len(rl) >= 2 * 3  # two proxies; n = 1, 4; steps 0..2 + summary
    assert set(bon["gold"]) == {gold.run_id} and set(rl["gold"].dropna()) == {gold.run_id}
    assert (bon["gold_N"] > bon["reward_N"]).all()

    # best-of-n at n = 1 keeps every sample: its gold reward is the gold RM's mean over them
    policy = open_policy(r["policy_dir"])
    first = next(c for c in r["curves"] if c["method"] == "bon")
    stage = open_run(first["run_dir"], initial=True)  # a best-of-n stage: no weights
    val = [p for p, _ in prompts("sort", "val", 6, stage_record(stage)["posttrain"]["seed"] + 1)]
    g = torch.Generator().manual_seed(stage_record(stage)["posttrain"]["seed"])
    draws = sample(
        build_lm(policy).eval(),
        tok,
        [p for p in val for _ in range(4)],
        get_verifiable("sort").max_answer + 1,
        generator=g,
    )
    with torch.no_grad():  # scored as sampled (a completion cut at the width has no eos)
        want = rewards(gold_rm, draws.prompt_ids, draws.new_ids, draws.mask).tolist()
    n1 = bon[(bon["run_id"] == f"{stage.run_id}-n1")].iloc[0]
    assert n1["gold_reward"] == pytest.approx(sum(want) / len(want), abs=1e-5)
    assert 0.0 <= n1["grader_reward"] <= 1.0

    from scalelab.posttrain.overopt_tables import markdown

    text = markdown(db, r, bootstrap=5)
    assert "| d8 |" in text and "| d16 |" in text and "| 30 |" in text
    assert text.count("| pt-rl-") == 2  # one RL run per proxy at the one KL coefficient


def test_the_command_refuses_a_bad_design_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    study = tmp_path / "s.toml"
    study.write_text(
        '[study]\nname = "s"\ncorpus = "jsonl:x.jsonl:text"\ntokenizer = "bytes"\n'
        'tokens = [1e4]\n[[study.sizes]]\nname = "d8"\nd_model = 8\n'
        "[model]\nvocab_size = 258\ncontext = 32\nn_layer = 1\nn_head = 2\n"
        '[overopt]\ntask = "dyck"\npolicy = "d8"\ngold = "d16"\nproxies = ["d8"]\n'
    )
    r = subprocess.run(
        [sys.executable, "-c", "from scalelab.cli import main; main()", "overopt", str(study),
         "--runs", str(tmp_path / "runs")],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert r.returncode == 2
    assert "overopt.gold = 'd16' is not a size" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # checked before any work
