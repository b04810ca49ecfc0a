"""Layers: init, norm, SwiGLU widths, rotary embeddings, attention."""

from __future__ import annotations

import math

import torch

from arcpipe.model.layers import (
    Attention,
    RotaryEmbedding,
    rms_norm,
    swiglu_width,
    trunc_normal_,
)


def test_truncated_normal_has_the_requested_std_and_bounds() -> None:
    g = torch.Generator().manual_seed(0)
    x = trunc_normal_(torch.empty(400_000), 0.5, g)
    assert abs(x.std().item() - 0.5) < 0.005
    assert x.abs().max().item() <= 2 * 0.5 / 0.8796256610342398 + 1e-6
    assert trunc_normal_(torch.ones(5), 0.0, g).abs().sum() == 0


def test_rms_norm_has_no_scale_and_unit_rms() -> None:
    x = torch.randn(3, 7, 16) * 5 + 2
    y = rms_norm(x, 1e-5)
    assert torch.allclose(y.square().mean(-1), torch.ones(3, 7), atol=1e-4)
    assert y.dtype == x.dtype


def test_swiglu_widths_match_the_reference() -> None:
    assert swiglu_width(512, 4) == 1536  # ARC attention model
    assert swiglu_width(97, 4) == 512  # Sudoku token-mixing MLP over 81 + 16 positions
    assert swiglu_width(916, 4) == 2560  # Maze token-mixing MLP


def test_rotary_embedding_preserves_norms_and_depends_on_relative_position() -> None:
    rope = RotaryEmbedding(8, 12, 10000.0)
    q = torch.randn(1, 1, 1, 8).expand(1, 12, 1, 8)
    k = torch.randn(1, 1, 1, 8).expand(1, 12, 1, 8)
    rq, rk = rope(q), rope(k)
    assert torch.allclose(rq.norm(dim=-1), q.norm(dim=-1), atol=1e-5)
    dots = rq[0, :, 0] @ rk[0, :, 0].T  # (12, 12) depends only on i - j
    for shift in range(1, 4):
        diag = torch.diagonal(dots, shift)
        assert torch.allclose(diag, diag[0].expand_as(diag), atol=1e-4)


def test_attention_equals_the_textbook_formula() -> None:
    g = torch.Generator().manual_seed(1)
    attn = Attention(16, 4, g)
    h = torch.randn(2, 5, 16)
    qkv = attn.qkv(h).view(2, 5, 3, 4, 4)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # (B, H, L, K)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(4), dim=-1)
    expected = attn.out((weights @ v).transpose(1, 2).reshape(2, 5, 16))
    assert torch.allclose(attn(h, None), expected, atol=1e-5)
