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


class ConvSwiGLU(nn.Module):
    """URM's MLP: ``down(silu(conv(silu(gate(x)) * up(x))))`` on (B, L, D) (urm-reference §2.5).

    ``conv`` is depthwise and left-looking along the positions, kernel 2, with a bias: per channel
    ``conv(u)[t] = w0 * u[t-1] + w1 * u[t] + b`` with ``u[-1] = 0``. Its weight (W, 1, 2) and bias
    (W,) keep PyTorch's Conv1d layout and default init, U(-1/sqrt(2), 1/sqrt(2)), and are stored in
    ``param_dtype`` (the reference: bfloat16); they are cast to the activations' dtype to compute.
    """

    def __init__(
        self, dim: int, expansion: float, param_dtype: torch.dtype, generator: torch.Generator
    ) -> None:
        super().__init__()
        width = swiglu_width(dim, expansion)
        self.gate_up = linear(dim, 2 * width, generator)
        bound = 1 / math.sqrt(CONV_KERNEL)  # Conv1d's default: 1/sqrt(fan_in), fan_in = 1 x 2
        weight = torch.empty(width, 1, CONV_KERNEL).uniform_(-bound, bound, generator=generator)
        bias = torch.empty(width).uniform_(-bound, bound, generator=generator)
        self.conv_weight = nn.Parameter(weight.to(param_dtype))
        self.conv_bias = nn.Parameter(bias.to(param_dtype))
        self.down = linear(width, dim, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GatedDown.apply(self.gate_up(x), self.down.weight, self.conv_weight, self.conv_bias)


CONV_KERNEL = 2  # URM's short convolution: the position itself and the one before it


def causal_conv(u: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``w0 * u[t-1] + w1 * u[t] + b`` along the positions of ``u`` (B, L, W); weight (W, 1, 2)."""
    weight, bias = weight.to(u.dtype), bias.to(u.dtype)
    return torch.addcmul(torch.addcmul(bias, u, weight[:, 0, 1]), _shift_right(u), weight[:, 0, 0])


def _shift_right(u: torch.Tensor) -> torch.Tensor:
    """``u[t-1]`` at position t, zero at t = 0 (B, L, W)."""
    return F.pad(u, (0, 0, 1, 0))[:, :-1]


def _shift_left(u: torch.Tensor) -> torch.Tensor:
    """``u[t+1]`` at position t, zero at the last position (B, L, W)."""
    return F.pad(u, (0, 0, 0, 1))[:, 1:]


class _GatedDown(torch.autograd.Function):
    """``down(silu(gate) * up)`` from ``gate_up = [gate, up]``, keeping only ``gate_up``.

    With ``conv_weight`` and ``conv_bias`` (ConvSwiGLU) the product goes through
    :func:`causal_conv` and a SiLU before ``down``.

    Autograd would keep ``gate_up``, ``silu(gate)`` and their product for the backward pass (and
    the conv's output and its SiLU: six widths W per position for ConvSwiGLU); here they are
    recomputed from ``gate_up`` (elementwise passes) and only its two widths are kept. The
    backward runs the operations autograd would run, in the same order, so the SwiGLU gradients
    are the same bit for bit.
    """

    @staticmethod
    def forward(
        ctx,
        gate_up: torch.Tensor,
        weight: torch.Tensor,
        conv_weight: torch.Tensor | None = None,
        conv_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        gate, up = gate_up.chunk(2, dim=-1)
        hidden = F.silu(gate) * up
        if conv_weight is not None:
            hidden = F.silu(causal_conv(hidden, conv_weight, conv_bias))
        out = F.linear(hidden, weight)  # autocast, if on, casts as for any linear
        ctx.save_for_backward(gate_up, weight, conv_weight, conv_bias)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        gate_up, weight, conv_weight, conv_bias = ctx.saved_tensors
        gate, up = gate_up.chunk(2, dim=-1)
        act = F.silu(gate)
        product = act * up  # (.., W)
        hidden = product
        if conv_weight is not None:
            conv = causal_conv(product, conv_weight, conv_bias)
            hidden = F.silu(conv)
        grad_2d = grad_out.flatten(0, -2)  # (N, D)
        grad_hidden = grad_2d.mm(weight.to(grad_out.dtype)).view_as(up)  # (.., W)
        grad_weight = hidden.flatten(0, -2).t().mm(grad_2d).t()  # (D, W), as autograd forms it
        grad_conv_weight = grad_conv_bias = None
        grad_product = grad_hidden
        if conv_weight is not None:
            grad_conv = torch.ops.aten.silu_backward(grad_hidden, conv)
            taps = torch.stack(
                [(grad_conv * _shift_right(product)).sum((0, 1)), (grad_conv * product).sum((0, 1))]
            )  # (2, W): d/dw0, d/dw1
            grad_conv_weight = taps.t().unsqueeze(1).to(conv_weight.dtype)  # (W, 1, 2)
            grad_conv_bias = grad_conv.sum((0, 1)).to(conv_bias.dtype)
            w = conv_weight.to(grad_conv.dtype)
            grad_product = torch.addcmul(grad_conv * w[:, 0, 1], _shift_left(grad_conv), w[:, 0, 0])
        grad_gate = torch.ops.aten.silu_backward(grad_product * up, gate)
        grad_up = grad_product * act
        return (
            torch.cat([grad_gate, grad_up], dim=-1),
            grad_weight.to(weight.dtype),
            grad_conv_weight,
            grad_conv_bias,
        )


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

    ``positions`` is the number of sequence positions (one axis, the index: the reference), or
    each position's coordinates, (L, A) float: the K/2 rotary pairs are split evenly over the A
    axes, axis a rotating its K/(2A) pairs by its coordinate at the frequencies a head of size
    K/A would use (``model.pos_encodings = "rope2d"``: A = 2, row and column).
    """

    def __init__(self, head_dim: int, positions: int | torch.Tensor, theta: float) -> None:
        super().__init__()
        if isinstance(positions, int):
            positions = torch.arange(positions, dtype=torch.float32)[:, None]  # (L, 1)
        axis_dim = head_dim // positions.shape[1]
        inv_freq = 1.0 / theta ** (torch.arange(0, axis_dim, 2, dtype=torch.float32) / axis_dim)
        freqs = torch.cat(
            [torch.outer(axis, inv_freq) for axis in positions.float().unbind(1)], dim=1
        )  # (L, K/2): axis 0's pairs, then axis 1's
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

    With ``conv_dtype`` the SwiGLU is URM's :class:`ConvSwiGLU`, its filter stored in that dtype.

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
        conv_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.eps = eps
        self.token_mlp = SwiGLU(positions, expansion, generator) if token_mlp else None
        self.attention = None if token_mlp else Attention(hidden, heads, generator)
        self.mlp = (
            SwiGLU(hidden, expansion, generator)
            if conv_dtype is None
            else ConvSwiGLU(hidden, expansion, conv_dtype, generator)
        )

    def forward(
        self, h: torch.Tensor, rope: RotaryEmbedding | None, geometry: Geometry | None = None
    ) -> torch.Tensor:
        if self.token_mlp is not None:
            t = h.transpose(1, 2)  # (B, D, L)
            h = rms_norm(t + self.token_mlp(t), self.eps).transpose(1, 2)
        else:
            h = rms_norm(h + self.attention(h, rope, geometry), self.eps)
        return rms_norm(h + self.mlp(h), self.eps)
