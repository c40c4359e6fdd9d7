"""The fine-tuning model works on every architecture of the zoo: the head reads the input of
the output layer, and LoRA finds Linear layers in every body."""

import pytest
import torch

from scalelab.architectures import ARCHS
from scalelab.config import example_config
from scalelab.models import build_model
from scalelab.tasks.finetune import collate, finetune_config, task_loss, task_model
from scalelab.tasks.registry import get_task
from scalelab.tasks.supervised import Example


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("method", ["head", "lora"])
def test_every_architecture_takes_a_head_and_adapters(arch, method):
    torch.manual_seed(0)
    cfg = example_config(arch, n_layer=2, d_model=32, n_head=2, vocab_size=40, context=16)
    model = task_model(build_model(cfg), get_task("syntax"), finetune_config(method=method))
    batch = collate([Example((1, 2, 3), 1), Example((4, 5, 6, 7, 8), 0)], get_task("syntax"))
    out = model(batch["idx"], batch["lengths"])
    assert out.shape == (2, 2)
    loss = task_loss(model, batch, get_task("syntax"))
    loss.backward()
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    grads = {n for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    assert {"cls.weight", "cls.bias"} <= grads
    if method == "head":
        assert trained == ["cls.weight", "cls.bias"]
    else:  # an expert no token was routed to (switch) gets no gradient: some adapters do
        assert any("lora_B" in n for n in grads)
