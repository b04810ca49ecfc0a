"""Building blocks of the TRM network (reference §4.2): no biases, no norm weights, post-norm.

Shape legend: B batch, L positions (puzzle prefix + board), D hidden size, H heads, K head size.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

# Standard deviation of a unit normal truncated to [-2, 2]: dividing by it makes the truncated
# draw have exactly the requested standard deviation, as the reference's (JAX-style) init does.
_TRUNCATED_STD = 0.8796256610342398


def trunc_normal_(tensor: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Fill ``tensor`` with a normal truncated to two standard deviations, with true std ``std``."""
    with torch.no_grad():
        if std == 0:
            return tensor.zero_()
        scale = std / _TRUNCATED_STD
        # Inverse-CDF sampling: uniform over the truncated CDF range, then erfinv.
        bound = math.erf(2 / math.sqrt(2))
        tensor.uniform_(-bound, bound, generator=generator)
        tensor.erfinv_().mul_(math.sqrt(2) * scale)
        return tensor.clamp_(-2 * scale, 2 * scale)


def rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """RMS normalisation over the last axis, without a learned scale, computed in float32.

    For a bfloat16 ``x`` the float32 copy is not kept for the backward pass (it would take twice
    the memory of ``x``): the norm is recomputed from ``x`` there, the same operations again.
    """
    if x.dtype == torch.float32 or not torch.is_grad_enabled():
        return _float32_rms_norm(x, eps)
    return checkpoint(_float32_rms_norm, x, eps, use_reentrant=False, preserve_rng_state=False)


def _float32_rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    return F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


def linear(in_features: int, out_features: int, generator: torch.Generator) -> nn.Linear:
    """A bias-free linear layer with LeCun truncated-normal init (std 1/sqrt(in))."""
    layer = nn.Linear(in_features, out_features, bias=False)
    trunc_normal_(layer.weight, 1 / math.sqrt(in_features), generator)
    return layer


def swiglu_width(dim: int, expansion: float) -> int:
    """The reference's SwiGLU inner width: 2/3 of ``expansion * dim``, rounded up to 256."""
    return 256 * math.ceil(round(expansion * dim * 2 / 3) / 256)


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))`` over the last axis."""

    def __init__(self, dim: int, expansion: float, generator: torch.Generator) -> None:
        super().__init__()
        width = swiglu_width(dim, expansion)
        self.gate_up = linear(dim, 2 * width, generator)
        self.down = linear(width, dim, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GatedDown.apply(self.gate_up(x), self.down.weight)


class _GatedDown(torch.autograd.Function):
    """``down(silu(gate) * up)`` from ``gate_up = [gate, up]``, keeping only ``gate_up``.

    Autograd would keep ``gate_up``, ``silu(gate)`` and their product for the backward pass, four
    widths W per position; here the two are recomputed from ``gate_up`` (two elementwise passes)
    and only its two widths are kept, half the SwiGLU's activation memory. The backward runs the
    operations autograd would run, in the same order, so the gradients are the same.
    """

    @staticmethod
    def forward(ctx, gate_up: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        gate, up = gate_up.chunk(2, dim=-1)
        out = F.linear(F.silu(gate) * up, weight)  # autocast, if on, casts as for any linear
        ctx.save_for_backward(gate_up, weight)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gate_up, weight = ctx.saved_tensors
        gate, up = gate_up.chunk(2, dim=-1)
        act = F.silu(gate)
        product = (act * up).flatten(0, -2)  # (N, W)
        grad_2d = grad_out.flatten(0, -2)  # (N, D)
        grad_product = grad_2d.mm(weight.to(grad_out.dtype)).view_as(up)  # (.., W)
        grad_weight = product.t().mm(grad_2d).t()  # (D, W), as autograd forms it for linear
        grad_gate = torch.ops.aten.silu_backward(grad_product * up, gate)
        grad_up = grad_product * act
        return torch.cat([grad_gate, grad_up], dim=-1), grad_weight.to(weight.dtype)


class Geometry(NamedTuple):
    """Per-example positions of a boxed batch (``model.board = "boxed"``): the rotary tables
    gathered at each cell's position, and which keys take part in attention (fillers do not)."""

    cos: torch.Tensor | None  # (B, L, K), None without rotary embeddings
    sin: torch.Tensor | None  # (B, L, K)
    mask: torch.Tensor | None  # (B, 1, 1, L) bool, True for real cells; None: no fillers


