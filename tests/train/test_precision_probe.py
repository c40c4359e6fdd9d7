"""train.precision = "auto" on a CPU: the faster precision of the run's own model wins."""

from __future__ import annotations

import json

import pytest
import torch

from scalelab.train import device as device_mod
from scalelab.train import precision_probe as probe_mod
from scalelab.train import train
from scalelab.train.device import resolve_precision


def fake_timer(fp32: float, bf16: float, calls: list | None = None):
    def timer(cfg, micro, device, precision, give_up):
        if calls is not None:
            calls.append((precision, give_up))
        return bf16 if precision == "bf16" else fp32

    return timer


@pytest.mark.parametrize(("fp32", "bf16", "want"), [(1.0, 0.4, "bf16"), (0.4, 1.0, "fp32"),
                                                    (0.5, 0.5, "fp32")])  # fmt: skip
def test_the_faster_precision_wins(make_cfg, tmp_path, fp32, bf16, want):
    cfg = make_cfg()
    timings, cached = probe_mod.step_timings(
        cfg, 8, torch.device("cpu"), tmp_path, timer=fake_timer(fp32, bf16)
    )
    assert not cached and timings == {"fp32": fp32, "bf16": bf16}
    p = probe_mod.choose(timings)
    assert p.name == want and p.timings == timings
    chosen = resolve_precision("auto", torch.device("cpu"), tmp_path, probe=lambda: p)
    assert chosen.name == want


def test_timings_are_cached_per_shape_and_micro_batch(make_cfg, tmp_path):
    calls: list = []
    cfg = make_cfg()
    first, _ = probe_mod.step_timings(cfg, 8, torch.device("cpu"), tmp_path,
                                      timer=fake_timer(1.0, 2.0, calls))  # fmt: skip
    # bf16 is told to give up once a step is far slower than fp32's best
    assert calls == [("fp32", None), ("bf16", probe_mod.GIVE_UP_FACTOR * 1.0)]
    again, cached = probe_mod.step_timings(cfg, 8, torch.device("cpu"), tmp_path,
                                           timer=fake_timer(9.0, 9.0, calls))  # fmt: skip
    assert cached and again == first and len(calls) == 2
    # another micro-batch, another shape: measured again
    probe_mod.step_timings(cfg, 4, torch.device("cpu"), tmp_path, timer=fake_timer(1, 1, calls))
    wider = make_cfg("model.d_model=64")
    probe_mod.step_timings(wider, 8, torch.device("cpu"), tmp_path, timer=fake_timer(1, 1, calls))
    assert len(calls) == 6
    assert len(json.loads((tmp_path / probe_mod.CACHE_FILE).read_text())) == 3


def test_an_emulated_instruction_set_is_not_served_the_cpus_own_timings(
    make_cfg, tmp_path, monkeypatch
):
    # native first, then as an AVX2-only machine (ATEN_CPU_CAPABILITY=avx2 and
    # ONEDNN_MAX_CPU_ISA=AVX2 on an AVX512 CPU): each is timed, then served from the cache
    for var in device_mod.ISA_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    cfg, cpu, calls = make_cfg(), torch.device("cpu"), []
    native, _ = probe_mod.step_timings(cfg, 8, cpu, tmp_path, timer=fake_timer(1, 2, calls))
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    aten, cached = probe_mod.step_timings(cfg, 8, cpu, tmp_path, timer=fake_timer(3, 4, calls))
    assert not cached and aten == {"fp32": 3, "bf16": 4} != native
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    both, cached = probe_mod.step_timings(cfg, 8, cpu, tmp_path, timer=fake_timer(5, 6, calls))
    assert not cached and both == {"fp32": 5, "bf16": 6}
    again, cached = probe_mod.step_timings(cfg, 8, cpu, tmp_path, timer=fake_timer(7, 7, calls))
    assert cached and again == both and len(calls) == 6
    assert device_mod.cpu_capability() == "AVX2;ONEDNN_MAX_CPU_ISA=AVX2"


def test_the_real_timer_leaves_the_global_rng_alone(make_cfg):
    cfg = make_cfg()
    torch.manual_seed(5)
    state = torch.get_rng_state()
    t = probe_mod.time_step(cfg, 4, torch.device("cpu"), "fp32", None)
    assert t > 0 and torch.equal(torch.get_rng_state(), state)


def test_a_run_records_the_timings_and_a_resumed_run_keeps_its_precision(
    make_cfg, tmp_path, monkeypatch
):
    monkeypatch.delenv("SCALELAB_PRECISION", raising=False)
    cache = tmp_path / "cache"
    cfg = make_cfg("train.precision=auto", "train.tokens=2560", f"data.cache_dir={cache}")
    monkeypatch.setattr(probe_mod, "time_step", fake_timer(1.0, 0.5))
    first = train(cfg, tmp_path, progress=False)
    assert first.precision == "bf16" and first.precision_timings == {"fp32": 1.0, "bf16": 0.5}
    (tmp_path / cfg.run_id() / "summary.json").unlink()  # as if killed after its last checkpoint
    # the machine now times fp32 as faster (and the cache is gone): the run keeps bf16
    (cache / probe_mod.CACHE_FILE).unlink()
    monkeypatch.setattr(probe_mod, "time_step", fake_timer(0.5, 1.0))
    again = train(cfg, tmp_path, resume=True, progress=False)
    assert again.precision == "bf16" and "kept from the checkpoint" in again.precision_reason
    # while a new run of another shape, timed now, takes fp32
    other = make_cfg("train.precision=auto", "train.tokens=2560", f"data.cache_dir={cache}",
                     "model.d_model=64")  # fmt: skip
    assert train(other, tmp_path, progress=False).precision == "fp32"
