import dataclasses

import pytest

from scalelab.config import RunConfig, run_config_from_dict
from scalelab.errors import ScalelabError
from scalelab.study.graph import build_graph


def cfg(d: int, seed: int = 0) -> RunConfig:
    return run_config_from_dict(
        {
            "model": {"n_layer": 1, "d_model": d, "n_head": 2, "vocab_size": 64, "context": 16},
            "train": {"seed": seed, "tokens": 1000},
        }
    )


def with_tokens(c: RunConfig, tokens: int) -> RunConfig:
    return dataclasses.replace(c, train=dataclasses.replace(c.train, tokens=tokens))


def test_needed_runs_are_added_and_ordered_first():
    a, b = cfg(16), cfg(32)
    parent = cfg(64)

    def needs(c):
        return [parent] if c.model.d_model in (16, 32) else []

    g = build_graph([a, b], needs)
    assert set(g.configs) == {a.run_id(), b.run_id(), parent.run_id()}
    assert g.added == {parent.run_id()}
    assert g.needs[a.run_id()] == (parent.run_id(),)
    order = g.order()
    assert order[0] == parent.run_id()
    assert order[1:] == [a.run_id(), b.run_id()]  # ties keep the order given


def test_cycle_is_an_error_naming_the_runs():
    a, b, c = cfg(16), cfg(32), cfg(48)
    table = {a.run_id(): [b], b.run_id(): [c], c.run_id(): [a]}
    with pytest.raises(ScalelabError, match="cycle") as e:
        build_graph([a], lambda x: table[x.run_id()])
    assert a.run_id() in str(e.value) and c.run_id() in str(e.value)
    with pytest.raises(ScalelabError, match="cycle"):
        build_graph([a], lambda x: [x])  # a run needing itself


def test_longest_first_among_ready_runs():
    short, mid, long = cfg(16), cfg(32), cfg(48)
    cost = {short.run_id(): 1.0, mid.run_id(): 5.0, long.run_id(): 9.0}
    g = build_graph([short, mid, long])
    assert g.order(lambda c: cost[c.run_id()]) == [long.run_id(), mid.run_id(), short.run_id()]


def test_a_cheap_run_that_a_long_one_waits_on_goes_first():
    # the chain through `base` (1 + 20) is longer than `big` alone (10): base starts first
    base, after, big = cfg(16), cfg(32), cfg(48)
    cost = {base.run_id(): 1.0, after.run_id(): 20.0, big.run_id(): 10.0}
    g = build_graph([big, after], lambda c: [base] if c.run_id() == after.run_id() else [])
    order = g.order(lambda c: cost[c.run_id()])
    assert order == [base.run_id(), after.run_id(), big.run_id()]
    assert g.chain_cost(lambda c: cost[c.run_id()])[base.run_id()] == 21.0


def test_diamond_needs_each_run_once():
    top, left, right, bottom = cfg(16), cfg(32), cfg(48), cfg(64)
    table = {
        bottom.run_id(): [left, right],
        left.run_id(): [top],
        right.run_id(): [top],
        top.run_id(): [],
    }
    g = build_graph([bottom], lambda c: table[c.run_id()])
    order = g.order()
    assert len(order) == 4 and order[0] == top.run_id() and order[-1] == bottom.run_id()
