"""scalelab.cli.checks: one check per kind of option, made before any work."""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path

import pytest

from scalelab.cli import checks
from scalelab.errors import ConfigError, StoreError


def test_a_store_is_checked_without_being_created(tmp_path: Path) -> None:
    checks.store(tmp_path / "new" / "s.db")  # a new store in a folder that can be made
    assert not (tmp_path / "new").exists()
    (tmp_path / "adir").mkdir()
    (tmp_path / "text.db").write_text("not SQLite")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE users (x)").connection.close()
    for bad, match in (
        (tmp_path / "adir", "is a directory"),
        (tmp_path / "text.db", "not an SQLite file"),
        (other, "not a scalelab results store"),
        ("", "is empty"),
        (tmp_path / "text.db" / "s.db", "is a file, not a folder"),
    ):
        with pytest.raises(StoreError, match=match):
            checks.store(bad)


@pytest.mark.parametrize("value", [-1, -(2**31), 2**64])
def test_a_seed_is_a_whole_number_from_zero(value: int) -> None:
    with pytest.raises(ConfigError, match="--seed"):
        checks.seed(value, "--seed")
    checks.seed(0, "--seed")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 0.0, 1e308])
def test_a_rate_is_finite_positive_and_sane(value: float) -> None:
    with pytest.raises(ConfigError, match="--lr"):
        checks.rate(value, "--lr")
    checks.rate(0.1, "--lr")


def test_a_count_names_the_memory_it_would_take() -> None:
    with pytest.raises(ConfigError, match=r"--samples 0: give a whole number >= 1"):
        checks.count(0, "--samples")
    with pytest.raises(ConfigError, match=r"about .*iB, and .* is available"):
        checks.count(10**8, "--samples", bytes_each=2**40, maximum=10**12)
    with pytest.raises(ConfigError, match="more than this machine can hold"):
        checks.count(10**12, "--samples")
    checks.count(256, "--samples", bytes_each=1024)


@pytest.mark.parametrize("name", ["tpu", "", "cuda:x", "xla"])
def test_a_device_that_is_not_here_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="--device"):
        checks.device(name)
    checks.device("cpu")


def test_the_command_line_refuses_empty_values_and_repeated_options() -> None:
    import typer

    from scalelab.cli import app

    cmd = typer.main.get_command(app).commands["compress"]
    with pytest.raises(ConfigError, match="--out is empty"):
        checks.argv(cmd, ["RUN", "--out", ""])
    with pytest.raises(ConfigError, match="--out is empty"):
        checks.argv(cmd, ["RUN", "--out="])
    with pytest.raises(ConfigError, match="--method is given twice"):
        checks.argv(cmd, ["RUN", "--method", "prune", "--method=quant"])
    checks.argv(cmd, ["RUN", "--method", "prune", "--level", "0.5", "--quiet"])


def test_scalelab_warnings_become_notes_and_others_are_held_back() -> None:
    notes: list[str] = []
    with checks.warnings_as_notes(notes.append):
        from scalelab import runs

        msg = "skipped a damaged checkpoint\n  at step 3"
        warnings.warn_explicit(msg, UserWarning, filename=runs.__file__, lineno=1)
        warnings.warn("a library's developer warning", RuntimeWarning, stacklevel=1)
    assert notes == ["note: skipped a damaged checkpoint at step 3"]


def test_help_keeps_its_square_brackets(cli) -> None:
    r = cli("train", "--help")
    assert r.returncode == 0 and "sections [model], [data]," in r.stdout and "[train]." in r.stdout


@pytest.mark.parametrize(
    "extra",
    [
        ["--forms", "chinchilla,chinchilla-tied,overtrain"],  # the default, typed
        ["--holdout", "2"],  # the default, typed
        ["--forms=kaplan,power"],
    ],
)
def test_an_option_given_without_effect_is_refused_whatever_its_value(
    extra, tmp_path, monkeypatch, capsys
) -> None:
    """fit --forms/--holdout choose among forms (--form auto): given with another form they
    are refused even when their value is the default (click's ParameterSource)."""
    import sys

    from scalelab.cli import main

    csv = tmp_path / "p.csv"
    csv.write_text("N,D,loss\n1e6,2e7,3.0\n3e6,2e7,2.8\n1e7,2e7,2.6\n3e7,2e7,2.5\n")
    monkeypatch.setattr(sys, "argv", ["scalelab", "fit", "--csv", str(csv), *extra])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: --") and "has no effect with --form chinchilla" in err


def test_given_is_false_outside_a_command() -> None:
    assert checks.given("forms") == {"forms": False}
