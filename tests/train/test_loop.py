import json
import math
from pathlib import Path

import pytest
import torch

from scalelab.accounting import count
from scalelab.errors import ConfigError, ScalelabError, TrainingError
from scalelab.train import RunSummary, read_metrics, train
from scalelab.train import device as device_mod
from scalelab.train import evaluate as evaluate_mod
from scalelab.train import loop as loop_mod
from scalelab.train import precision_probe as probe_mod

CONTRACT_KEYS = {
    "run_id", "status", "step", "tokens", "val_loss", "val_bpb", "train_loss", "best_val_loss",
    "tokens_per_second", "wall_seconds", "params", "flops", "flops_total", "six_nd",
    "unique_tokens", "epochs", "entropy_rate",
}  # fmt: skip


def _curve(run_dir):
    """The metrics without the timing fields (which differ between runs)."""
    drop = {"elapsed", "tokens_per_second"}
    return [{k: v for k, v in row.items() if k not in drop} for row in read_metrics(run_dir)]


def _interrupt_at(monkeypatch, at_step):
    original = loop_mod._Run._step

    def step(self, s):
        if s == at_step:
            raise KeyboardInterrupt
        return original(self, s)

    monkeypatch.setattr(loop_mod._Run, "_step", step)


def test_run_directory_summary_and_metrics(make_cfg, tmp_path):
    cfg = make_cfg()
    s = train(cfg, tmp_path, progress=False)
    run_dir = tmp_path / cfg.run_id()
    assert s.path == str(run_dir) and s.status == "finished" and s.reason is None
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert set(on_disk) >= CONTRACT_KEYS
    assert RunSummary.load(run_dir) == s
    assert json.loads((run_dir / "config.json").read_text()) == cfg.to_dict()
    assert (s.step, s.steps, s.tokens) == (30, 30, 7680)
    counted = count(cfg.model, causal=True).to_dict()
    assert s.params == counted["params"] and s.flops == counted["flops"]
    assert s.flops_total == counted["flops"]["train_per_token"] * 7680
    assert s.six_nd == 6 * counted["params"]["total"] * 7680
    assert s.epochs == pytest.approx(7680 / s.unique_tokens)
    assert s.val_bpb == pytest.approx(s.val_loss / math.log(2) / s.bytes_per_token)
    assert s.tokens_per_second > 0 and s.wall_seconds >= s.train_seconds > 0
    assert s.entropy_rate is not None and s.entropy_rate < s.val_loss < math.log(32)

    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows] == [0, 10, 20, 30]
    assert rows[0]["val_loss"] == pytest.approx(math.log(32), abs=0.15)
    assert all(
        {"train_loss", "lr", "tokens", "elapsed", "val_loss", "val_bpb"} <= set(r) for r in rows[1:]
    )
    assert rows[-1]["val_loss"] == s.val_loss < rows[1]["val_loss"] < rows[0]["val_loss"]
    assert rows[-1]["lr"] == pytest.approx(cfg.train.lr * cfg.train.min_lr_ratio)
    ckpts = sorted(p.name for p in (run_dir / "checkpoint").iterdir())
    assert ckpts == ["step-00000020", "step-00000030"]


def test_same_seed_same_curve_other_seed_other_curve(make_cfg, tmp_path):
    a = train(make_cfg(), tmp_path / "a", progress=False)
    b = train(make_cfg(), tmp_path / "b", progress=False)
    c = train(make_cfg("train.seed=1"), tmp_path / "c", progress=False)
    assert _curve(a.path) == _curve(b.path)
    assert a.val_loss == b.val_loss != c.val_loss


def test_resume_continues_as_if_never_stopped(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg()
    whole = train(cfg, tmp_path / "whole", progress=False)
    with monkeypatch.context() as m:
        _interrupt_at(m, 25)  # after the checkpoint at step 20
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "cut", progress=False)
    run_dir = tmp_path / "cut" / cfg.run_id()
    assert not (run_dir / "summary.json").exists()
    with pytest.raises(TrainingError, match="--resume"):
        train(cfg, tmp_path / "cut", progress=False)
    resumed = train(cfg, tmp_path / "cut", resume=True, progress=False)
    assert resumed.val_loss == whole.val_loss and resumed.train_loss == whole.train_loss
    assert _curve(run_dir) == _curve(whole.path)


