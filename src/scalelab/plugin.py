"""Plug-ins: what a technique does to a run, declared once and called by the core.

The core (``config``, ``data``, ``models``, ``train``, ``study``) knows no technique by
name. A technique (distillation, canaries, downstream tasks, ...) is a :class:`Plugin`
subclass whose methods default to "nothing"; the core calls every registered plug-in at
fixed points of a run's life and the plug-ins that do nothing there cost nothing. The model
is :mod:`scalelab.architectures.arch` for architectures (one entry per architecture, lazy
``"module:attr"`` references for what is heavy) and optuna's ``BaseSampler`` (a base class
whose hooks a sampler overrides one by one).

The points of a run's life, in order:

* **config** -- :attr:`Plugin.section` names the TOML table it owns: a top-level section
  (``"distill"``: ``[distill]``) or a sub-key of a core section (``"data.canaries"``), and
  :attr:`Plugin.config` its frozen dataclass. ``RunConfig`` holds the plug-ins' sections
  generically (``cfg.section("distill")``); :meth:`Plugin.run_id_part` says what of it the
  run id hashes (by default the section when :meth:`Plugin.active`, else nothing, so a run
  without the technique keeps the id it had before the technique existed).
* **needs** -- :meth:`Plugin.needs`: runs that must be finished before this one starts (a
  teacher, a reference model, a base model); :func:`run_needs` unions them over all
  plug-ins, and the sweep orders runs by it.
* **data** -- :meth:`Plugin.data`: change the token source before training (canaries).
* **training** -- :meth:`Plugin.train_hook` returns a :class:`TrainHook` for one run (or
  None): it may change the model once set up, the loss of every micro-batch (distillation)
  and adds its piece to the run's summary.
* **after the run** -- :meth:`Plugin.after_run`: what a sweep runs on a finished run
  (downstream tasks, intrinsic dimension), configured by the ``[study]`` keys the plug-in
  owns (:attr:`Plugin.study_keys`, checked by :meth:`Plugin.parse_study` before anything
  runs).
* **points** -- :attr:`Plugin.point_kinds`: the ``kind`` values of the store's points it
  writes; :meth:`Plugin.point_fields` turns a run's summary into the point's technique
  columns.
* **analyses** -- :meth:`Plugin.comparison` adds the technique's part to an
  architecture comparison (downstream tasks' slopes).
* **report and CLI** -- :attr:`Plugin.report` and :attr:`Plugin.cli` are lazy
  ``"module:attr"`` / ``"module"`` references to its report section builder and its command
  group, imported only by the report and the command line.

How to add a technique (one module and one registration)::

    # mytech.py
    from dataclasses import dataclass
    from scalelab.plugin import Plugin, register_plugin

    @dataclass(frozen=True)
    class MyConfig:
        weight: float = 0.0

    class MyTech(Plugin):
        name = "mytech"
        section = "mytech"          # [mytech] weight = 0.1
        config = MyConfig

        def active(self, cfg):
            return self.value(cfg) is not None and self.value(cfg).weight > 0

        def train_hook(self, run):
            return MyHook(self.value(run.cfg))   # a TrainHook with its own loss()

    register_plugin(MyTech())

Import ``mytech`` before loading a config with a ``[mytech]`` section; the built-in
techniques are registered by ``import scalelab`` (:mod:`scalelab.builtin`), above the core,
never by the core importing a technique. A sweep's (or a search's) spawned workers and Ray
tasks register the same plug-ins as the process that started them, in the same order: the
pool hands each worker :func:`plugin_refs` (every registered plug-in's class as
``"module:qualname"``) and the worker calls :func:`register_refs`. So a plug-in's class must
be importable by that name (defined at the top level of a module) and made with no
arguments; one defined inside a function works in its own process only (``workers=1``,
``train``), and a sweep with workers or Ray refuses it before it starts. A worked example (a loss term,
a data hook and an after-run point in one class) is ``tests/test_plugin.py``; the table of
hooks is ``docs/plugins.md``. This module is torch-free and imports nothing of scalelab but
the errors, so every layer may use it.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from scalelab.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from scalelab.config import RunConfig


class TrainHook:
    """What a plug-in does inside one training run; made by :meth:`Plugin.train_hook`.

    The loop calls :meth:`loss` on every micro-batch (after the cross-entropy), reads
    :attr:`RunContext.precision` for it once resolved, and puts :meth:`summary` into the
    run's ``summary.json`` under the plug-in's :attr:`Plugin.summary_key`.
    """

    def loss(self, lm: Any, logits: Any, x: Any, y: Any, denom: Any) -> Any:
        """The micro-batch's loss given its language-model loss ``lm`` (a tensor, already
        divided by ``denom``), the model's ``logits``, inputs ``x`` and targets ``y``
        (``-100`` where not scored); default: ``lm`` unchanged."""
        return lm

    def summary(self, tokens: int, flops_total: float) -> dict[str, Any] | None:
        """This plug-in's piece of the run's summary (``None``: nothing)."""
        return None


@dataclass
class RunContext:
    """What a :class:`TrainHook` is made from: the run being set up. ``precision`` (the
    loop's ``Precision``) is filled in once the loop has resolved it, before the first step.
    The runs the run needs (:meth:`Plugin.needs`) are finished before it starts: the sweep
    orders runs by :func:`run_needs` and ``scalelab train`` trains them first; a hook
    never trains another run."""

    cfg: RunConfig
    run_dir: Path
    device: Any  # torch.device
    model: Any  # the nn.Module being trained, freshly initialised
    precision: Any = None


class Plugin:
    """A technique, seen from the core. Every hook defaults to "nothing"; override the
    ones the technique uses. One instance per technique, registered with
    :func:`register_plugin`."""

    name: ClassVar[str] = ""
    # the config section it owns: "distill" ([distill]) or "data.canaries" (a key of [data])
    section: ClassVar[str | None] = None
    config: ClassVar[type | None] = None  # the section's frozen dataclass
    # an unset section reads as config() (a table of defaults, e.g. [distill]) when True,
    # as None (e.g. data.canaries) when False; RunConfig.to_dict writes it either way
    default_section: ClassVar[bool] = False
    summary_key: ClassVar[str | None] = None  # its key in summary.json (None: its name)
    study_keys: ClassVar[tuple[str, ...]] = ()  # [study] keys it owns (tasks, intrinsic)
    point_kinds: ClassVar[tuple[str, ...]] = ()  # the store's point kinds it writes
    # those of point_kinds that are a technique's models set against plain runs of the same
    # ladder (an effective size, the small-vs-large plane): distilled students, compressed
    # models; not trials, fine-tunes or measurements of a run
    plane_kinds: ClassVar[tuple[str, ...]] = ()
    report: ClassVar[str | None] = None  # "module:builder" of its report section
    cli: ClassVar[str | None] = None  # "module" that registers its command group

    # --- config --------------------------------------------------------------------------

    def default(self) -> Any:
        """The section's value when a config does not set it."""
        if self.config is not None and self.default_section:
            return self.config()
        return None

    def value(self, cfg: RunConfig) -> Any:
        """This plug-in's section of ``cfg`` (its default when unset)."""
        if self.section is None:
            return None
        return cfg.section(self.section)

    def active(self, cfg: RunConfig) -> bool:
        """Whether the technique changes this run (default: its section is set)."""
        return self.section is not None and self.value(cfg) not in (None, self.default())

    def check(self, cfg: RunConfig) -> None:
        """Checks across sections that the section alone cannot make (raise ConfigError)."""

    def run_id_part(self, cfg: RunConfig) -> Any:
        """What the run id hashes of this section: the section as a dict when
        :meth:`active`, else None (left out, so the run is the plain run)."""
        if not self.active(cfg):
            return None
        v = self.value(cfg)
        return dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v

    # --- runs this one needs ---------------------------------------------------------------

    def needs(self, cfg: RunConfig) -> list[RunConfig]:
        """Runs that must be finished before ``cfg`` starts (a teacher, a reference)."""
        return []

    # --- training ------------------------------------------------------------------------

    def data(self, cfg: RunConfig, data: Any) -> Any:
        """The token source the run trains on (after ``data.select`` and
        ``data.fraction``); default: ``data`` unchanged."""
        return data

    def train_hook(self, run: RunContext) -> TrainHook | None:
        """The hook for one run once its model is built (None: nothing to do)."""
        return None

    # --- after the run ---------------------------------------------------------------------

    def parse_study(self, key: str, value: Any) -> Any:
        """Check the ``[study]`` key ``key`` (one of :attr:`study_keys`) before anything runs
        and return the value to keep (hashable where the study hashes it)."""
        return value

    def check_study(self, settings: Mapping[str, Any], configs: Sequence[RunConfig]) -> None:
        """Check this plug-in's ``[study]`` keys (``settings``) against the runs of the
        grid before any of them trains (raise ConfigError): a key that could do nothing for
        these runs is refused then, not skipped with a warning after training."""

    def after_run(
        self,
        run_dir: Path,
        cfg: RunConfig | None,
        summary: Mapping[str, Any] | None,
        *,
        settings: Mapping[str, Any],
        db: str | Path | None = None,
    ) -> None:
        """Measure a finished run (a sweep calls it on each): ``settings`` holds this
        plug-in's ``[study]`` keys that the study set; ``db`` is the results store (None: the
        run directory only). Called only when ``settings`` is not empty."""

    # --- points and report -----------------------------------------------------------------

    def point_fields(
        self, summary: Mapping[str, Any], config: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The technique columns of a run's point (``kind``, ``technique``,
        ``parent_run_id``, ``extra_json``) read from its summary and config dicts, or None
        when this run is not this technique's point."""
        return None

    def comparison(
        self,
        cmp: Any,
        db: str | Path,
        *,
        study: str | None,
        bootstrap: int,
        seed: int,
        archs: Any,
    ) -> None:
        """Add this technique's part to an architecture comparison of the store ``db``
        (a :class:`scalelab.analysis.arch_compare.Comparison`, changed in place): downstream
        tasks fill ``cmp.downstream``."""

    def report_builder(self) -> Any:
        """Its report section builder (``ReportContext -> Section | None``), or None."""
        return _resolve(self.report) if self.report else None

    def __repr__(self) -> str:
        return f"<plugin {self.name}>"


def _resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


_PLUGINS: dict[str, Plugin] = {}


def register_plugin(plugin: Plugin) -> Plugin:
    """Add ``plugin`` (a name registered again is replaced); returns it."""
    if not plugin.name:
        raise ConfigError(f"{type(plugin).__name__} has no name: set its class attribute name")
    if plugin.section is not None and plugin.config is None:
        raise ConfigError(f"plug-in {plugin.name!r} owns {plugin.section!r} but has no config")
    for other in _PLUGINS.values():
        if other.name == plugin.name:
            continue
        if plugin.section is not None and other.section == plugin.section:
            raise ConfigError(
                f"plug-ins {other.name!r} and {plugin.name!r} both own the section "
                f"{plugin.section!r}"
            )
        clash = set(plugin.study_keys) & set(other.study_keys)
        if clash:
            raise ConfigError(
                f"plug-ins {other.name!r} and {plugin.name!r} both own study.{clash.pop()}"
            )
    _PLUGINS[plugin.name] = plugin
    return plugin


def plugin_refs() -> list[str]:
    """Every registered plug-in's class as ``"module:qualname"``, in registration order: what
    a worker process or a Ray task registers (:func:`register_refs`) to run the plug-ins of
    the process that started it. ``ConfigError`` for a class no other process can import
    (defined inside a function)."""
    refs = []
    for p in _PLUGINS.values():
        cls = type(p)
        ref = f"{cls.__module__}:{cls.__qualname__}"
        if "<locals>" in cls.__qualname__:
            raise ConfigError(
                f"plug-in {p.name!r}: its class {ref} is defined inside a function, so a worker "
                "process cannot import it; define it at the top level of a module, or run "
                "with one worker and no Ray"
            )
        refs.append(ref)
    return refs


def register_refs(refs: list[str] | tuple[str, ...]) -> None:
    """Make this process's plug-ins those named by ``refs`` (:func:`plugin_refs` of the
    process that started it), in that order: a class already registered here keeps its
    instance, the others are imported and made with no arguments."""
    classes = [_resolve(ref) for ref in refs]
    here = {type(p): p for p in _PLUGINS.values()}
    _PLUGINS.clear()
    for cls in classes:
        register_plugin(here.get(cls) or cls())


def unregister_plugin(name: str) -> None:
    """Remove a plug-in (tests register their own and take them away again)."""
    _PLUGINS.pop(name, None)


def plugins() -> list[Plugin]:
    """The registered plug-ins, in registration order (the order their hooks run in)."""
    return list(_PLUGINS.values())


def get_plugin(name: str) -> Plugin:
    if name not in _PLUGINS:
        raise ConfigError(
            f"no plug-in named {name!r}{did_you_mean(name, _PLUGINS)}; registered: "
            f"{', '.join(_PLUGINS) or 'none (import scalelab registers the built-in ones)'}"
        )
    return _PLUGINS[name]


def section_plugins() -> dict[str, Plugin]:
    """Section key (``"distill"``, ``"data.canaries"``) -> the plug-in that owns it."""
    return {p.section: p for p in _PLUGINS.values() if p.section is not None}


def study_key_plugins() -> dict[str, Plugin]:
    """``[study]`` key -> the plug-in that owns it."""
    return {k: p for p in _PLUGINS.values() for k in p.study_keys}


def run_needs(cfg: RunConfig) -> list[RunConfig]:
    """Every run ``cfg`` needs finished first, over all plug-ins, each once, in order."""
    out: list[RunConfig] = []
    seen: set[str] = set()
    for p in _PLUGINS.values():
        for need in p.needs(cfg):
            if need.run_id() not in seen:
                seen.add(need.run_id())
                out.append(need)
    return out


def train_hooks(run: RunContext) -> list[tuple[Plugin, TrainHook]]:
    """The training hooks of the plug-ins active in ``run.cfg``, in registration order."""
    hooks = []
    for p in _PLUGINS.values():
        if p.active(run.cfg):
            hook = p.train_hook(run)
            if hook is not None:
                hooks.append((p, hook))
    return hooks


def apply_data_hooks(cfg: RunConfig, data: Any) -> Any:
    """The token source after every active plug-in's :meth:`Plugin.data`."""
    for p in _PLUGINS.values():
        if p.active(cfg):
            data = p.data(cfg, data)
    return data


def parse_study_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    """The plug-ins' ``[study]`` keys found in ``values``, each checked by its plug-in."""
    owners = study_key_plugins()
    return {k: owners[k].parse_study(k, v) for k, v in values.items() if k in owners}


def check_study_keys(settings: Mapping[str, Any], configs: Sequence[RunConfig]) -> None:
    """:meth:`Plugin.check_study` of every plug-in that owns a key of ``settings``."""
    for p in _PLUGINS.values():
        mine = {k: settings[k] for k in p.study_keys if settings.get(k)}
        if mine:
            p.check_study(mine, configs)


def run_after_hooks(
    run_dir: str | Path,
    settings: Mapping[str, Any],
    *,
    db: str | Path | None = None,
    cfg: RunConfig | None = None,
    summary: Mapping[str, Any] | None = None,
) -> None:
    """Call :meth:`Plugin.after_run` of every plug-in that owns a key of ``settings``
    (a study's plug-in keys, :func:`parse_study_keys`), in registration order."""
    for p in _PLUGINS.values():
        mine = {k: settings[k] for k in p.study_keys if settings.get(k)}
        if mine:
            p.after_run(Path(run_dir), cfg, summary, settings=mine, db=db)


def point_fields(summary: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The technique columns of a run's point: those of the first plug-in, in registration
    order, whose :meth:`Plugin.point_fields` claims the run ({} for a plain run)."""
    for p in _PLUGINS.values():
        fields = p.point_fields(summary, config)
        if fields:
            return fields
    return {}


def point_kinds() -> tuple[str, ...]:
    """Every point kind the registered plug-ins write."""
    return tuple(k for p in _PLUGINS.values() for k in p.point_kinds)


def plane_kinds() -> tuple[str, ...]:
    """The point kinds the small-vs-large analysis reads as a technique's models
    (:attr:`Plugin.plane_kinds`), in registration order."""
    return tuple(k for p in _PLUGINS.values() for k in p.plane_kinds)


def report_builders() -> list[Any]:
    """The plug-ins' report section builders, in registration order, each once."""
    out: list[Any] = []
    refs: set[str] = set()
    for p in _PLUGINS.values():
        if p.report and p.report not in refs:
            refs.add(p.report)
            out.append(p.report_builder())
    return out


def cli_modules() -> list[str]:
    """The plug-ins' command-group modules, in registration order, each once."""
    return list(dict.fromkeys(p.cli for p in _PLUGINS.values() if p.cli))