class RotaryEmbedding(nn.Module):
    """Rotary position embedding, rotate-half convention, float32 tables (reference §4.2).

    ``x * cos + rotate_half(x) * sin`` with ``rotate_half(x) = (-x2, x1)``; the sign is folded
    into a precomputed ``sin`` so one pass over (x2, x1) and one fused multiply-add suffice.
    """

    def __init__(self, head_dim: int, positions: int, theta: float) -> None:
        super().__init__()
        inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        freqs = torch.outer(torch.arange(positions, dtype=torch.float32), inv_freq)  # (L, K/2)
        self.register_buffer("cos", torch.cat([freqs.cos(), freqs.cos()], -1), persistent=False)
        self.register_buffer("sin", torch.cat([-freqs.sin(), freqs.sin()], -1), persistent=False)

    def forward(self, x: torch.Tensor, geometry: Geometry | None = None) -> torch.Tensor:
        """Rotate ``x`` of shape (B, L, ..., K) along its last axis by position: L, or the
        positions ``geometry`` gathered."""
        half = x.shape[-1] // 2
        xf = x.float()
        swapped = torch.cat([xf[..., half:], xf[..., :half]], dim=-1)  # (x2, x1)
        middle = (1,) * (x.dim() - 3)
        if geometry is None:
            shape = (x.shape[1], *middle, x.shape[-1])  # (L, 1, ..., K)
            cos, sin = self.cos.view(shape), self.sin.view(shape)
        else:
            shape = (x.shape[0], x.shape[1], *middle, x.shape[-1])  # (B, L, 1, ..., K)
            cos, sin = geometry.cos.view(shape), geometry.sin.view(shape)
        return torch.addcmul(xf * cos, swapped, sin).to(x.dtype)

    def gather(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The tables at ``positions`` (B, L) of the full sequence: two (B, L, K)."""
        return self.cos[positions], self.sin[positions]


class Attention(nn.Module):
    """Non-causal multi-head self-attention with fused QKV and optional rotary positions."""

    def __init__(self, hidden: int, heads: int, generator: torch.Generator) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = linear(hidden, 3 * hidden, generator)
        self.out = linear(hidden, hidden, generator)

    def forward(
        self, h: torch.Tensor, rope: RotaryEmbedding | None, geometry: Geometry | None = None
    ) -> torch.Tensor:
        B, L, D = h.shape
        qkv = self.qkv(h).view(B, L, 3, self.heads, D // self.heads)
        # v copied out of qkv: a view would keep all of qkv alive for the backward pass.
        qk, v = qkv[:, :, :2], qkv[:, :, 2].contiguous()  # (B, L, 2, H, K), (B, L, H, K)
        if rope is not None:
            qk = rope(qk, geometry)  # queries and keys rotated in one pass
        q, k = qk.unbind(dim=2)
        mask = None if geometry is None else geometry.mask
        o = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask
        )
        return self.out(o.transpose(1, 2).reshape(B, L, D))  # (B, H, L, K) -> (B, L, D)


class Block(nn.Module):
    """One post-norm block: token mixing (attention, or an MLP across positions), then a SwiGLU.

    The MLP mixer (the reference's ``mlp_t``) transposes to (B, D, L), applies a SwiGLU over the
    positions and normalises over the positions too, as the reference does.
    """

    def __init__(
        self,
        hidden: int,
        heads: int,
        expansion: float,
        positions: int,
        token_mlp: bool,
        eps: float,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.eps = eps
        self.token_mlp = SwiGLU(positions, expansion, generator) if token_mlp else None
        self.attention = None if token_mlp else Attention(hidden, heads, generator)
        self.mlp = SwiGLU(hidden, expansion, generator)

    def forward(
        self, h: torch.Tensor, rope: RotaryEmbedding | None, geometry: Geometry | None = None
    ) -> torch.Tensor:
        if self.token_mlp is not None:
            t = h.transpose(1, 2)  # (B, D, L)
            h = rms_norm(t + self.token_mlp(t), self.eps).transpose(1, 2)
        else:
            h = rms_norm(h + self.attention(h, rope, geometry), self.eps)
        return rms_norm(h + self.mlp(h), self.eps)