def test_resume_skips_a_corrupt_checkpoint(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg()
    whole = train(cfg, tmp_path / "whole", progress=False)
    with monkeypatch.context() as m:
        _interrupt_at(m, 25)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "cut", progress=False)
    newest = tmp_path / "cut" / cfg.run_id() / "checkpoint" / "step-00000020" / "optimizer.pt"
    newest.write_bytes(newest.read_bytes()[:100])  # a torn file
    with pytest.warns(UserWarning, match="step-00000020"):
        resumed = train(cfg, tmp_path / "cut", resume=True, progress=False)
    assert resumed.val_loss == whole.val_loss


def test_finished_run_is_reused_with_resume_and_protected_without(make_cfg, tmp_path):
    cfg = make_cfg()
    first = train(cfg, tmp_path, progress=False)
    with pytest.raises(TrainingError, match="already finished"):
        train(cfg, tmp_path, progress=False)
    again = train(cfg, tmp_path, resume=True, progress=False)
    assert again == first


def test_nan_stops_the_run_and_keeps_what_came_before(make_cfg, tmp_path, monkeypatch):
    original = loop_mod._Run._step

    def step(self, s):
        if s == 12:  # the 13th update sees a poisoned weight
            with torch.no_grad():
                self.model.blocks[0].mlp.fc.weight[0, 0] = float("nan")
        return original(self, s)

    monkeypatch.setattr(loop_mod._Run, "_step", step)
    cfg = make_cfg()
    s = train(cfg, tmp_path, progress=False)
    assert s.status == "failed" and s.step == 13
    assert "nan" in s.reason and "step 13" in s.reason
    run_dir = tmp_path / cfg.run_id()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    assert [r["step"] for r in read_metrics(run_dir)] == [0, 10]
    assert [p.name for p in (run_dir / "checkpoint").iterdir()] == ["step-00000010"]


def test_early_stopping_on_validation_loss(make_cfg, tmp_path, monkeypatch):
    losses = iter([3.0, 2.0, 2.5, 2.6, 2.7])
    monkeypatch.setattr(evaluate_mod.Evaluator, "__call__", lambda self, model: next(losses))
    cfg = make_cfg("train.tokens=25600", "train.early_stopping=2")  # 100 steps planned
    s = train(cfg, tmp_path, progress=False)
    assert s.status == "stopped_early" and s.step == 30 and s.steps == 100
    assert (s.val_loss, s.best_val_loss) == (2.6, 2.0)
    assert (tmp_path / cfg.run_id() / "checkpoint" / "step-00000030").is_dir()


def test_budgets(make_cfg, tmp_path):
    cfg = make_cfg("train.tokens_per_param=1.0")
    n = count(cfg.model).params.non_embedding
    s = train(cfg, tmp_path, progress=False)
    assert s.steps == round(n / 256) and "non-embedding" in s.budget
    e = train(make_cfg("train.epochs=0.25"), tmp_path, progress=False)
    assert e.epochs == pytest.approx(0.25, rel=0.01)


def test_data_fraction_repeats_a_slice_of_the_corpus(make_cfg, tmp_path):
    whole = train(make_cfg("train.epochs=0.25"), tmp_path / "whole", progress=False)
    part = train(
        make_cfg("data.fraction=0.25", "train.epochs=1"), tmp_path / "part", progress=False
    )
    # a quarter of the unique tokens, seen once: the same number of tokens as a quarter epoch
    assert part.unique_tokens == pytest.approx(whole.unique_tokens / 4, rel=0.01)
    assert part.tokens == pytest.approx(whole.tokens, rel=0.02)
    assert part.epochs == pytest.approx(1.0, rel=0.02)
    # validation is never cut: both runs are scored on the same held-out tokens. Same seed,
    # same model: before any update (step 0) the two evaluations must agree to the last bit,
    # which they could not if the fraction had thinned the validation split too
    first_part, first_whole = read_metrics(part.path)[0], read_metrics(whole.path)[0]
    assert first_part["step"] == first_whole["step"] == 0
    assert first_part["val_loss"] == first_whole["val_loss"]
    assert part.val_loss != whole.val_loss  # while training on a quarter did change the model


def test_gradient_accumulation_gives_the_same_updates(make_cfg, tmp_path):
    a = train(make_cfg(), tmp_path / "a", progress=False)
    b = train(make_cfg("train.micro_batch_size=2"), tmp_path / "b", progress=False)
    for ra, rb in zip(read_metrics(a.path), read_metrics(b.path), strict=True):
        assert ra.get("train_loss", 0) == pytest.approx(rb.get("train_loss", 0), abs=1e-4)
    assert a.val_loss == pytest.approx(b.val_loss, abs=1e-4)


