"""Sampling with and without the key-value cache (scalelab.models.generate)."""

from __future__ import annotations

import pytest
import torch

from scalelab.accounting import count
from scalelab.config import ModelConfig
from scalelab.models import build_model
from scalelab.models.generate import GenerateError, generate, position_flops, prefix_flops
from scalelab.models.transformer import KVCache

VARIANTS = {
    "gpt2": dict(),
    "gpt2-bias": dict(bias=True),
    "llama": dict(norm="rmsnorm", pos="rotary", mlp="swiglu", tie_embeddings=False),
    "gqa": dict(n_kv_head=2, pos="rotary"),
    "mup": dict(parametrization="mup", base_width=16),
}
PROMPTS = [[1, 2, 3], [5], [7, 8, 9, 10, 11], [4, 4]]


def tiny(**kw) -> ModelConfig:
    base = dict(n_layer=2, d_model=32, n_head=4, vocab_size=64, context=32)
    return ModelConfig(**{**base, **kw})


def model_of(variant: str = "gpt2", **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(tiny(**VARIANTS[variant], **kw))
    # sharper than at initialisation, so that sampling and greedy differ visibly
    with torch.no_grad():
        model.head.weight.mul_(20.0)
    return model


def seeded(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_cached_and_recomputed_generation_agree(variant, temperature):
    model = model_of(variant)
    kw = dict(temperature=temperature, top_k=8 if temperature else None)
    a = generate(model, PROMPTS, 12, generator=seeded(), **kw)
    b = generate(model, PROMPTS, 12, generator=seeded(), use_cache=False, **kw)
    assert a.cached and not b.cached
    assert torch.equal(a.completion, b.completion)
    assert a.tokens[1, :5].tolist() == [0, 0, 0, 0, 5]  # left-padded to the longest prompt
    torch.testing.assert_close(a.logprobs, b.logprobs, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.sampling_logprobs, b.sampling_logprobs, atol=1e-5, rtol=0)
    if temperature:  # the draws did something: another seed gives other tokens
        c = generate(model, PROMPTS, 12, generator=seeded(2), **kw)
        assert not torch.equal(a.completion, c.completion)


@pytest.mark.parametrize("variant", VARIANTS)
def test_cached_logits_equal_the_plain_forward_row_by_row(variant):
    """Left-padded rows through the cache, a prefill then one token at a time, give every
    real position the logits the plain forward gives that row alone."""
    model = model_of(variant).eval()
    torch.manual_seed(3)
    rows = [torch.randint(0, 64, (n,)) for n in (9, 4, 13)]
    longest, steps = 6, 7  # prefill the first 6 slots (left-padded), then 7 single steps
    cache = KVCache(model, len(rows), longest + steps)
    prefix = torch.zeros(3, longest, dtype=torch.long)
    real = torch.zeros(3, longest, dtype=torch.bool)
    cut = [min(len(r), longest) for r in rows]  # each row's tokens in the prefill
    for i, r in enumerate(rows):
        prefix[i, longest - cut[i] :] = r[: cut[i]]
        real[i, longest - cut[i] :] = True
    with torch.no_grad():
        got = [[] for _ in rows]
        out = model.forward_cached(prefix, cache, real)
        for i in range(3):
            got[i].extend(out[i, longest - cut[i] :])
        for s in range(steps):
            tok = torch.tensor(
                [r[c + s] if c + s < len(r) else 0 for r, c in zip(rows, cut, strict=True)]
            )
            live = torch.tensor([cut[i] + s < len(rows[i]) for i in range(3)])
            out = model.forward_cached(tok[:, None], cache, live[:, None])
            for i in range(3):
                if live[i]:
                    got[i].append(out[i, 0])
        for i, r in enumerate(rows):
            want = model(r[None])[0]
            torch.testing.assert_close(torch.stack(got[i]), want, atol=2e-5, rtol=1e-5)


def test_forward_without_cache_is_unchanged_by_a_cached_call():
    model = model_of("llama").eval()
    idx = torch.randint(0, 64, (2, 10))
    with torch.no_grad():
        before = model(idx)
        generate(model, PROMPTS, 5)
        assert torch.equal(model(idx), before)


def test_top_k_one_is_greedy():
    model = model_of("gpt2")
    greedy = generate(model, PROMPTS, 10, temperature=0)
    g = seeded()
    top1 = generate(model, PROMPTS, 10, temperature=1.5, top_k=1, generator=g)
    assert torch.equal(top1.completion, greedy.completion)
    assert torch.equal(top1.sampling_logprobs, torch.zeros_like(top1.sampling_logprobs))
    assert not torch.equal(g.get_state(), seeded().get_state())  # it sampled (one token each)
    sampled = generate(model, PROMPTS, 10, temperature=1.5, generator=seeded())
    assert not torch.equal(sampled.completion, greedy.completion)


def test_temperature_towards_zero_becomes_greedy():
    model = model_of("gpt2")
    greedy = generate(model, PROMPTS, 10, temperature=0)
    cold = generate(model, PROMPTS, 10, temperature=1e-4, generator=seeded())
    assert torch.equal(cold.completion, greedy.completion)
    g = seeded()
    generate(model, PROMPTS, 10, temperature=0, generator=g)
    assert torch.equal(g.get_state(), seeded().get_state())  # greedy draws nothing
    # greedy = the argmax of the plain forward, step by step
    seq = torch.tensor([PROMPTS[2]])
    with torch.no_grad():
        for _ in range(10):
            seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], 1)
    assert greedy.completion[2].tolist() == seq[0, len(PROMPTS[2]) :].tolist()


