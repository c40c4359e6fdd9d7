"""`scalelab count` and `scalelab presets`: thin mirrors of the API."""

import json
import subprocess
import sys

from scalelab.accounting import count
from scalelab.presets import list_presets


def test_count_json_is_count_to_dict(cli):
    r = cli("count", "llama-3.1-8b", "--seq-len", "2048", "--device-memory", "80GiB", "--json")
    assert r.returncode == 0, r.stderr
    assert (
        json.loads(r.stdout) == count("llama-3.1-8b", seq_len=2048, device_memory="80GiB").to_dict()
    )


def test_count_table_shows_exact_counts_and_the_fit(cli):
    r = cli(
        "count", "llama-3.1-405b", "--seq-len", "8192", "--device-memory", "80GiB",
        "--tokens", "15.6T", "--devices", "16384", "--recompute", "full",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    for text in (
        "405,853,388,800",
        "401,650,696,192",
        "fits on 80.00 GiB",
        "training time",
        "days",
    ):
        assert text in r.stdout


def test_presets_lists_every_preset_with_both_counts(cli):
    r = cli("presets")
    assert r.returncode == 0, r.stderr
    for p in list_presets():
        c = count(p.name).params
        assert (
            p.name in r.stdout and f"{c.total:,}" in r.stdout and f"{c.non_embedding:,}" in r.stdout
        )
    listed = json.loads(cli("presets", "--json").stdout)
    assert [row["name"] for row in listed] == [p.name for p in list_presets()]


def test_bad_input_is_one_line_and_exit_2(cli, tmp_path):
    for args in (
        ("count", "llama-3.1-8"),
        ("count", "gpt2", "--device-memory", "eighty"),
        ("count", "gpt2", "--dtype", "fp64"),
        ("count", str(tmp_path / "missing.json")),
    ):
        r = cli(*args)
        assert r.returncode == 2, args
        assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_count_does_not_import_torch():
    code = (
        "import sys; from scalelab.cli import app; "
        "app(['count', 'mixtral-8x7b', '--json'], standalone_mode=False); "
        "app(['presets'], standalone_mode=False); "
        "print('torch loaded:', 'torch' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("torch loaded: False")