def test_masked_lm(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"model\.causal = false"):
        train(make_cfg("train.objective=mlm"), tmp_path, progress=False)
    with pytest.raises(ConfigError, match=r"model\.causal = true"):
        train(make_cfg("model.causal=false"), tmp_path, progress=False)
    s = train(make_cfg("train.objective=mlm", "model.causal=false"), tmp_path, progress=False)
    rows = read_metrics(s.path)
    assert s.status == "finished"
    assert s.val_loss < rows[0]["val_loss"] - 0.2 and rows[0]["val_loss"] == pytest.approx(
        math.log(32), abs=0.2
    )


def test_vocab_must_cover_the_tokenizer(make_cfg, tmp_path):
    with pytest.raises(ScalelabError, match=r"at least 18.*raise model.vocab_size"):
        train(make_cfg("model.vocab_size=16"), tmp_path, progress=False)


def test_precision_auto_follows_the_measurement(make_cfg, tmp_path, monkeypatch):
    monkeypatch.delenv("SCALELAB_PRECISION", raising=False)  # the rule itself, not the override
    cpu = torch.device("cpu")
    monkeypatch.setattr(device_mod, "cpu_bf16_speedup", lambda cache_dir=None: 0.01)
    assert device_mod.resolve_precision("auto", cpu).name == "fp32"
    monkeypatch.setattr(device_mod, "cpu_bf16_speedup", lambda cache_dir=None: 4.0)
    assert device_mod.resolve_precision("auto", cpu).name == "bf16"
    # the trainer times its own model instead (scalelab.train.precision_probe): here a fake
    # timer that makes bf16 the faster, in a cache of this test's own
    monkeypatch.setattr(probe_mod, "time_step", lambda c, m, d, p, g: 0.5 if p == "bf16" else 1.0)
    cfg = make_cfg("train.tokens=1024", "train.precision=auto", f"data.cache_dir={tmp_path}")
    s = train(cfg, tmp_path, progress=False)
    assert s.precision == "bf16" and s.status == "finished" and math.isfinite(s.val_loss)
    assert s.precision_timings == {"fp32": 1.0, "bf16": 0.5} and "faster" in s.precision_reason


def test_cpu_probe_is_cached(tmp_path):
    first = device_mod.cpu_bf16_speedup(tmp_path)
    assert first > 0 and (tmp_path / "precision-probe.json").exists()
    assert device_mod.cpu_bf16_speedup(tmp_path) == first


def test_tensorboard_events_when_installed(make_cfg, tmp_path):
    pytest.importorskip("tensorboard")
    s = train(make_cfg(), tmp_path, progress=False)
    assert list((tmp_path / s.run_id / "tensorboard").glob("events.out.tfevents.*"))


def test_thread_count_is_chosen_once_and_recorded(make_cfg, tmp_path, monkeypatch):
    before = torch.get_num_threads()
    s = train(make_cfg(), tmp_path / "auto", progress=False)
    assert s.threads == 1  # a 2-layer, d_model 32 model gains nothing from more
    assert torch.get_num_threads() == before  # the caller's setting is restored
    monkeypatch.setenv("SCALELAB_THREADS", "2")
    s2 = train(make_cfg("train.tokens=1024"), tmp_path / "env", progress=False)
    assert s2.threads == 2 and {r.get("threads", 2) for r in read_metrics(s2.path)} == {2}
    monkeypatch.setenv("SCALELAB_THREADS", "many")
    with pytest.raises(ConfigError, match="SCALELAB_THREADS"):
        train(make_cfg("train.seed=9"), tmp_path / "bad", progress=False)


@pytest.mark.slow
def test_markov_order_1_reaches_the_entropy_rate(make_cfg, tmp_path):
    """The exact entropy rate of the source is the floor; a model that can represent the
    transition table gets within 2% of it (the first position of each window, which has no
    context, alone costs (H(X_1) - H) / context above the rate)."""
    # 500k tokens: a validation split of 10k tokens pins the loss to about +-0.5%
    cfg = make_cfg("data.corpus=markov:order=1,vocab=16,seed=0,tokens=500000", "model.context=64",
                   "train.batch_size=16", "train.tokens=250000", "train.eval_every=40",
                   "train.eval_batches=5")  # fmt: skip
    s = train(cfg, tmp_path, progress=False)
    assert s.entropy_rate is not None
    assert s.entropy_rate < s.val_loss < 1.02 * s.entropy_rate, (s.val_loss, s.entropy_rate)