def test_samples_follow_the_top_k_distribution():
    model = model_of("gpt2")
    model.head.weight.data.div_(20.0)  # back to a flat distribution: many tokens in play
    n, k, temperature = 4000, 5, 0.7
    res = generate(model, [[3, 1]] * n, 1, temperature=temperature, top_k=k, generator=seeded())
    with torch.no_grad():
        logits = model(torch.tensor([[3, 1]]))[0, -1]
    top = (logits / temperature).topk(k)
    p = torch.softmax(top.values, -1)
    counts = torch.bincount(res.completion[:, 0], minlength=64).float()
    assert counts.sum() == counts[top.indices].sum()  # nothing outside the top k
    freq = counts[top.indices] / n
    assert (freq - p).abs().max() < 4 * (p * (1 - p) / n).sqrt().max()
    # the log-probs returned are the model's (temperature 1) and the sampled distribution's
    torch.testing.assert_close(
        res.logprobs[:, 0], torch.log_softmax(logits, -1)[res.completion[:, 0]], atol=1e-5, rtol=0
    )
    q = torch.full((64,), float("-inf"))
    q[top.indices] = torch.log(p)
    torch.testing.assert_close(
        res.sampling_logprobs[:, 0], q[res.completion[:, 0]], atol=1e-5, rtol=0
    )


def test_eos_stops_a_row_and_counts_its_tokens():
    model = model_of("gpt2")
    free = generate(model, PROMPTS, 10, temperature=0)
    eos = int(free.completion[0, 3])  # row 0 emits it as its 4th token
    first = [row.index(eos) + 1 if eos in row else 10 for row in free.completion.tolist()]
    res = generate(model, PROMPTS, 10, temperature=0, eos=eos)
    assert res.new_tokens.tolist() == first
    for i, n in enumerate(first):
        assert res.completion[i, :n].tolist() == free.completion[i, :n].tolist()
        assert (res.completion[i, n:] == eos).all() and (res.logprobs[i, n:] == 0).all()
        assert (res.logprobs[i, :n] < 0).all()
    assert first[0] <= 4 and min(first) < 10
    assert [len(c) for c in res.completions()] == first
    assert res.completions()[0] == free.completion[0, : first[0]].tolist()


