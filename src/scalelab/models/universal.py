"""Universal Transformer: one block applied n_layer times (Dehghani et al. 2019).

The inductive bias is recurrence in depth: the same transition function refines every
position's representation at each step, so parameters do not grow with depth while compute
does. This is the fixed-depth variant (the paper's Adaptive Computation Time halting is an
optional extension it evaluates separately; a fixed number of steps is what makes FLOPs per
token a property of the config).

At step t (1-based) the paper adds a coordinate embedding before the shared block
(Dehghani et al. 2019, sec. 2.1, eq. 1-3): the position signal and a sinusoidal *timestep*
signal ``T^t_{2j} = sin(t / 10000^{2j/d})``, ``T^t_{2j+1} = cos(t / 10000^{2j/d})``. Positions
here come from ``model.pos`` (learned, rotary or none) like the other architectures, added
at every step when learned; the timestep signal is fixed (no parameters). The paper's
signals have the scale of its embeddings (tensor2tensor multiplies embeddings by sqrt(d),
unit scale); ours are GPT-2 embeddings of scale ``init_std``, so the timestep signal is
multiplied by ``init_std`` to stay commensurate rather than drown the tokens at init.

Parameter layout: ``tok_emb``, ``pos_emb`` (learned positions), ``block`` (one
``transformer.Block``), ``norm_f``, ``head``. Accounting: the transformer block's piece
``.reused(n_layer)`` (parameters once, compute and KV cache n_layer times).
"""

from __future__ import annotations

import torch

from scalelab.config import ModelConfig
from scalelab.models.base import CausalLM
from scalelab.models.transformer import Block


def timestep_signal(n_steps: int, d_model: int) -> torch.Tensor:
    """[n_steps, d_model] sinusoidal signal of the step index t = 1..n_steps (Vaswani et al.
    2017 sec. 3.5, applied to depth as in Dehghani et al. 2019 sec. 2.1), interleaved sin/cos."""
    t = torch.arange(1, n_steps + 1, dtype=torch.float64)[:, None]
    j = torch.arange(0, d_model, 2, dtype=torch.float64)
    angles = t / 10000.0 ** (j / d_model)
    signal = torch.zeros(n_steps, d_model, dtype=torch.float64)
    signal[:, 0::2] = angles.sin()
    signal[:, 1::2] = angles.cos()[:, : d_model // 2]
    return signal.float()


class UniversalTransformer(CausalLM):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.block = Block(cfg, cfg.causal)
        signal = cfg.init_std * timestep_signal(cfg.n_layer, cfg.d_model)
        self.register_buffer("timestep", signal, persistent=False)
        # the shared block writes into the residual stream 2 n_layer times, as a stack would
        self.init_weights(residual_writes=2 * cfg.n_layer)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x, rope = self.embed(idx)
        T = idx.shape[1]
        position = (
            self.pos_emb(torch.arange(T, device=idx.device)) if self.pos_emb is not None else None
        )
        for step in range(self.cfg.n_layer):
            if step > 0 and position is not None:  # step 1's position signal came with embed()
                x = x + position
            x = self.block(x + self.timestep[step], rope)
        return self.logits(x)
