"""Recurrent hybrid attention: one chunk at a time with an explicit state.

This module is the exact math of the ``ai.rehyat::HybridAttention`` op (version 1):

inputs  q, k, v [B,H,Nc,d]; fq = phi_q(q), fk = phi_k(k) [B,H,Nc,D'];
        S [B,H,D',d], z [B,H,D'] (float32); k_tail, v_tail [B,H,Nt,d]; fk_tail [B,H,Nt,D']
attrs   tail_tokens (To * tokens per latent frame), scale
outputs y [B,H,Nc,d]; S', z'; k_tail', v_tail', fk_tail'

The window is [tail; chunk] (Nw = Nt + Nc tokens). Softmax over the window with c = row max,
linear branch with the incoming S, z, one joint normaliser. Then S', z' absorb ONLY the window
tokens that leave it (the first Nw - tail_tokens) and the last min(tail_tokens, Nw) become the
new tail. Absorbing the whole window would double-count the overlap.
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch

State = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def empty_state(b: int, h: int, d: int, dp: int, dtype=torch.float32, device=None) -> State:
    """State before the first chunk: S = 0, z = 0, tails with Nt = 0 tokens."""
    return (
        torch.zeros(b, h, dp, d, dtype=torch.float32, device=device),
        torch.zeros(b, h, dp, dtype=torch.float32, device=device),
        torch.zeros(b, h, 0, d, dtype=dtype, device=device),
        torch.zeros(b, h, 0, d, dtype=dtype, device=device),
        torch.zeros(b, h, 0, dp, dtype=dtype, device=device),
    )


def hybrid_attention_step(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    fq: torch.Tensor,
    fk: torch.Tensor,
    s: torch.Tensor,
    z: torch.Tensor,
    k_tail: torch.Tensor,
    v_tail: torch.Tensor,
    fk_tail: torch.Tensor,
    tail_tokens: int,
    scale: Optional[float] = None,
):
    """One chunk. Returns (y, S', z', k_tail', v_tail', fk_tail'). Traceable for ONNX export:
    ``tail_tokens`` and ``scale`` are Python constants, every shape stays symbolic."""
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    kw = torch.cat([k_tail, k], dim=2)
    vw = torch.cat([v_tail, v], dim=2)
    fkw = torch.cat([fk_tail, fk], dim=2)
    qf, kf, vf = q.float(), kw.float(), vw.float()
    fqf, fkf = fq.float(), fkw.float()
    logits = torch.matmul(qf, kf.transpose(-1, -2)) * scale
    c = logits.max(dim=-1, keepdim=True).values
    e = torch.exp(logits - c)
    a = torch.matmul(e, vf) + torch.matmul(fqf, s)
    n = e.sum(dim=-1) + torch.matmul(fqf, z.unsqueeze(-1)).squeeze(-1)
    y = (a / n.unsqueeze(-1)).to(q.dtype)
    if tail_tokens > 0:
        # tokens [0, Nw - tail_tokens) leave the window; the last tail_tokens stay.
        leave_f, leave_v = fkf[:, :, :-tail_tokens], vf[:, :, :-tail_tokens]
        k_new, v_new, fk_new = kw[:, :, -tail_tokens:], vw[:, :, -tail_tokens:], fkw[:, :, -tail_tokens:]
    else:
        leave_f, leave_v = fkf, vf
        k_new, v_new, fk_new = kw[:, :, :0], vw[:, :, :0], fkw[:, :, :0]
    s_new = s + torch.matmul(leave_f.transpose(-1, -2), leave_v)
    z_new = z + leave_f.sum(dim=2)
    return y, s_new, z_new, k_new, v_new, fk_new


def hybrid_attention_recurrent(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    fq: torch.Tensor,
    fk: torch.Tensor,
    tokens_per_frame: int,
    tc: int,
    to: int,
    scale: Optional[float] = None,
    state: Optional[State] = None,
) -> Tuple[torch.Tensor, State]:
    """Whole sequence processed chunk by chunk. Returns y [B,H,N,d] and the final state."""
    b, h, n, d = q.shape
    p = tokens_per_frame
    if tc < 1 or to < 0 or to >= tc:
        raise ValueError(f"need Tc >= 1 and 0 <= To < Tc, got Tc={tc} To={to}")
    if state is None:
        state = empty_state(b, h, d, fq.shape[-1], dtype=q.dtype, device=q.device)
    s, z, kt, vt, fkt = state
    ys: List[torch.Tensor] = []
    step = tc * p
    for i in range(0, n, step):
        sl = slice(i, min(n, i + step))
        y, s, z, kt, vt, fkt = hybrid_attention_step(
            q[:, :, sl], k[:, :, sl], v[:, :, sl], fq[:, :, sl], fk[:, :, sl],
            s, z, kt, vt, fkt, tail_tokens=to * p, scale=scale)
        ys.append(y)
    return torch.cat(ys, dim=2), (s, z, kt, vt, fkt)
