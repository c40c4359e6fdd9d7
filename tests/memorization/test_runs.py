"""A tiny run on a facts corpus with canaries, measured end to end (API, store, CLI)."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from scalelab.config import load_run_config
from scalelab.errors import FitError, StoreError
from scalelab.memorization.analysis import capacity_points, fit_capacity
from scalelab.memorization.capacity import capacity
from scalelab.memorization.extraction import memorization
from scalelab.results.points import load_points
from scalelab.results.records import point_row, read_run
from scalelab.results.store import Store
from scalelab.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("mem")
    cfg = load_run_config(
        None,
        [
            "model.n_layer=1",
            "model.d_model=16",
            "model.n_head=2",
            "model.vocab_size=293",
            "model.context=48",
            "data.corpus='facts:people=40,attributes=3'",
            f"data.cache_dir='{root / 'cache'}'",
            "data.canaries={count=2, length=8, prefix=8, repeats=[1, 4]}",
            "train.tokens=24000",
            "train.lr=0.02",  # stores some bits (~58), so the forms differ
            "train.batch_size=8",
            "train.precision='fp32'",
            "train.eval_every=20",
        ],
    )
    summary = train(cfg, root / "runs", progress=False)
    db = root / "results.db"
    rec = read_run(root / "runs" / summary.run_id)
    with Store(db) as store:
        store.put_point(point_row(rec, study="tiny"))
    return root / "runs" / summary.run_id, db, summary


def _hand_count(run_dir) -> tuple[dict[str, float], float]:
    """Mean bits per person of each attribute, and the stored bits, counted by hand: each
    training biography read by the run's model in a row of its own after an eos."""
    import torch

    from scalelab.data.facts import FactsSource, attribute_choices
    from scalelab.runs import open_run

    run = open_run(run_dir)
    cfg, model = run.cfg, run.load_model(fork_rng=False)
    src = FactsSource(people=40, attributes=3)
    tokens, lay = src.layout("train", cfg.data.val_fraction)
    eos = src.tokenizer().eos_id
    ce = np.zeros((lay.people, len(lay.attributes)))
    with torch.no_grad():
        for p in range(lay.people):
            doc = tokens[lay.start[p] : lay.start[p] + lay.length[p] - 1].astype(np.int64)
            x = torch.tensor([[eos, *doc[:-1]]])
            logp = torch.log_softmax(model(x)[0].float(), dim=-1)
            for a in range(len(lay.attributes)):
                for pos in lay.attr[p, a]:
                    if pos >= 0:
                        i = pos - lay.start[p]
                        ce[p, a] -= float(logp[i, int(doc[i])]) / math.log(2)
    mean = {name: float(ce[:, a].mean()) for a, name in enumerate(lay.attributes)}
    bits = sum(
        max(0.0, lay.people * (math.log2(attribute_choices(name)) - m)) for name, m in mean.items()
    )
    return mean, bits


def test_capacity_writes_the_run_and_a_point_beside_it(run):
    run_dir, db, summary = run
    res = capacity(run_dir, db=db)
    assert res.corpus_kind == "facts" and res.precision == "fp32"
    assert res.content_bits == pytest.approx(40 * (15.036173612553485 + 7.643856 + 8.228819), 1e-6)
    assert res.documents == res.documents_in_split == 40
    # the stored bits and the losses behind them, against a count by hand
    mean, bits = _hand_count(run_dir)
    assert res.bits == pytest.approx(bits, rel=1e-5, abs=1e-3)
    tokens_per_value = {"birth_date": 3, "birth_city": 2, "university": 2}
    for name, m in mean.items():  # nats per token, the mean over the people
        assert res.per_attribute_loss[name] == pytest.approx(
            m * math.log(2) / tokens_per_value[name], rel=1e-5
        )
    assert res.bits_per_param == pytest.approx(res.bits / summary.params["total"])
    assert res.exposures == pytest.approx(summary.epochs)
    assert json.loads((run_dir / "capacity.json").read_text())["bits"] == pytest.approx(res.bits)
    q = capacity(run_dir, precision="int4", db=db)
    assert (run_dir / "capacity-int4.json").is_file() and q.precision == "int4"
    # int4 moves the weights, so the losses; int8 moves them much less
    q8 = capacity(run_dir, precision="int8", write=False)
    gap4 = abs(q.train_target_loss - res.train_target_loss)
    gap8 = abs(q8.train_target_loss - res.train_target_loss)
    assert gap4 > 1e-5 and gap8 < gap4 / 4  # (float32 noise is ~1e-7)
    assert q.content_bits == res.content_bits
    pts = load_points(db, kind="capacity")
    assert set(pts["technique"]) == {"fp32", "int4"}
    assert set(pts["parent_run_id"]) == {summary.run_id} and set(pts["study"]) == {"tiny"}
    table = capacity_points(db, study="tiny")
    assert set(table["precision"]) == {"fp32", "int4"} and "bits" in table
    with pytest.raises(FitError, match="2 or more sizes"):
        fit_capacity(table)


def test_memorization_measures_canaries_and_windows(run):
    run_dir, db, _ = run
    res = memorization(run_dir, prefixes=(4, 8), samples=16, db=db)
    table = res.table()
    assert set(table["source"]) == {"canary", "train", "val"}
    canary = table[table["source"] == "canary"]
    assert sorted(canary["repeats"].unique()) == [1, 4] and set(canary["n"]) == {2}
    assert table["share"].between(0, 1).all()
    assert (run_dir / "memorization.json").is_file()
    assert len(load_points(db, kind="memorization")) == 1


