"""Flow-matching sampler: Euler from t = 1 (noise) to t = 0 (data), time shift, CFG.

x_t = (1 - t) x_0 + t eps, the model predicts v = eps - x_0, and one Euler step is
x <- x + (t_next - t) v. Shifted schedule: t' = shift * t / (1 + (shift - 1) t) on a uniform
grid of ``steps`` + 1 points. Classifier-free guidance: v = v_u + g (v_c - v_u), the conditional
and unconditional branches batched together ([cond; uncond] along the batch).
"""
from __future__ import annotations

from typing import List

import torch


def schedule(steps: int, shift: float) -> List[float]:
    ts = [1.0 - i / steps for i in range(steps + 1)]
    return [shift * t / (1.0 + (shift - 1.0) * t) for t in ts]


def _guided(v, b, guidance):
    if guidance == 1.0:
        return v[:b]
    vc, vu = v[:b], v[b:]
    return vu + guidance * (vc - vu)


def _ctx(ctx, uncond, guidance):
    return ctx if guidance == 1.0 else torch.cat([ctx, uncond], dim=0)


@torch.no_grad()
def sample_parallel(model, ctx, uncond, noise, steps=16, shift=3.0, guidance=4.0, softmax=False, on_step=None):
    """Step-major over the whole latent video (teacher, or the student's parallel form).
    ``on_step(i, x, v)``, when given, is called at every step before its Euler update with the state
    x at t = schedule(steps, shift)[i] and the model's velocity there before guidance: [cond; uncond]
    along the batch ([2b, ...]), or the conditional branch alone ([b, ...]) when ``guidance`` is 1
    (the training caches record trajectories through it)."""
    b = noise.shape[0]
    x = noise.clone()
    c = _ctx(ctx, uncond, guidance)
    ts = schedule(steps, shift)
    for i in range(steps):
        xin = x if guidance == 1.0 else torch.cat([x, x], dim=0)
        tt = torch.full((xin.shape[0],), ts[i], device=x.device)
        raw = model(xin, tt, c, softmax=softmax) if softmax else model(xin, tt, c)
        if on_step is not None:
            on_step(i, x, raw)
        x = x + (ts[i + 1] - ts[i]) * _guided(raw, b, guidance)
    return x


@torch.no_grad()
def sample_chunk_major(student, ctx, uncond, noise, steps=16, shift=3.0, guidance=4.0, on_chunk=None):
    """Chunk-major: fully denoise chunk 0 over all steps, then chunk 1, ..., keeping one recurrent
    state set per denoising step (the CFG branches ride in the batch). ``on_chunk(i, latent)``
    is called as each chunk finishes. Equals ``sample_parallel(student, ...)`` from the same noise."""
    from .dit import empty_states
    b = noise.shape[0]
    tc = student.cfg.tc
    bb = b if guidance == 1.0 else 2 * b
    c = _ctx(ctx, uncond, guidance)
    ts = schedule(steps, shift)
    states = [empty_states(student.cfg, bb, device=noise.device) for _ in range(steps)]
    out = []
    for ci, f0 in enumerate(range(0, noise.shape[2], tc)):
        x = noise[:, :, f0:f0 + tc].clone()
        for i in range(steps):
            xin = x if guidance == 1.0 else torch.cat([x, x], dim=0)
            tt = torch.full((bb,), ts[i], device=x.device)
            v, states[i] = student.forward_step(xin, tt, c, f0, states[i])
            x = x + (ts[i + 1] - ts[i]) * _guided(v, b, guidance)
        out.append(x)
        if on_chunk is not None:
            on_chunk(ci, x)
    return torch.cat(out, dim=2)
