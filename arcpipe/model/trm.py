"""The Tiny Recursive Model (paper Algorithm 3; reference §4.3).

One small network ``f`` (``num_layers`` post-norm blocks) refines a latent ``z`` and an answer
``y``, both (B, L, D), given the embedded puzzle ``x``::

    repeat T times (the first T-1 without gradients):
        repeat n times:  z = f(z + y + x)      # latent reasoning
        y = f(y + z)                           # answer update

One call of :meth:`TRM.forward` is one supervision (ACT) step: T(n+1) applications of ``f``,
gradients through the last n+1. The board logits come from ``y`` past the puzzle prefix; the halting
logits from ``y`` at position 0.

Shape legend: B batch, S board tokens, P puzzle-prefix positions, L = P + S, D hidden, V vocab.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from arcpipe.config import ModelConfig
from arcpipe.model.layers import Block, RotaryEmbedding, linear, trunc_normal_
from arcpipe.model.puzzle_embedding import PuzzleEmbedding

LEARNED_POS_SCALE = 1 / math.sqrt(2)  # averages token and position embeddings, as the reference


@dataclass
class RecursionState:
    """What one supervision step hands to the next."""

    answer: torch.Tensor  # y, (B, L, D)
    latent: torch.Tensor  # z, (B, L, D)


@dataclass
class StepOutput:
    """One supervision step's results."""

    state: RecursionState  # detached from the graph
    logits: torch.Tensor  # (B, S, V)
    q_halt: torch.Tensor  # (B,) float32 halting logit
    q_continue: torch.Tensor  # (B,) float32, unused by the default loss (no ACT continue)


class TRM(nn.Module):
    """The network, its embeddings and heads; the puzzle table lives in ``puzzle_table``.

    Args:
        config: the model recipe.
        vocab_size, seq_len: from the dataset (V, S).
        num_puzzle_ids: rows of the puzzle table, the blank id 0 included.
        seed: initialisation seed; the same seed gives the same weights on any device.
    """

    def __init__(
        self, config: ModelConfig, vocab_size: int, seq_len: int, num_puzzle_ids: int, seed: int = 0
    ) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        D = config.hidden_size
        self.config = config
        self.vocab_size, self.seq_len = vocab_size, seq_len
        self.prefix_len = config.puzzle_emb_len if config.puzzle_emb_dim > 0 else 0
        positions = self.prefix_len + seq_len
        self.compute_dtype = torch.float32  # the trainer sets bfloat16 on GPUs

        self.embed = nn.Embedding(vocab_size, D)
        trunc_normal_(self.embed.weight, 1 / math.sqrt(D), g)
        self.embed_scale = math.sqrt(D)
        self.puzzle_table = (
            PuzzleEmbedding(num_puzzle_ids, config.puzzle_emb_dim) if self.prefix_len else None
        )
        self.pos = None
        if config.pos_encodings == "learned":
            self.pos = nn.Parameter(trunc_normal_(torch.empty(positions, D), 1 / math.sqrt(D), g))
        self.rope = None
        if config.pos_encodings == "rope":
            self.rope = RotaryEmbedding(D // config.num_heads, positions, config.rope_theta)
        self.blocks = nn.ModuleList(
            Block(
                D,
                config.num_heads,
                config.expansion,
                positions,
                config.token_mixer == "mlp",
                config.rms_norm_eps,
                g,
            )
            for _ in range(config.num_layers)
        )
        self.lm_head = linear(D, vocab_size, g)
        self.q_head = nn.Linear(D, 2, bias=True)
        with torch.no_grad():
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(config.halt_init_bias)  # -5: sigmoid ~ 0.007, halting off
        # Fixed (not learned) starting points of y and z, shared by every position and sample.
        self.register_buffer("answer_init", trunc_normal_(torch.empty(D), 1.0, g))
        self.register_buffer("latent_init", trunc_normal_(torch.empty(D), 1.0, g))

    # ------------------------------------------------------------------------- pieces

    def embed_input(self, inputs: torch.Tensor, puzzle_ids: torch.Tensor) -> torch.Tensor:
        """x: board tokens (B, S) and puzzle ids (B,) -> (B, L, D)."""
        x = self.embed(inputs)  # (B, S, D)
        if self.puzzle_table is not None:
            B, D = inputs.shape[0], self.config.hidden_size
            vector = self.puzzle_table(puzzle_ids)  # (B, E)
            prefix = F.pad(vector, (0, self.prefix_len * D - vector.shape[1]))
            x = torch.cat([prefix.view(B, self.prefix_len, D).to(x.dtype), x], dim=1)
        if self.pos is not None:
            x = LEARNED_POS_SCALE * (x + self.pos)
        return (self.embed_scale * x).to(self.compute_dtype)

    def f(self, h: torch.Tensor, injection: torch.Tensor) -> torch.Tensor:
        """The single network: all blocks applied to ``h + injection``, (B, L, D)."""
        h = h + injection
        for block in self.blocks:
            h = block(h, self.rope)
        return h

    def cycle(
        self, y: torch.Tensor, z: torch.Tensor, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One recursion cycle: n latent updates, then one answer update."""
        for _ in range(self.config.latent_steps):
            z = self.f(z, y + x)
        return self.f(y, z), z

    def recurse(
        self, y: torch.Tensor, z: torch.Tensor, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """T cycles; only the last one is differentiated (paper Algorithm 3)."""
        with torch.no_grad():
            for _ in range(self.config.cycles - 1):
                y, z = self.cycle(y, z, x)
        return self.cycle(y, z, x)

    # ------------------------------------------------------------------------- steps

    def initial_state(self, batch_size: int, device: torch.device | None = None) -> RecursionState:
        """Fresh y and z for ``batch_size`` samples, (B, L, D)."""
        shape = (batch_size, self.prefix_len + self.seq_len, self.config.hidden_size)
        answer = self.answer_init.to(device=device, dtype=self.compute_dtype).expand(shape)
        latent = self.latent_init.to(device=device, dtype=self.compute_dtype).expand(shape)
        return RecursionState(answer.contiguous(), latent.contiguous())

    def reset(self, state: RecursionState, mask: torch.Tensor) -> RecursionState:
        """Restart the samples where ``mask`` (B,) is set from the initial y and z."""
        m = mask.view(-1, 1, 1)
        answer = torch.where(m, self.answer_init.to(state.answer.dtype), state.answer)
        latent = torch.where(m, self.latent_init.to(state.latent.dtype), state.latent)
        return RecursionState(answer, latent)

    def forward(
        self, state: RecursionState, inputs: torch.Tensor, puzzle_ids: torch.Tensor
    ) -> StepOutput:
        """One supervision step from ``state`` on boards ``inputs`` (B, S)."""
        x = self.embed_input(inputs, puzzle_ids)
        y, z = self.recurse(state.answer, state.latent, x)
        logits = self.lm_head(y[:, self.prefix_len :])  # (B, S, V)
        q = self.q_head(y[:, 0]).float()  # (B, 2)
        return StepOutput(RecursionState(y.detach(), z.detach()), logits, q[:, 0], q[:, 1])

    def compile_network(self) -> None:
        """``torch.compile`` the network f, which the recursion calls T(n+1) times a step.

        Fuses the norms, rotary embedding and SwiGLU gating around the matrix products; the
        embeddings, heads and the puzzle table stay eager.
        """
        self.f = torch.compile(self.f, dynamic=False)

    def num_parameters(self) -> int:
        """Trainable parameters (the puzzle table is a buffer and is not counted)."""
        return sum(p.numel() for p in self.parameters())