@pytest.fixture(scope="module")
def half_run(tmp_path_factory):
    """A run that trained on half of its training split (data.fraction = 0.5)."""
    root = tmp_path_factory.mktemp("half")
    cfg = load_run_config(
        None,
        [
            "model.n_layer=1",
            "model.d_model=16",
            "model.n_head=2",
            "model.vocab_size=293",
            "model.context=48",
            "data.corpus='facts:people=40,attributes=3'",
            "data.fraction=0.5",
            f"data.cache_dir='{root / 'cache'}'",
            "data.canaries={count=2, length=8, prefix=8, repeats=[3]}",
            "train.tokens=384",
            "train.batch_size=8",
            "train.precision='fp32'",
            "train.eval_every=20",
        ],
    )
    summary = train(cfg, root / "runs", progress=False)
    return root / "runs" / summary.run_id, cfg, summary


def test_capacity_counts_only_the_people_the_run_trained_on(half_run):
    from scalelab.data.facts import FactsSource

    run_dir, cfg, _ = half_run
    res = capacity(run_dir, write=False)
    tokens, lay = FactsSource(people=40, attributes=3).layout("train", cfg.data.val_fraction)
    kept = round(len(tokens) * 0.5)  # one tile: data.fraction keeps its first half
    whole = int(((lay.start + lay.length - 1) <= kept).sum())  # biographies before the cut
    assert 10 < whole < 30
    assert res.documents == whole and res.documents_in_split == 40
    per_person = 15.036173612553485 + 7.643856 + 8.228819
    assert res.content_bits == pytest.approx(whole * per_person, rel=1e-6)


def test_memorization_reads_the_stream_and_windows_the_run_trained_on(half_run):
    from scalelab.data import load_tokens
    from scalelab.memorization.seen import samples_trained, seen_window_starts, training_stream

    run_dir, cfg, summary = half_run
    stream = np.asarray(training_stream(cfg, load_tokens(cfg.data, cfg.model.vocab_size)).train)
    # the trainer's own count of the tokens it cut (fraction, then 2 canaries x 3 copies)
    assert len(stream) == summary.unique_tokens
    starts = seen_window_starts(cfg, summary.to_dict(), stream)
    # 384 tokens = 8 windows of 48, less than one pass: only those windows were seen
    assert len(stream) // 48 > 8 and samples_trained(cfg, summary.to_dict()) == 8
    assert len(starts) == 8 and (starts % 48 == starts[0] % 48).all()  # one pass's grid
    res = memorization(run_dir, prefixes=(4, 8), length=8, samples=64, write=False)
    train_rows = res.table()[res.table()["source"] == "train"]
    assert set(train_rows["n"]) == {8}  # all the windows it saw, and no others


def test_capacity_refuses_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(StoreError, match=r"no config\.json"):
        capacity(tmp_path)


def test_fit_recovers_a_known_slope():
    N = [1e4, 2e4, 4e4, 8e4]
    rows = [
        {
            "N_non_embedding": n,
            "bits": 0.5 * n * f,
            "corpus_kind": "facts",
            "precision": "fp32",
            "exposures": 100.0,
            "corpus": c,
            "content_bits": 1e9,
        }
        for n in N
        for c, f in (("big", 1.0), ("small", 0.3))
    ]
    (fit,) = fit_capacity(pd.DataFrame(rows), bootstrap=200)
    assert fit.bits_per_param == pytest.approx(0.5)
    assert fit.exponent == pytest.approx(1.0)
    assert fit.bits_per_param_ci[0] <= 0.5 <= fit.bits_per_param_ci[1]
    assert [p["corpus"] for p in fit.points] == ["big"] * 4  # the capacity: the most stored


@pytest.mark.slow
def test_cli(run, cli):
    run_dir = run[0]
    out = cli("capacity", str(run_dir), "--precision", "fp32,int8", "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert [r["precision"] for r in got["results"]] == ["fp32", "int8"]
    out = cli("memorization", str(run_dir), "--prefix", "4,8", "--samples", "8")
    assert out.returncode == 0 and "canary" in out.stdout
    bad = cli("capacity", str(run_dir), "--precision", "int3")
    assert bad.returncode == 2 and "int3" in bad.stderr and "Traceback" not in bad.stderr
    none = cli("capacity")
    assert none.returncode == 2 and "--study" in none.stderr


def test_report_has_a_memorization_section(run, tmp_path):
    from scalelab.reporting import report
    from scalelab.reporting.memorization import memorization_section as memorization_builder
    from scalelab.reporting.sections import BUILDERS

    assert memorization_builder in BUILDERS  # on every report by default
    run_dir, db, _ = run
    capacity(run_dir, db=db)
    memorization(run_dir, prefixes=(4, 8), samples=16, db=db)
    res = report(
        db, tmp_path / "report", study="tiny", bootstrap=20, sections=[memorization_builder]
    )
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Memorization" in page and "bits stored" in page
    assert (tmp_path / "report" / "memorization-capacity.png").is_file()
    assert (tmp_path / "report" / "memorization-extraction.png").is_file()
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert any("Memorization" in str(k) for k in json.dumps(data).split('"'))
    assert res.path.is_file()
