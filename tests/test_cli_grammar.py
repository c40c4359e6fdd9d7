"""The CLI's one grammar: every command, given a bad argument, answers with one plain line on
stderr and exit code 2, and any option that line names exists on that command."""

from __future__ import annotations

import re
import sys

import pytest
import typer

from scalelab.cli import app, main

BAD: list[tuple[str, ...]] = [
    ("count", "gpt2", "--device-memory", "lots"),
    ("count", "no-such-model"),
    ("presets", "--bogus"),
    ("archs", "--n-layer", "x"),
    ("train",),  # no config file: a usage error, not a silent run of the defaults
    ("train", "MISSING.toml"),
    ("train", "SECTION.toml"),
    ("export", "MISSING"),
    ("corpus", "python-stdlib,max_bytes=10"),
    ("corpus", "--show", "-3"),
    ("sweep", "MISSING.toml"),
    ("points", "--db", "MISSING.db"),
    ("compare", "--db", "MISSING.db"),
    ("fit", "--db", "MISSING.db"),
    ("fit", "--csv", "MISSING.csv", "--bootstrap", "1e20"),
    ("fit", "--form", "chinchila"),
    ("plan",),
    ("plan", "--target-loss", "inf"),
    ("plan", "--compute", "lots"),
    ("report", "--db", "MISSING.db"),
    ("report", "--bootstrap", "-1"),
    ("demo", "--corpus", "nosuch:x", "--out", "OUT"),
    ("select", "python-stdlib", "--method", "randm", "--keep", "0.5", "--out", "X.json"),
    ("select", "python-stdlib", "--method", "random", "--keep", "2", "--out", "X.json"),
    ("select", "python-stdlib", "--method", "random", "--keep", "0.5"),
    ("tasks", "--bogus"),
    ("eval", "MISSING"),  # no --task: a usage error
    ("eval", "MISSING", "--task", "cloze"),
    ("eval", "MISSING", "--task", "clozee"),
    ("finetune", "MISSING", "--task", "copy", "--set", "finetune.method=adapter"),
    ("intrinsic", "MISSING", "--task", "syntax", "--dims", "ten"),
    ("compress", "MISSING", "--method", "prune", "--level", "0.5"),
    ("compress", "MISSING", "--method", "zip", "--level", "0.5"),
    ("compress", "MISSING"),
    ("effective", "--law", "MISSING", "--loss", "2.5", "--tokens", "1e9"),
    ("plan", "--compute", "1e21", "--hyper", "MISSING"),
    ("plan", "--compute", "1e21", "--hyper", "SECTION.toml"),  # not a law's JSON
    ("plan", "--compute", "1e21", "--hyper", "LIST.json"),  # JSON of the wrong shape
    ("sweep", "MISSING.toml", "--backend", "slurm"),
    ("sweep", "MISSING.toml", "--backend", "ray", "--address", "127.0.0.1:1"),  # nothing there
    ("sweep", "MISSING.toml", "--address", "auto"),  # an address without --backend ray
    ("tune", "MISSING.toml", "--backend", "local", "--address", "10.0.0.1:6379"),
]


def _options(command: str) -> set[str]:
    cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}
    return opts | {"--help"}


@pytest.mark.parametrize("args", BAD, ids=lambda a: " ".join(a))
def test_bad_argument_is_one_line_exit_2_naming_real_options(args, tmp_path, monkeypatch, capsys):
    section = tmp_path / "section.toml"
    section.write_text("[distil]\nteacher = 'x'\n")  # a misspelt section ([distill] exists)
    subs = {
        "MISSING.toml": str(tmp_path / "missing.toml"),
        "SECTION.toml": str(section),
        "MISSING": str(tmp_path / "missing"),
        "MISSING.db": str(tmp_path / "missing.db"),
        "MISSING.csv": str(tmp_path / "missing.csv"),
        "OUT": str(tmp_path / "out"),
        "LIST.json": str(tmp_path / "list.json"),
    }
    (tmp_path / "list.json").write_text('[{"key": "train.lr", "k": "x"}]')
    argv = [subs.get(a, a) for a in args]
    monkeypatch.setattr(sys, "argv", ["scalelab", *argv])
    monkeypatch.setenv("SCALELAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    assert e.value.code == 2, (out.out, out.err)
    assert "Traceback" not in out.err
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.err
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", lines[0]))
    # the option the user mistyped may be quoted back; every other one named must exist
    assert named - set(args) <= _options(args[0]), (named, lines[0])


def test_error_text_is_printed_as_text_not_markup(tmp_path, monkeypatch, capsys):
    """Brackets survive: "unknown section [distil]; sections are [model], [data], [train], ..."."""
    cfg = tmp_path / "run.toml"
    cfg.write_text("[distil]\nteacher = 'x'\n")  # misspelt: [distill] is a section
    monkeypatch.setattr(sys, "argv", ["scalelab", "train", str(cfg)])
    with pytest.raises(SystemExit):
        main()
    err = capsys.readouterr().err
    assert "unknown section [distil]" in err and "[model], [data], [train]" in err


# one meaning per option name across commands (the README's CLI table)
SAME_MEANING = {
    "--db": "results store",
    "--study": "study",
    "--quiet": "progress",
    "--runs": "run directories",
    "--n": "non_embedding",
    "--workers": "at once",
    "--threads": "threads per run",
    "--backend": "ray",
    "--address": "ray cluster",
}


def test_an_option_means_the_same_in_every_command():
    group = typer.main.get_command(app)
    helps: dict[str, set[str]] = {}
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        for p in cmd.params:
            for o in p.opts:
                helps.setdefault(o, set()).add(f"{name}: {p.help or ''}")
    for option, word in SAME_MEANING.items():
        assert helps.get(option), option
        for h in helps[option]:
            assert word.lower() in h.lower(), (option, h)
    # renamed where two meanings shared one name
    assert "--devices" in _options("count") and "--devices" not in _options("sweep")
    assert "--device" in _options("sweep")
    assert "--compute" in _options("plan") and "--compute" not in _options("compare")
    assert "--law" in _options("plan") and "--law" not in _options("fit")
    assert "--rebuild" in _options("corpus") and "--rebuild" not in _options("points")
    assert "--seed" in _options("demo") and "--seed" not in _options("fit")
    # every command that reads a store takes --db and --study
    for command in ("points", "fit", "report", "compare"):
        assert {"--db", "--study"} <= _options(command), command
    for command in ("train", "sweep", "demo", "corpus"):
        assert "--quiet" in _options(command), command
