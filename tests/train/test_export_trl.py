"""A run's Hugging Face export trains in TRL: one DPOTrainer step on a tiny preference set.

TRL (``trl``, in the dev extra) is what users already run DPO with; scalelab's own DPO does
not depend on it. No network: the tokenizer and the pairs are built here.
"""

from __future__ import annotations

import math

import pytest
import torch

from scalelab.train import train
from scalelab.train.export import export, load_export

pytest.importorskip("trl")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
datasets = pytest.importorskip("datasets")


def word_tokenizer(vocab_size: int, eos: int) -> transformers.PreTrainedTokenizerFast:
    """Token i is the word ``w{i}``: text and ids map one to one, so what TRL tokenizes is
    what our model sees."""
    vocab = {f"w{i}": i for i in range(vocab_size)}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token=f"w{eos}"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    name = f"w{eos}"
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=name, pad_token=name, unk_token=name
    )


def test_an_export_trains_one_dpo_step_in_trl(make_cfg, tmp_path, monkeypatch):
    from trl import DPOConfig, DPOTrainer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = make_cfg("train.tokens=2560")
    out = export(train(cfg, tmp_path / "runs", progress=False).path)
    vocab, eos = cfg.model.vocab_size, 0
    model = transformers.AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    g = torch.Generator().manual_seed(0)

    def ids(n: int) -> list[int]:
        return torch.randint(1, vocab, (n,), generator=g).tolist()

    rows = [(ids(4), ids(3), ids(3)) for _ in range(4)]
    text = lambda xs: " ".join(f"w{i}" for i in xs)  # noqa: E731
    pairs = datasets.Dataset.from_dict(
        {
            "prompt": [text(p) for p, _, _ in rows],
            # a leading space: TRL joins prompt and completion as text
            "chosen": [" " + text(c) for _, c, _ in rows],
            "rejected": [" " + text(r) for _, _, r in rows],
        }
    )
    args = DPOConfig(
        output_dir=str(tmp_path / "dpo"),
        max_steps=1,
        per_device_train_batch_size=len(rows),
        learning_rate=1e-3,
        beta=0.1,
        max_length=cfg.model.context,
        gradient_checkpointing=False,
        use_cpu=True,
        bf16=False,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = DPOTrainer(
        model=model, args=args, train_dataset=pairs, processing_class=word_tokenizer(vocab, eos)
    )
    trainer.train()
    log = trainer.state.log_history[0]
    # the policy starts as its own reference: every implicit reward is 0, the loss log 2
    assert log["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert log["rewards/margins"] == pytest.approx(0.0, abs=1e-6)
    # TRL's log-probabilities of the chosen completions (with the EOS it appends) are the
    # ones scalelab's own model gives the same tokens
    _, ours, _ = load_export(out)
    ours.eval()
    total = 0.0
    with torch.no_grad():
        for p, c, _ in rows:
            seq = torch.tensor([p + c + [eos]])
            logp = torch.log_softmax(ours(seq[:, :-1]), -1)[0, len(p) - 1 :]
            total += logp.gather(1, seq[0, len(p) :, None]).sum().item()
    assert log["logps/chosen"] == pytest.approx(total / len(rows), abs=1e-3)
    moved = max((model.state_dict()[k] - v).abs().max().item() for k, v in before.items())
    assert moved > 1e-5  # the step changed the weights
