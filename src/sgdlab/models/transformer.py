"""A small transformer encoder classifier (Vaswani et al. 2017, "Attention is all you need"), in
the pre-LayerNorm arrangement (Xiong et al. 2020, "On layer normalization in the transformer
architecture"): tokens → embedding + learned positions → blocks of

    h ← h + W_o · Attention(LN(h))          (multi-head scaled dot-product self-attention)
    h ← h + W_2 · act(W_1 · LN(h))          (the MLP)

→ LN → mean over positions → Linear head.

Tokens are integer ids [N, T] with `vocab` (nn.Embedding), or, for the zoo's float data, the
flattened input's D features [N, D] as D tokens: token j of sample i is x_ij·w_j + b_j (the
feature tokenizer of Gorishniy, Rubachevsky, Khrulkov & Babenko 2021, "Revisiting deep learning
models for tabular data"). Attention is `F.scaled_dot_product_attention`, which on CPU and CUDA
picks a fused kernel without double backward or forward-mode AD: sgdlab's curvature and NTK
instruments select the math kernel where they differentiate twice (sgdlab.attention).

Every projection is an `nn.Linear` applied over the sequence, which the per-sample gradient
identity handles (sgdlab.gradients.ghost); embeddings and LayerNorm go by vmap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .layers import activation, flat_size
from .registry import ModelOptions, models

HEAD_WIDTH = 16  # width per attention head: heads = max(1, width // 16)


class FeatureTokens(nn.Module):
    """Token j of sample i is x_ij·w_j + b_j: one learned direction and offset per input feature."""

    def __init__(self, n_features: int, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_features, width) / width**0.5)
        self.bias = nn.Parameter(torch.zeros(n_features, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, D] features → [N, D, width] tokens."""
        return x.flatten(1).unsqueeze(-1) * self.weight + self.bias


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention: softmax(QKᵀ/√d_head)V per head, then W_o."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ConfigError(f"model.width: {width} is not a multiple of the {heads} attention heads")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """[N, T, width] → [N, T, width]."""
        n, t, width = h.shape
        q, k, v = self.qkv(h).view(n, t, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        mixed = F.scaled_dot_product_attention(q, k, v)
        return self.out(mixed.transpose(1, 2).reshape(n, t, width))


class Block(nn.Module):
    """One pre-LN block: h + Attention(LN(h)), then h + MLP(LN(h))."""

    def __init__(self, width: int, hidden: int, heads: int, act: str, dropout: float):
        super().__init__()
        self.norm1, self.attention = nn.LayerNorm(width), SelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), activation(act), nn.Linear(hidden, width))
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """[N, T, width] → [N, T, width]."""
        h = h + self.drop(self.attention(self.norm1(h)))
        return h + self.drop(self.mlp(self.norm2(h)))


class Transformer(nn.Module):
    """The encoder classifier of the module docstring: `n_tokens` positions (T, or the number of
    input features), `n_outputs` logits, model width `width`, one block per entry of `hidden`
    (its MLP width), `heads` attention heads, token ids from a vocabulary of `vocab` (None:
    float features as tokens).

    >>> import torch
    >>> from sgdlab.models.transformer import Transformer
    >>> _ = torch.manual_seed(0)
    >>> lm = Transformer(n_tokens=5, n_outputs=3, width=16, hidden=(32,), heads=2, vocab=11)
    >>> lm(torch.randint(0, 11, (4, 5))).shape
    torch.Size([4, 3])
    >>> tab = Transformer(n_tokens=6, n_outputs=2, width=16, hidden=(32, 32))  # 6 float features
    >>> tab(torch.randn(4, 6)).shape, len(tab.blocks)
    (torch.Size([4, 2]), 2)
    """

    def __init__(
        self,
        n_tokens: int,
        n_outputs: int,
        width: int = 32,
        hidden: tuple[int, ...] = (64,),
        heads: int = 2,
        vocab: int | None = None,
        act: str = "relu",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.embed: nn.Module = nn.Embedding(vocab, width) if vocab else FeatureTokens(n_tokens, width)
        self.position = nn.Parameter(torch.randn(n_tokens, width) * 0.02)
        self.blocks = nn.Sequential(*(Block(width, h, heads, act, dropout) for h in hidden))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Token ids [N, T] or features [N, …] → logits [N, n_outputs]."""
        h = self.embed(x) + self.position
        return self.head(self.norm(self.blocks(h)).mean(dim=1))


@models.register(
    "transformer",
    help="small pre-LayerNorm transformer encoder: input features as tokens, multi-head "
    "attention, LayerNorm, MLP blocks (one per entry of widths), mean-pooled linear head",
    options={"width": 32, "widths": (64,), "activation": "relu", "dropout": 0.0},
)
def transformer(opts: ModelOptions, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """The Transformer on float data: each of the flattened input's features is a token (64 for
    the 8×8 digits), `width` the model width with width // 16 heads of 16 (at least one),
    `widths` the MLP width of each block."""
    heads = max(1, opts.width // HEAD_WIDTH)
    return Transformer(
        flat_size(input_shape), n_outputs, opts.width, opts.widths, heads, None, opts.activation, opts.dropout
    )
