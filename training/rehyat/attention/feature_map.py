"""Learnable per-head feature maps phi: R^d -> R^D' (ReHyAt's choice).

A 2-layer MLP per head (d -> hidden -> D', GELU between). Its output o is split in two halves:

    phi(x) = [ softplus(o[:D'/2]) ; o[D'/2:] ** 2 ]

the first half is the degree-1 part (softplus keeps it strictly positive), the second the
squared, degree-2 part (non-negative). So every phi_q(q).phi_k(k) >= 0 and, because the softmax
branch always has nS >= 1 (the row max contributes exp(0) = 1), the joint normaliser
nS + nL >= 1 > 0 for every query. phi is applied to q and k after the q/k RMSNorm and BEFORE
RoPE: the linear branch carries long-range, position-free context; the softmax window keeps
positions through RoPE.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F


class FeatureMap(nn.Module):
    def __init__(self, heads: int, head_dim: int, feature_dim: int, hidden: int = 0):
        super().__init__()
        if feature_dim % 2 != 0:
            raise ValueError(f"feature_dim must be even, got {feature_dim}")
        hidden = hidden or head_dim
        self.heads, self.head_dim, self.feature_dim, self.hidden = heads, head_dim, feature_dim, hidden
        self.w1 = nn.Parameter(torch.randn(heads, head_dim, hidden) / math.sqrt(head_dim))
        self.b1 = nn.Parameter(torch.zeros(heads, 1, hidden))
        self.w2 = nn.Parameter(torch.randn(heads, hidden, feature_dim) * (0.5 / math.sqrt(hidden)))
        self.b2 = nn.Parameter(torch.zeros(heads, 1, feature_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, H, N, d] -> [B, H, N, D'] (computed in float32)."""
        xf = x.float()
        hdn = F.gelu(torch.matmul(xf, self.w1.float()) + self.b1.float())
        o = torch.matmul(hdn, self.w2.float()) + self.b2.float()
        half = self.feature_dim // 2
        return torch.cat([F.softplus(o[..., :half]), o[..., half:] ** 2], dim=-1)
