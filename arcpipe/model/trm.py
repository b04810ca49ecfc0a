"""The Tiny Recursive Model (paper Algorithm 3; reference §4.3), and URM as its options.

One small network ``f`` (``num_layers`` post-norm blocks) refines a latent ``z`` and an answer
``y``, both (B, L, D), given the embedded puzzle ``x``::

    repeat T times (the first T-1 without gradients):
        repeat n times:  z = f(z + y + x)      # latent reasoning
        y = f(y + z)                           # answer update

One call of :meth:`TRM.forward` is one supervision (ACT) step: T(n+1) applications of ``f``,
gradients through the last n+1. The board logits come from ``y`` past the puzzle prefix; the halting
logits from ``y`` at position 0. With boxed boards (:mod:`arcpipe.data.layout`) the board is a
task's box, each cell carrying its canvas position, and filler cells masked out of attention.
With a task-shared puzzle table (``puzzle_table = "task"``) the puzzle vector is the task's row
plus a learned code of the variant's augmentation (:mod:`arcpipe.model.puzzle_embedding`).

With ``state = "single"`` (the Universal Reasoning Model, urm-reference §3) there is one hidden
state ``h`` in place of y and z, and no answer update::

    repeat T x n times (the first (T-1) n without gradients):
        h = f(h + x)

so T n applications of ``f``, gradients through the last n (URM's truncated backpropagation
through loops); the logits and halting logits come from ``h`` as from ``y``. URM's network also
uses ``mlp = "conv_swiglu"`` and a one-position prefix (``puzzle_emb_len = 0``).

With denoising (``train.denoise_prob``, :mod:`arcpipe.train.act`) some training samples start
from their target partly revealed in y (or h) instead of blank (:meth:`TRM.reveal`).

Shape legend: B batch, S board tokens, P puzzle-prefix positions, L = P + S, D hidden, V vocab.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from arcpipe.config import ModelConfig
from arcpipe.errors import ArcpipeError
from arcpipe.model.layers import Block, Geometry, RotaryEmbedding, linear, trunc_normal_
from arcpipe.model.puzzle_embedding import AugmentationCode, PuzzleEmbedding

LEARNED_POS_SCALE = 1 / math.sqrt(2)  # averages token and position embeddings, as the reference
# Compiled graphs of f a run may need: one per board length (boxed buckets and the full canvas),
# grad mode (the recursion's no-grad cycles and its last one) and batch shape (an evaluation's
# last, partial batch). torch's default of 8 would leave a boxed run's later buckets eager.
RECOMPILE_LIMIT = 64


@dataclass
class RecursionState:
    """What one supervision step hands to the next."""

    answer: torch.Tensor  # y, or the single state h: the outputs are read from it, (B, L, D)
    latent: torch.Tensor | None = None  # z, (B, L, D); None with state = "single"

    def select(self, index: torch.Tensor) -> RecursionState:
        """The samples picked by ``index`` (a mask or indices over B)."""
        return RecursionState(
            self.answer[index], None if self.latent is None else self.latent[index]
        )


@dataclass
class StepOutput:
    """One supervision step's results."""

    state: RecursionState  # detached from the graph
    logits: torch.Tensor  # (B, S, V)
    q_halt: torch.Tensor  # (B,) float32 halting logit
    q_continue: torch.Tensor  # (B,) float32, unused by the default loss (no ACT continue)