def test_flops_and_token_counts_by_hand():
    d, layers, vocab, ff = 32, 2, 64, 128
    model = model_of("gpt2")  # learned positions, tied head, no bias, d_ff = 4 d
    # per token: q, k, v and out projections (4 d^2) + MLP (2 d ff) per layer, the head (V d):
    # 2 FLOPs per MAC; attention at position t: scores and values, 2 x (t x d) MACs per layer
    macs = layers * (4 * d * d + 2 * d * ff) + vocab * d
    hand = lambda t: 2 * macs + 2 * layers * 2 * d * t  # noqa: E731
    assert position_flops(model.cfg, 7) == hand(7)
    assert prefix_flops(model.cfg, 12) == sum(hand(t) for t in range(1, 13))
    per_token = count(model.cfg, seq_len=12, causal=True).flops.forward_per_token
    assert prefix_flops(model.cfg, 12) == per_token * 12

    res = generate(model, PROMPTS, 6, temperature=0)
    assert res.new_tokens.tolist() == [6] * 4 and res.prompt_lengths == [3, 1, 5, 2]
    # with the cache each row feeds its prompt and all but its last new token, once
    assert res.flops == sum(sum(hand(t) for t in range(1, p + 6)) for p in (3, 1, 5, 2))
    again = generate(model, PROMPTS, 6, temperature=0, use_cache=False)
    # without it, step s recomputes the prompt and the s tokens before
    want = sum(sum(hand(t) for t in range(1, p + s + 1)) for p in (3, 1, 5, 2) for s in range(6))
    assert again.flops == want
    eos = int(res.completion[1, 1])
    stopped = generate(model, PROMPTS, 6, temperature=0, eos=eos)
    n = stopped.new_tokens.tolist()
    assert n[1] <= 2
    assert stopped.flops == sum(
        sum(hand(t) for t in range(1, p + k)) for p, k in zip((3, 1, 5, 2), n, strict=True)
    )


@pytest.mark.parametrize("arch", ["mos", "lconv", "mixer"])
def test_architectures_without_a_cache_recompute_correctly(arch):
    torch.manual_seed(0)
    model = build_model(tiny(arch=arch))
    res = generate(model, PROMPTS, 5, temperature=0)
    assert not res.cached
    for i, prompt in enumerate(PROMPTS):  # each row alone, greedily, with the plain forward
        seq = torch.tensor([prompt])
        with torch.no_grad():
            for _ in range(5):
                seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], 1)
        assert res.completion[i].tolist() == seq[0, len(prompt) :].tolist()
    with pytest.raises(GenerateError, match="no key-value cache"):
        generate(model, PROMPTS, 5, use_cache=True)


def test_a_tensor_of_prompts_and_the_training_mode():
    model = model_of("gpt2").train()
    prompts = torch.tensor([[1, 2, 3], [4, 5, 6]])
    res = generate(model, prompts, 4, temperature=0)
    assert model.training  # put back
    assert res.tokens.shape == (2, 7) and res.prompt_lengths == [3, 3]
    assert torch.equal(res.tokens[:, :3], prompts) and torch.equal(
        res.tokens[:, 3:], res.completion
    )
    assert torch.equal(
        res.completion, generate(model, prompts.tolist(), 4, temperature=0).completion
    )
    assert torch.equal(generate(model, prompts, 0).tokens, prompts)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(prompts=[]), "no prompt"),
        (dict(prompts=[[1], []]), r"prompts\[1\] is empty"),
        (dict(prompts=[[1, 64]]), "outside the vocabulary"),
        (dict(prompts=torch.zeros(2, 3)), "integer token ids"),
        (dict(max_new_tokens=-1), "max_new_tokens"),
        (dict(max_new_tokens=31), "at most 30"),
        (dict(temperature=-0.5), "temperature"),
        (dict(top_k=0), "top_k"),
        (dict(eos=64), "eos"),
    ],
)
def test_bad_requests_are_one_error_naming_the_field(kw, match):
    model = model_of("gpt2")
    args = dict(prompts=[[1, 2, 3]], max_new_tokens=4) | kw
    with pytest.raises(GenerateError, match=match):
        generate(model, **args)


def test_a_bidirectional_model_cannot_generate():
    model = build_model(tiny(causal=False))
    with pytest.raises(GenerateError, match="bidirectional"):
        generate(model, PROMPTS, 3)
