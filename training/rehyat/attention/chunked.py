"""Chunk-parallel hybrid attention: every chunk at once (the training form).

Same math as :mod:`naive`. The sequence is cut into chunks of Tc latent frames (Cn = Tc * P
tokens; a partial last chunk is padded and its padding masked). For chunk t the window is
[last To*P tokens of chunk t-1 ; chunk t] and the linear set is everything before it:
chunks 0..t-2 entirely plus the first Cn - To*P tokens of chunk t-1, so

    S_t = sum_{j <= t-2} F_j + G_{t-1},   F_j = sum over chunk j,  G_j = sum over its first Cn-To*P tokens

(To < Tc guarantees the window never reaches further back than chunk t-1).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F


def hybrid_attention_chunked(
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
    """q, k, v: [B, H, N, d]; fq, fk: [B, H, N, D']. Returns y [B, H, N, d] in q's dtype."""
    b, h, n, d = q.shape
    dp = fq.shape[-1]
    p = tokens_per_frame
    if tc < 1 or to < 0 or to >= tc:
        raise ValueError(f"need Tc >= 1 and 0 <= To < Tc, got Tc={tc} To={to}")
    if n % p != 0:
        raise ValueError(f"N={n} is not a multiple of tokens_per_frame={p}")
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    cn = tc * p
    nt = to * p
    nch = (n + cn - 1) // cn
    pad = nch * cn - n
    dtype = q.dtype
    qf, kf, vf, fqf, fkf = (x.float() for x in (q, k, v, fq, fk))
    if pad:
        qf, kf, vf, fqf, fkf = (F.pad(x, (0, 0, 0, pad)) for x in (qf, kf, vf, fqf, fkf))
    valid = torch.ones(nch * cn, dtype=torch.bool, device=q.device)
    if pad:
        valid[n:] = False
    qc = qf.view(b, h, nch, cn, d)
    kc = kf.view(b, h, nch, cn, d)
    vc = vf.view(b, h, nch, cn, d)
    fqc = fqf.view(b, h, nch, cn, dp)
    fkc = fkf.view(b, h, nch, cn, dp)
    validc = valid.view(nch, cn)

    # softmax window: [tail from previous chunk ; chunk]
    if nt > 0:
        def tail_of_prev(x):
            prev = x[:, :, :-1, cn - nt:]
            return torch.cat([torch.zeros_like(x[:, :, :1, :nt]), prev], dim=2)
        kw = torch.cat([tail_of_prev(kc), kc], dim=3)
        vw = torch.cat([tail_of_prev(vc), vc], dim=3)
        tail_valid = torch.cat([torch.zeros(1, nt, dtype=torch.bool, device=q.device),
                                validc[:-1, cn - nt:]], dim=0)
        wvalid = torch.cat([tail_valid, validc], dim=1)
    else:
        kw, vw, wvalid = kc, vc, validc
    logits = torch.matmul(qc, kw.transpose(-1, -2)) * scale  # [B,H,nch,cn,nw]
    logits = logits.masked_fill(~wvalid[:, None, :], float("-inf"))
    c = logits.max(dim=-1, keepdim=True).values
    e = torch.exp(logits - c)
    a = torch.matmul(e, vw)
    nrm = e.sum(dim=-1)

    # linear branch: S_t = sum_{j<=t-2} F_j + G_{t-1}
    full = torch.matmul(fkc.transpose(-1, -2), vc)  # F_j [B,H,nch,D',d]
    fullz = fkc.sum(dim=3)
    if nt > 0:
        part = torch.matmul(fkc[:, :, :, : cn - nt].transpose(-1, -2), vc[:, :, :, : cn - nt])
        partz = fkc[:, :, :, : cn - nt].sum(dim=3)
    else:
        part, partz = full, fullz
    cum = torch.cumsum(full, dim=2)
    cumz = torch.cumsum(fullz, dim=2)
    zs = torch.zeros_like(full[:, :, :1])
    zz = torch.zeros_like(fullz[:, :, :1])
    # before(t) = sum_{j<=t-2} F_j : shift cum by 2
    before = torch.cat([zs, zs, cum[:, :, :-2]], dim=2)[:, :, :nch]
    beforez = torch.cat([zz, zz, cumz[:, :, :-2]], dim=2)[:, :, :nch]
    prevpart = torch.cat([zs, part[:, :, :-1]], dim=2)
    prevpartz = torch.cat([zz, partz[:, :, :-1]], dim=2)
    s = before + prevpart
    zt = beforez + prevpartz
    a = a + torch.matmul(fqc, s)
    nrm = nrm + torch.matmul(fqc, zt.unsqueeze(-1)).squeeze(-1)
    y = (a / nrm.unsqueeze(-1)).reshape(b, h, nch * cn, d)[:, :, :n]
    return y.to(dtype)
