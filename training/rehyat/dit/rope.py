"""3D rotary position embedding over (latent frame, row, column), rotate-half layout.

The head dimension d is split into three even parts (time, height, width); each part rotates
its two halves by angle pos * theta^(-2i/part). Only relative positions matter inside a
softmax window, so the student generalises to any frame offset.
"""
from __future__ import annotations

from typing import Tuple

import torch


def rope_split(head_dim: int) -> Tuple[int, int, int]:
    t = 2 * max(1, (head_dim // 4) // 2)  # ~1/4 of dims for time
    rest = head_dim - t
    h = 2 * ((rest // 2) // 2)
    w = rest - h
    return t, h, w


def rope_angles(frames: torch.Tensor, rows: int, cols: int, head_dim: int, theta: float = 10000.0):
    """frames: float tensor [T] of latent frame indices. Returns angles [T*rows*cols, d/2]."""
    dt, dh, dw = rope_split(head_dim)
    dev = frames.device

    def inv(dim):
        return 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32, device=dev) / dim))

    t_n = frames.shape[0]
    ft = frames.float()[:, None] * inv(dt)[None]  # [T, dt/2]
    fh = torch.arange(rows, dtype=torch.float32, device=dev)[:, None] * inv(dh)[None]
    fw = torch.arange(cols, dtype=torch.float32, device=dev)[:, None] * inv(dw)[None]
    a_t = ft[:, None, None, :].expand(t_n, rows, cols, ft.shape[1])
    a_h = fh[None, :, None, :].expand(t_n, rows, cols, fh.shape[1])
    a_w = fw[None, None, :, :].expand(t_n, rows, cols, fw.shape[1])
    return torch.cat([a_t, a_h, a_w], dim=-1).reshape(t_n * rows * cols, head_dim // 2)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, N, d]; cos, sin [N, d/2]."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
