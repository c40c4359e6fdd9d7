"""scalelab.rundir: the run directory's files, written by the trainer and read by studies."""

from __future__ import annotations

import json
import os
import stat

from scalelab import rundir
from scalelab.results.records import read_run


def test_read_metrics_skips_a_bad_line_and_keeps_the_rows_after_it(tmp_path):
    rows = [{"step": s, "train_loss": 5.0 - s / 10} for s in (0, 10, 20, 30)]
    lines = [json.dumps(r) for r in rows]
    # a torn line in the middle (a damaged file), a blank line, a JSON value that is not a
    # row, and a torn last line (a run killed while writing it, or still writing it)
    text = "\n".join([lines[0], lines[1][:9], lines[1], "", "[1, 2]", lines[2], lines[3],
                      lines[3][:12]])  # fmt: skip
    (tmp_path / rundir.METRICS).write_text(text)
    got = rundir.read_metrics(tmp_path)
    assert got == [rows[0], rows[1], rows[2], rows[3]]
    # the same rows however the file is named, and the same rows the study reads
    assert rundir.read_metrics(tmp_path / rundir.METRICS) == got
    (tmp_path / rundir.CONFIG).write_text("{}")
    assert read_run(tmp_path).metrics == got


def test_read_metrics_of_a_run_that_has_not_logged(tmp_path):
    assert rundir.read_metrics(tmp_path) == []


def test_run_files_are_written_whole_with_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        rundir.write_json(tmp_path / rundir.SUMMARY, {"val_loss": float("nan"), "step": 3})
        log = rundir.MetricsLog(tmp_path / rundir.METRICS)
        for step in (0, 10, 20):
            log.append({"step": step})
        log.truncate_after(10)
    finally:
        os.umask(old)
    assert rundir.read_json(tmp_path / rundir.SUMMARY) == {"val_loss": None, "step": 3}
    assert [r["step"] for r in rundir.read_metrics(tmp_path)] == [0, 10]
    for name in (rundir.SUMMARY, rundir.METRICS):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