def canvas_coordinates(prefix_len: int, seq_len: int) -> torch.Tensor:
    """(row, column) of every sequence position for ``pos_encodings = "rope2d"``, (P + S, 2).

    Board cell q (of a square canvas of S cells) is at ``divmod(q, canvas)``. Prefix slot i is at
    ``(-1 - i, -1 - i)``: off the canvas, on its diagonal, so that no two positions coincide and
    slot 0 (where the halting logits are read) is one diagonal step from cell (0, 0).

    Raises:
        ArcpipeError: the board is not a square canvas.
    """
    canvas = math.isqrt(seq_len)
    if canvas * canvas != seq_len:
        raise ArcpipeError(
            f"model.pos_encodings = rope2d needs a square canvas, not {seq_len} cells"
        )
    cells = torch.arange(seq_len)
    board = torch.stack([cells // canvas, cells % canvas], dim=1)  # (S, 2)
    prefix = (-1 - torch.arange(prefix_len))[:, None].expand(-1, 2)  # (P, 2)
    return torch.cat([prefix, board]).float()


class TRM(nn.Module):
    """The network, its embeddings and heads; the puzzle table lives in ``puzzle_table``.

    Args:
        config: the model recipe.
        vocab_size, seq_len: from the dataset (V, S).
        num_puzzle_ids: rows of the puzzle table: puzzle ids, the blank id 0 included, or tasks
            (``puzzle_table = "task"``, :meth:`~arcpipe.data.dataset.Dataset.puzzle_table_rows`).
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
        self.prefix_len = config.prefix_len
        positions = self.prefix_len + seq_len
        self.compute_dtype = torch.float32  # the trainer sets bfloat16 on GPUs

        self.embed = nn.Embedding(vocab_size, D)
        trunc_normal_(self.embed.weight, 1 / math.sqrt(D), g)
        self.embed_scale = math.sqrt(D)
        self.puzzle_table = (
            PuzzleEmbedding(num_puzzle_ids, config.puzzle_emb_dim) if self.prefix_len else None
        )
        self.augmentation_code = None  # a task table's code of each variant's augmentation
        if config.puzzle_table == "task":
            self.augmentation_code = AugmentationCode(config.puzzle_emb_dim)
        self.pos = None
        if config.pos_encodings == "learned":
            self.pos = nn.Parameter(trunc_normal_(torch.empty(positions, D), 1 / math.sqrt(D), g))
        self.rope = None
        if config.pos_encodings in ("rope", "rope2d"):
            coordinates = (
                positions
                if config.pos_encodings == "rope"
                else canvas_coordinates(self.prefix_len, seq_len)
            )
            self.rope = RotaryEmbedding(D // config.num_heads, coordinates, config.rope_theta)
        self.blocks = nn.ModuleList(
            Block(
                D,
                config.num_heads,
                config.expansion,
                positions,
                config.token_mixer == "mlp",
                config.rms_norm_eps,
                g,
                getattr(torch, config.conv_param_dtype) if config.mlp == "conv_swiglu" else None,
            )
            for _ in range(config.num_layers)
        )
        self.lm_head = linear(D, vocab_size, g)
        self.q_head = nn.Linear(D, 2, bias=True)
        with torch.no_grad():
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(config.halt_init_bias)  # -5: sigmoid ~ 0.007, halting off
        # Fixed (not learned) starting points of y and z (of h alone with state = "single"),
        # shared by every position and sample.
        self.register_buffer("answer_init", trunc_normal_(torch.empty(D), 1.0, g))
        two = config.state == "two"
        self.register_buffer("latent_init", trunc_normal_(torch.empty(D), 1.0, g) if two else None)

    # ------------------------------------------------------------------------- pieces

    def sequence_positions(self, positions: torch.Tensor) -> torch.Tensor:
        """Positions of the whole sequence (B, L): the prefix's, then each board cell's canvas
        position after it (a filler's is taken as 0; it is masked out)."""
        prefix = torch.arange(self.prefix_len, device=positions.device)
        prefix = prefix.expand(positions.shape[0], -1)
        return torch.cat([prefix, self.prefix_len + positions.clamp(min=0)], dim=1)

    def puzzle_vector(
        self, puzzle_ids: torch.Tensor, augmentation: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The puzzle vectors (B, E): the table's rows, plus each variant's augmentation code
        with a task table (:mod:`arcpipe.model.puzzle_embedding`)."""
        vector = self.puzzle_table(puzzle_ids)  # (B, E)
        if self.augmentation_code is not None:
            vector = vector + self.augmentation_code(augmentation)
        return vector

    def embed_input(
        self,
        inputs: torch.Tensor,
        puzzle_ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        augmentation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: board tokens (B, S), puzzle-table rows (B,), canvas positions (B, S) or None for
        the full canvas, augmentations (B, 11) with a task table -> (B, L, D)."""
        x = self.embed(inputs)  # (B, S, D)
        if self.puzzle_table is not None:
            B, D = inputs.shape[0], self.config.hidden_size
            vector = self.puzzle_vector(puzzle_ids, augmentation)  # (B, E)
            prefix = F.pad(vector, (0, self.prefix_len * D - vector.shape[1]))
            x = torch.cat([prefix.view(B, self.prefix_len, D).to(x.dtype), x], dim=1)
        if self.pos is not None:
            pos = self.pos if positions is None else self.pos[self.sequence_positions(positions)]
            x = LEARNED_POS_SCALE * (x + pos)
        return (self.embed_scale * x).to(self.compute_dtype)

    def geometry(self, positions: torch.Tensor, mask: torch.Tensor | None) -> Geometry:
        """Rotary tables at each cell's position and the key mask of a boxed batch."""
        cos = sin = None
        if self.rope is not None:
            cos, sin = self.rope.gather(self.sequence_positions(positions))  # (B, L, K)
        if mask is not None:
            prefix = mask.new_ones(mask.shape[0], self.prefix_len)
            mask = torch.cat([prefix, mask], dim=1)[:, None, None, :]  # (B, 1, 1, L)
        return Geometry(cos, sin, mask)

    def f(
        self, h: torch.Tensor, injection: torch.Tensor, geometry: Geometry | None = None
    ) -> torch.Tensor:
        """The single network: all blocks applied to ``h + injection``, (B, L, D)."""
        h = h + injection
        for block in self.blocks:
            h = block(h, self.rope, geometry)
        return h

    def cycle(
        self, y: torch.Tensor, z: torch.Tensor, x: torch.Tensor, geometry: Geometry | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One recursion cycle: n latent updates, then one answer update."""
        for _ in range(self.config.latent_steps):
            z = self.f(z, y + x, geometry)
        return self.f(y, z, geometry), z

    def recurse(
        self, y: torch.Tensor, z: torch.Tensor, x: torch.Tensor, geometry: Geometry | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """T cycles; only the last one is differentiated (paper Algorithm 3)."""
        with torch.no_grad():
            for _ in range(self.config.cycles - 1):
                y, z = self.cycle(y, z, x, geometry)
        return self.cycle(y, z, x, geometry)

    def recurse_single(
        self, h: torch.Tensor, x: torch.Tensor, geometry: Geometry | None = None
    ) -> torch.Tensor:
        """URM: T n updates h = f(h + x); only the last n are differentiated (urm-reference §3)."""
        with torch.no_grad():
            for _ in range((self.config.cycles - 1) * self.config.latent_steps):
                h = self.f(h, x, geometry)
        for _ in range(self.config.latent_steps):
            h = self.f(h, x, geometry)
        return h

    # ------------------------------------------------------------------------- steps

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, board_len: int | None = None
    ) -> RecursionState:
        """Fresh y and z (or h) for ``batch_size`` samples of ``board_len`` cells (default: the
        canvas), (B, L, D)."""
        board_len = self.seq_len if board_len is None else board_len
        shape = (batch_size, self.prefix_len + board_len, self.config.hidden_size)

        def fresh(init: torch.Tensor | None) -> torch.Tensor | None:
            if init is None:
                return None
            return init.to(device=device, dtype=self.compute_dtype).expand(shape).contiguous()

        return RecursionState(fresh(self.answer_init), fresh(self.latent_init))

    def reset(self, state: RecursionState, mask: torch.Tensor) -> RecursionState:
        """Restart the samples where ``mask`` (B,) is set from the initial y and z (or h)."""
        m = mask.view(-1, 1, 1)

        def restart(init: torch.Tensor | None, old: torch.Tensor | None) -> torch.Tensor | None:
            return None if init is None else torch.where(m, init.to(old.dtype), old)

        return RecursionState(
            restart(self.answer_init, state.answer), restart(self.latent_init, state.latent)
        )

    def reveal(
        self, state: RecursionState, labels: torch.Tensor, cells: torch.Tensor
    ) -> RecursionState:
        """Denoising's start (``train.denoise_prob``): the answer state (y, or h) of each board
        cell set in ``cells`` (B, S) plus the embedding of its target token ``labels`` (B, S),
        scaled as an input's; unsupervised cells (IGNORE) and the prefix stay as they are."""
        shown = (cells & (labels >= 0))[..., None]  # (B, S, 1)
        hint = self.embed_scale * self.embed(labels.clamp(min=0))  # (B, S, D)
        board = state.answer[:, self.prefix_len :]
        board = torch.where(shown, board + hint.to(board.dtype), board)
        answer = torch.cat([state.answer[:, : self.prefix_len], board], dim=1)
        return RecursionState(answer, state.latent)

    def forward(
        self,
        state: RecursionState,
        inputs: torch.Tensor,
        puzzle_ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        augmentation: torch.Tensor | None = None,
    ) -> StepOutput:
        """One supervision step from ``state`` on boards ``inputs`` (B, S).

        ``puzzle_ids`` (B,): rows of the puzzle table (task indices with a task table);
        ``positions`` (B, S): each cell's canvas position (boxed boards; None: the full canvas in
        order); ``mask`` (B, S): False for filler cells (None: there are none);
        ``augmentation`` (B, 11): each variant's dihedral id and colour map (task tables only).
        """
        x = self.embed_input(inputs, puzzle_ids, positions, augmentation)
        geometry = None if positions is None else self.geometry(positions, mask)
        if self.config.state == "single":
            y, z = self.recurse_single(state.answer, x, geometry), None
        else:
            y, z = self.recurse(state.answer, state.latent, x, geometry)
        logits = self.lm_head(y[:, self.prefix_len :])  # (B, S, V)
        q = self.q_head(y[:, 0]).float()  # (B, 2)
        new_state = RecursionState(y.detach(), None if z is None else z.detach())
        return StepOutput(new_state, logits, q[:, 0], q[:, 1])

    def compile_network(self) -> None:
        """``torch.compile`` the network f, which the recursion calls T(n+1) (or T n) times a step.

        Fuses the norms, rotary embedding and SwiGLU gating (and URM's convolution) around the
        matrix products; the embeddings, heads and the puzzle table stay eager.
        """
        _allow_recompiles(RECOMPILE_LIMIT)
        self.f = torch.compile(self.f, dynamic=False)

    def hidden_matrices(self) -> list[nn.Parameter]:
        """The blocks' weight matrices (attention, SwiGLU, the MLP token mixer): not the
        embeddings, heads or URM's conv filters."""
        return [p for p in self.blocks.parameters() if p.ndim == 2]

    def num_parameters(self) -> int:
        """Trainable parameters (the puzzle table is a buffer and is not counted)."""
        return sum(p.numel() for p in self.parameters())


def _allow_recompiles(limit: int) -> None:
    """Raise torch.compile's per-function graph limit to at least ``limit`` (named
    ``recompile_limit`` since torch 2.6, ``cache_size_limit`` before)."""
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    setattr(config, name, max(getattr(config, name), limit))
