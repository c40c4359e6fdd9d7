"""The command line's help: its choices come from the API's tables, and its brackets survive."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable

import pytest
import typer
from typer.testing import CliRunner

from scalelab.cli import app


def _table(module: str, name: str) -> Callable[[], list[str]]:
    """The entries (keys of a dict) of the table ``module.name``, read when the test runs."""

    def read() -> list[str]:
        import importlib

        return [str(e) for e in getattr(importlib.import_module(module), name)]

    return read


# command, option, the API table its choices are read from
CHOICES: list[tuple[str, str, Callable[[], Iterable[str]]]] = [
    ("fit", "--form", _table("scalelab.laws.forms", "FORM_TABLE")),
    ("fit", "--resample", _table("scalelab.laws.options", "RESAMPLING")),
    ("fit", "--x", _table("scalelab.laws.options", "VARIABLES")),
    ("fit", "--reward", _table("scalelab.laws.options", "REWARDS")),
    ("points", "--kind", lambda: ["run", *_plugin_kinds(), "all"]),
    ("tune", "--sampler", _table("scalelab.tune.space", "SAMPLERS")),
    ("capacity", "--precision", _table("scalelab.memorization.quantize", "PRECISIONS")),
    ("posttrain", "--method", _table("scalelab.posttrain.api", "METHODS")),
    ("posttrain", "--task", _table("scalelab.posttrain.tasks", "VERIFIABLE")),
    ("finetune", "--set", _table("scalelab.tasks.finetune", "METHODS")),
    ("corpus", "--tokenizer", _table("scalelab.config", "TOKENIZERS")),
    ("demo", "--budgets", _table("scalelab.study.studyfile", "BUDGET_MODES")),
    ("count", "--dtype", _table("scalelab.accounting.memory", "DTYPE_BYTES")),
    ("count", "--recompute", _table("scalelab.accounting.memory", "RECOMPUTE")),
    ("intrinsic", "--projection", _table("scalelab.intrinsic.options", "PROJECTIONS")),
    ("compress", "--method", _table("scalelab.techniques.compress_options", "METHODS")),
    ("compress", "--level", _table("scalelab.techniques.compress_options", "BITS")),
    ("compress", "--structure", _table("scalelab.techniques.compress_options", "STRUCTURES")),
    ("compress", "--scope", _table("scalelab.techniques.compress_options", "SCOPES")),
    ("compress", "--algorithm", _table("scalelab.techniques.compress_options", "ALGORITHMS")),
    ("compress", "--group", _table("scalelab.techniques.compress_options", "GROUPS")),
]


def _plugin_kinds() -> tuple[str, ...]:
    from scalelab.plugin import point_kinds

    return point_kinds()


def _help_of(command: str, option: str) -> str:
    cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    (param,) = [p for p in cmd.params if option in p.opts]
    return str(param.help)


def _names(text: str, entry: str) -> bool:
    """``entry`` stands in ``text`` as a whole name (not inside a longer one)."""
    return re.search(rf"(?<![\w-]){re.escape(entry)}(?![\w-])", text) is not None


@pytest.mark.parametrize(("command", "option", "table"), CHOICES, ids=lambda c: str(c))
def test_every_entry_of_the_table_is_in_the_help(command, option, table) -> None:
    text = _help_of(command, option)
    missing = [e for e in table() if not _names(text, e)]
    assert not missing, f"{command} {option} help lacks {missing}: {text}"


# a fresh interpreter adds an entry to each table before the command line is imported, as
# an edit of the table would, and reads the help the commands then have
_ADD_ENTRIES = """
import importlib, json, sys
# by module name (a package may export a function of a submodule's name)
m = importlib.import_module
forms, space = m("scalelab.laws.forms"), m("scalelab.tune.space")
quantize, api = m("scalelab.memorization.quantize"), m("scalelab.posttrain.api")
tasks, finetune = m("scalelab.posttrain.tasks"), m("scalelab.tasks.finetune")
config, memory = m("scalelab.config"), m("scalelab.accounting.memory")
compress = m("scalelab.techniques.compress_options")
options = m("scalelab.laws.options")
intrinsic = m("scalelab.intrinsic.options")
studyfile = m("scalelab.study.studyfile")
from scalelab.plugin import Plugin, register_plugin

