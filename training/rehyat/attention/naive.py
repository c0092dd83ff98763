"""Naive hybrid attention: the numerical ground truth (obvious loops, no tricks).

Notation follows ``shared/REHYAT.md``. The video has T latent frames of P tokens each,
flattened time-major (N = T * P). Chunk t holds latent frames [t*Tc, min(T, (t+1)*Tc)).
For a query in chunk t:

- softmax window W_t = tokens of latent frames [max(0, t*Tc - To), min(T, (t+1)*Tc)),
  bidirectional inside the window;
- linear set L_t = every token strictly before W_t.

    logits_j = scale * q.k_j (j in W_t);  c = max_j logits_j
    aS = sum_j exp(logits_j - c) v_j;     nS = sum_j exp(logits_j - c)
    aL = sum_{j in L_t} (phi_q(q).phi_k(k_j)) v_j;  nL = sum_{j in L_t} phi_q(q).phi_k(k_j)
    y  = (aS + aL) / (nS + nL)

The linear branch is deliberately NOT rescaled by exp(-c).
"""
from __future__ import annotations

import math
from typing import Optional

import torch


def chunk_windows(num_frames: int, tc: int, to: int):
    """Yield (chunk index, first frame of chunk, end frame, first frame of window)."""
    if tc < 1 or to < 0 or to >= tc:
        raise ValueError(f"need Tc >= 1 and 0 <= To < Tc, got Tc={tc} To={to}")
    t = 0
    start = 0
    while start < num_frames:
        end = min(num_frames, start + tc)
        yield t, start, end, max(0, start - to)
        t += 1
        start = end


def hybrid_attention_naive(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    fq: torch.Tensor,
    fk: torch.Tensor,
    tokens_per_frame: int,
    tc: int,
    to: int,
    scale: Optional[float] = None,
) -> torch.Tensor:
    """q, k, v: [B, H, N, d]; fq, fk: [B, H, N, D']. Returns y [B, H, N, d]."""
    b, h, n, d = q.shape
    p = tokens_per_frame
    if n % p != 0:
        raise ValueError(f"N={n} is not a multiple of tokens_per_frame={p}")
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    y = torch.zeros_like(v)
    for _, f0, f1, w0 in chunk_windows(n // p, tc, to):
        win = slice(w0 * p, f1 * p)
        lin_end = w0 * p
        for i in range(f0 * p, f1 * p):
            logits = scale * torch.einsum("bhd,bhjd->bhj", q[:, :, i], k[:, :, win])
            c = logits.max(dim=-1, keepdim=True).values
            e = torch.exp(logits - c)
            a_s = torch.einsum("bhj,bhjd->bhd", e, v[:, :, win])
            n_s = e.sum(dim=-1)
            if lin_end > 0:
                w = torch.einsum("bhe,bhje->bhj", fq[:, :, i], fk[:, :, :lin_end])
                a_l = torch.einsum("bhj,bhjd->bhd", w, v[:, :, :lin_end])
                n_l = w.sum(dim=-1)
            else:
                a_l = torch.zeros_like(a_s)
                n_l = torch.zeros_like(n_s)
            y[:, :, i] = (a_s + a_l) / (n_s + n_l).unsqueeze(-1)
    return y
