"""A graph of runs: the runs a study asks for, the runs they need, and the order to train them.

A run may need other runs to have finished before it starts (a WSD branch needs its parent's
stable-phase state, a student its teacher, a fine-tune its base). Each run is still one run
directory named by its config; the graph only says which must end first.

* :func:`build_graph` closes a list of configs over a ``needs(cfg) -> [RunConfig]`` function
  (by default :func:`scalelab.plugin.run_needs`: what the registered plug-ins declare, e.g.
  a distilled student's teacher given as a run TOML):
  every needed run that is not in the list is added (after the ones asked for), and a cycle
  (a run that needs itself, through any chain) is a :class:`~scalelab.errors.ScalelabError`
  naming the chain, raised before any run starts.
* :meth:`RunGraph.order` is the order to start them in: a run only after the runs it needs
  and, among the runs that are ready, the one with the longest *chain of work* first: its
  own cost plus the longest chain of runs waiting on it (the "highest level first" list
  schedule, Adam, Chandy & Dickson 1974). For runs that nobody needs this is the
  longest-processing-time order of the sweep (Graham 1969): long runs start early and
  the short ones fill the gaps at the end.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from scalelab.config import RunConfig
from scalelab.errors import ScalelabError
from scalelab.plugin import run_needs

Needs = Callable[[RunConfig], Sequence[RunConfig]]  # a run -> the runs it needs first
Cost = Callable[[RunConfig], float | None]  # planned FLOPs (or tokens); None: unknown, 0


def no_needs(cfg: RunConfig) -> list[RunConfig]:
    """The default: no run needs another."""
    return []


@dataclass(frozen=True)
class RunGraph:
    """Runs by id (the ones asked for first, in their order, then the added ones) and, for
    each, the ids of the runs it needs."""

    configs: Mapping[str, RunConfig]
    needs: Mapping[str, tuple[str, ...]]
    added: frozenset[str]  # ids not asked for: there because another run needs them

    def needed_by(self) -> dict[str, list[str]]:
        """id -> the runs that need it (the graph's edges reversed)."""
        out: dict[str, list[str]] = {k: [] for k in self.configs}
        for run, needs in self.needs.items():
            for n in needs:
                out[n].append(run)
        return out

    def chain_cost(self, cost: Cost) -> dict[str, float]:
        """id -> its own cost plus the costliest chain of runs that wait on it."""
        below = self.needed_by()
        own = {k: float(cost(c) or 0.0) for k, c in self.configs.items()}
        memo: dict[str, float] = {}

        def level(k: str) -> float:
            if k not in memo:  # acyclic (checked when built): the recursion ends
                memo[k] = own[k] + max((level(d) for d in below[k]), default=0.0)
            return memo[k]

        for k in self.configs:
            level(k)
        return memo

    def order(self, cost: Cost | None = None) -> list[str]:
        """Every run id, each after the runs it needs; among the ready ones the longest
        chain first (ties: the order the runs were given in)."""
        levels = self.chain_cost(cost or (lambda _c: 0.0))
        index = {k: i for i, k in enumerate(self.configs)}
        waiting = {k: len(set(v)) for k, v in self.needs.items()}
        below = self.needed_by()
        ready = [(-levels[k], index[k], k) for k, n in waiting.items() if n == 0]
        heapq.heapify(ready)
        out: list[str] = []
        while ready:
            _, _, k = heapq.heappop(ready)
            out.append(k)
            for d in set(below[k]):
                waiting[d] -= 1
                if waiting[d] == 0:
                    heapq.heappush(ready, (-levels[d], index[d], d))
        return out


def build_graph(configs: Iterable[RunConfig], needs: Needs | None = None) -> RunGraph:
    """The runs ``configs`` and every run they need (through ``needs``), checked acyclic.

    Raises :class:`ScalelabError` on a cycle, naming the runs of the chain."""
    needs = needs or run_needs  # by default, what the registered plug-ins declare
    nodes: dict[str, RunConfig] = {}
    for c in configs:
        nodes.setdefault(c.run_id(), c)
    asked = set(nodes)
    edges: dict[str, tuple[str, ...]] = {}
    todo = list(nodes)
    while todo:
        k = todo.pop(0)
        if k in edges:
            continue
        wanted = list(needs(nodes[k]))
        ids = []
        for w in wanted:
            wid = w.run_id()
            ids.append(wid)
            if wid not in nodes:
                nodes[wid] = w
                todo.append(wid)
        edges[k] = tuple(dict.fromkeys(ids))
    _check_acyclic(edges)
    return RunGraph(nodes, edges, frozenset(nodes) - asked)


def _check_acyclic(edges: Mapping[str, tuple[str, ...]]) -> None:
    """Depth-first search with three colours; a grey node reached again closes a cycle."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    for root in edges:
        if colour[root] != white:
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            k, i = stack.pop()
            if i == 0:
                colour[k] = grey
                path.append(k)
            children = edges[k]
            if i < len(children):
                stack.append((k, i + 1))
                child = children[i]
                if colour[child] == grey:
                    chain = [*path[path.index(child) :], child]
                    raise ScalelabError(
                        "runs that need each other in a cycle: "
                        + " -> ".join(chain)
                        + "; a run cannot need itself, directly or through other runs: "
                        "remove one of these needs"
                    )
                if colour[child] == white:
                    stack.append((child, 0))
            else:
                colour[k] = black
                path.pop()


__all__ = ["Cost", "Needs", "RunGraph", "build_graph", "no_needs"]