forms.FORM_TABLE["zz-law"] = forms.FormEntry("scalelab.laws.forms.two_variable:Chinchilla")
space.SAMPLERS = (*space.SAMPLERS, "zz-sampler")
quantize.PRECISIONS = {**quantize.PRECISIONS, "zz-int3": 3}
api.METHODS = (*api.METHODS, "zz-method")
tasks.VERIFIABLE = {**tasks.VERIFIABLE, "zz-task": None}
finetune.METHODS = (*finetune.METHODS, "zz-tune")
config.TOKENIZERS = (*config.TOKENIZERS, "zz-tok")
memory.DTYPE_BYTES["zz-fp6"] = 0.75
memory.RECOMPUTE = (*memory.RECOMPUTE, "zz-some")
compress.METHODS = (*compress.METHODS, "zz-compress")
intrinsic.PROJECTIONS = (*intrinsic.PROJECTIONS, "zz-proj")
options.RESAMPLING = (*options.RESAMPLING, "zz-resample")
options.VARIABLES = (*options.VARIABLES, "zz-x")
options.REWARDS = (*options.REWARDS, "zz-reward")
compress.BITS = (*compress.BITS, 77)
compress.STRUCTURES = (*compress.STRUCTURES, "zz-blocks")
compress.SCOPES = (*compress.SCOPES, "zz-scope")
compress.ALGORITHMS = (*compress.ALGORITHMS, "zz-algo")
studyfile.BUDGET_MODES = (*studyfile.BUDGET_MODES, "zz-budgets")
compress.GROUPS = (*compress.GROUPS, 99)

class Zeta(Plugin):
    name = "zz-plugin"
    point_kinds = ("zz-kind",)

register_plugin(Zeta())
import typer
from scalelab.cli import app
cmds = typer.main.get_command(app).commands
out = {}
for c, o in json.loads(sys.argv[1]):
    (p,) = [p for p in cmds[c].params if o in p.opts]
    out[f"{c} {o}"] = p.help
print(json.dumps(out))
"""

NEW = {
    "fit --form": "zz-law",
    "fit --resample": "zz-resample",
    "fit --x": "zz-x",
    "fit --reward": "zz-reward",
    "points --kind": "zz-kind",
    "tune --sampler": "zz-sampler",
    "capacity --precision": "zz-int3",
    "posttrain --method": "zz-method",
    "posttrain --task": "zz-task",
    "finetune --set": "zz-tune",
    "corpus --tokenizer": "zz-tok",
    "demo --budgets": "zz-budgets",
    "count --dtype": "zz-fp6",
    "count --recompute": "zz-some",
    "compress --method": "zz-compress",
    "intrinsic --projection": "zz-proj",
    "compress --level": "77",
    "compress --structure": "zz-blocks",
    "compress --scope": "zz-scope",
    "compress --algorithm": "zz-algo",
    "compress --group": "99",
}


def test_a_new_entry_in_a_table_shows_in_the_help() -> None:
    pairs = [(c, o) for c, o, _ in CHOICES]
    assert {f"{c} {o}" for c, o in pairs} == set(NEW)
    r = subprocess.run(
        [sys.executable, "-c", _ADD_ENTRIES, json.dumps(pairs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    helps = json.loads(r.stdout)
    missing = {k: helps[k] for k, entry in NEW.items() if not _names(helps[k], entry)}
    assert not missing, missing


def test_a_registered_plugins_point_kind_is_a_kind_points_accepts(tmp_path) -> None:
    """``points --kind`` checks against the plug-ins' kinds as registered when it runs."""
    from scalelab.plugin import Plugin, register_plugin, unregister_plugin
    from scalelab.results.store import Store

    db = tmp_path / "s.db"
    with Store(db):
        pass

    class Zeta(Plugin):
        name = "zz-plugin"
        point_kinds = ("zz-kind",)

    runner = CliRunner()
    before = runner.invoke(app, ["points", "--db", str(db), "--kind", "zz-kind"])
    assert "is not one of" in str(before.exception)
    register_plugin(Zeta())
    try:
        after = runner.invoke(app, ["points", "--db", str(db), "--kind", "zz-kind"])
    finally:
        unregister_plugin("zz-plugin")
    assert after.exit_code == 0, after.output


# --- brackets ---------------------------------------------------------------------------------

BRACKETED = re.compile(r"\[[^\]\s]+\]")  # [model], [tune.space], [:max_bytes=N], ...


def _commands() -> dict[str, object]:
    return dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_every_bracketed_word_of_every_help_survives() -> None:
    """Rich markup would take ``[model]`` for a style tag and drop it: every ``[word]`` of a
    command's docstring and of its options' help is printed by ``--help`` as written."""
    runner = CliRunner()
    checked = 0
    lost: dict[str, list[str]] = {}
    for name, cmd in sorted(_commands().items()):
        texts = [getattr(cmd, "help", "") or ""]
        texts += [getattr(p, "help", "") or "" for p in getattr(cmd, "params", [])]
        words = set(BRACKETED.findall(" ".join(texts)))
        if not words:
            continue
        out = runner.invoke(app, [name, "--help"], terminal_width=250).output
        checked += len(words)
        gone = sorted(w for w in words if w not in out)
        if gone:
            lost[name] = gone
    assert checked >= 5  # train's [model], [data], [train]; tune's [tune], [tune.space]; ...
    assert not lost, f"--help dropped {lost}"