@pytest.mark.slow
def test_torch_compile_trains_the_same_model(make_cfg, tmp_path):
    """train.compile = true (inductor's C++ backend on CPUs) reaches the eager run's loss."""
    eager = train(make_cfg(), tmp_path / "eager", progress=False)
    compiled = train(make_cfg("train.compile=true"), tmp_path / "compiled", progress=False)
    assert compiled.status == "finished" and compiled.compile
    assert compiled.val_loss == pytest.approx(eager.val_loss, abs=1e-3)


def test_public_api_names(make_cfg, tmp_path):
    import scalelab

    cfg = make_cfg("train.tokens=1024")
    first = scalelab.train(cfg, tmp_path, progress=False)
    again = scalelab.train(cfg, tmp_path, resume=True, progress=False)  # the package is callable
    assert first == again and isinstance(first, scalelab.RunSummary)
    assert scalelab.read_metrics(first.path)[-1]["step"] == 4


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_missing_device_names_the_field(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"train\.device"):
        train(make_cfg("train.device=cuda"), tmp_path, progress=False)


def test_a_run_being_trained_elsewhere_is_refused(make_cfg, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    cfg = make_cfg()
    run_dir = tmp_path / cfg.run_id()
    run_dir.mkdir()
    with (run_dir / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as another process training this run would
        with pytest.raises(TrainingError, match="another process"):
            train(cfg, tmp_path, progress=False)


# --- the bf16 path: autocast runs on every CPU (slowly where there are no bf16 units), so
# these run everywhere, with tolerances that fit bf16's 8-bit mantissa


def test_bf16_run_learns_and_says_so(make_cfg, tmp_path):
    s = train(make_cfg("train.precision=bf16"), tmp_path, progress=False)
    rows = read_metrics(s.path)
    assert s.status == "finished" and s.precision == "bf16"
    assert s.precision_reason == "set by train.precision"
    assert s.val_loss < rows[0]["val_loss"] - 0.1


def test_bf16_gradient_accumulation_agrees_within_bf16_tolerance(make_cfg, tmp_path):
    a = train(make_cfg("train.precision=bf16"), tmp_path / "a", progress=False)
    b = train(make_cfg("train.precision=bf16", "train.micro_batch_size=2"), tmp_path / "b",
              progress=False)  # fmt: skip
    # bf16 rounds each micro-batch's activations on its own: close, not bit-equal
    assert a.val_loss == pytest.approx(b.val_loss, abs=3e-2)


def test_scalelab_precision_overrides_auto_only(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("SCALELAB_PRECISION", "bf16")
    s = train(make_cfg("train.tokens=512", "train.precision=auto"), tmp_path / "a",
              progress=False)  # fmt: skip
    assert s.precision == "bf16" and "SCALELAB_PRECISION" in s.precision_reason
    # a config that names its precision keeps it
    s = train(make_cfg("train.tokens=512"), tmp_path / "b", progress=False)
    assert s.precision == "fp32"
    monkeypatch.setenv("SCALELAB_PRECISION", "fp16")
    with pytest.raises(ConfigError, match="SCALELAB_PRECISION"):
        train(make_cfg("train.tokens=512", "train.precision=auto"), tmp_path / "c",
              progress=False)  # fmt: skip


def test_a_resumed_auto_run_keeps_its_precision(make_cfg, tmp_path, monkeypatch):
    """Two machines can resolve "auto" differently; one run directory never mixes them."""
    cfg = make_cfg("train.precision=auto", "train.tokens=2560")
    monkeypatch.setenv("SCALELAB_PRECISION", "bf16")
    first = train(cfg, tmp_path, progress=False)
    assert first.precision == "bf16"
    run = Path(first.path)
    (run / "summary.json").unlink()  # as if killed after its last checkpoint
    monkeypatch.setenv("SCALELAB_PRECISION", "fp32")
    again = train(cfg, tmp_path, resume=True, progress=False)
    assert again.precision == "bf16" and "kept from the checkpoint" in again.precision_reason


def test_the_probe_runs_at_the_runs_thread_count(make_cfg, tmp_path, monkeypatch):
    seen = []
    monkeypatch.delenv("SCALELAB_PRECISION", raising=False)
    monkeypatch.setattr(
        probe_mod, "time_step", lambda c, m, d, p, g: seen.append(torch.get_num_threads()) or 0.5
    )
    monkeypatch.setenv("SCALELAB_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cfg = make_cfg("train.precision=auto", "train.tokens=512", f"data.cache_dir={tmp_path}")
        train(cfg, tmp_path, progress=False)
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 1]  # fp32 and bf16 timed at the run's one thread
