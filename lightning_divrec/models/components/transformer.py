"""Causal self-attention over left-padded item sequences (a SASRec-style encoder).

Legend: B batch, L sequence length, D dim, H heads, I items.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


def attention_mask(sequences: torch.Tensor, padding_id: int) -> torch.Tensor:
    """Return the boolean mask of allowed (query, key) pairs: causal, and no padded key.

    A position may attend to itself even when it is padding, so that no row
    of the mask is empty: an all-masked softmax row is NaN in every precision.
    Padded positions thus only ever see padding, and real positions never do.

    Shapes: [B, L] -> [B, 1, L, L] (True = may attend).
    """
    length = sequences.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=sequences.device).tril()  # [L, L]
    real_key = (sequences != padding_id)[:, None, None, :]  # [B, 1, 1, L]
    diagonal = torch.eye(length, dtype=torch.bool, device=sequences.device)
    return causal & (real_key | diagonal)


class SelfAttentionBlock(nn.Module):
    """Multi-head self-attention and a GELU feed-forward layer, each with a residual.

    ``norm="pre"`` normalises each sub-layer's input (stable without warm-up);
    ``norm="post"`` normalises after each residual sum, as in the original
    Transformer and SASRec.
    """

    def __init__(self, dim: int, heads: int, dropout: float, norm: Literal["pre", "post"] = "pre", ff_multiplier: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"embedding dim {dim} must be divisible by the number of heads {heads}")
        self.heads, self.norm, self.dropout = heads, norm, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, ff_multiplier * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_multiplier * dim, dim)
        )
        self.attention_norm = nn.LayerNorm(dim)
        self.feed_forward_norm = nn.LayerNorm(dim)
        self.residual_dropout = nn.Dropout(dropout)

    def _attend(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        # [B, L, 3D] -> 3 x [B, H, L, D/H]
        query, key, value = self.qkv(x).view(batch, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )  # [B, H, L, D/H]
        return self.out(attended.transpose(1, 2).reshape(batch, length, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Shapes: x [B, L, D], mask [B, 1, L, L] -> [B, L, D]."""
        if self.norm == "pre":
            x = x + self.residual_dropout(self._attend(self.attention_norm(x), mask))
            return x + self.residual_dropout(self.feed_forward(self.feed_forward_norm(x)))
        x = self.attention_norm(x + self.residual_dropout(self._attend(x, mask)))
        return self.feed_forward_norm(x + self.residual_dropout(self.feed_forward(x)))


class SequenceTransformer(nn.Module):
    """Item sequences to one vector per position, each seeing only that position and earlier items.

    The input at each position is the item's representation plus a learned
    position embedding. Positions are counted from the right, so that the
    most recent item always has position 0 whatever the padding. Padding
    (``padding_id``, equal to the number of items) has a zero id embedding
    and is never attended by a real position.

    Args:
        num_items: I; ids are ``0..I-1`` and ``I`` is padding.
        max_length: L, the longest sequence.
        dim: D.
        num_blocks: self-attention blocks.
        heads: attention heads per block; must divide ``dim``.
        dropout: dropout on the input embeddings, attention weights and residual branches.
        norm: ``pre`` or ``post`` layer normalisation.

    Shapes:
        ``forward(sequences [B, L], item_table [I + 1, D] or None) -> [B, L, D]``.
    """

    def __init__(
        self,
        num_items: int,
        max_length: int,
        dim: int = 64,
        num_blocks: int = 2,
        heads: int = 2,
        dropout: float = 0.2,
        norm: Literal["pre", "post"] = "pre",
    ):
        super().__init__()
        if norm not in ("pre", "post"):
            raise ValueError(f"norm={norm!r} is not one of 'pre', 'post'")
        self.num_items, self.max_length, self.dim = num_items, max_length, dim
        self.padding_id = num_items
        self.item_embedding = nn.Embedding(num_items + 1, dim, padding_idx=num_items)
        self.position_embedding = nn.Embedding(max_length, dim)
        self.input_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(SelfAttentionBlock(dim, heads, dropout, norm) for _ in range(num_blocks))
        # Pre-norm leaves the residual stream unnormalised, so it needs a final norm.
        self.final_norm = nn.LayerNorm(dim) if norm == "pre" else nn.Identity()
        nn.init.normal_(self.item_embedding.weight, std=dim**-0.5)
        with torch.no_grad():
            self.item_embedding.weight[num_items].zero_()
        nn.init.normal_(self.position_embedding.weight, std=0.02)

    def forward(self, sequences: torch.Tensor, item_table: torch.Tensor | None = None) -> torch.Tensor:
        """Encode sequences; ``item_table`` [I + 1, D] replaces the id embeddings (for fused text features)."""
        batch, length = sequences.shape
        if length > self.max_length:
            raise ValueError(f"sequences have {length} columns but the model was built for max_length={self.max_length}")
        table = self.item_embedding.weight if item_table is None else item_table
        positions = torch.arange(length - 1, -1, -1, device=sequences.device)  # [L], 0 at the most recent item
        x = table[sequences] * self.dim**0.5 + self.position_embedding(positions)  # [B, L, D]
        x = self.input_dropout(x)
        mask = attention_mask(sequences, self.padding_id)
        for block in self.blocks:
            x = block(x, mask)
        return self.final_norm(x)
