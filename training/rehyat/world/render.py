"""Procedural renderer: scenes -> RGB frames, deterministic (no randomness at render time).

Batched in torch (CPU or GPU). Motions, in pixels at 128x128 (scaled with the resolution):
- left/right/up/down: constant velocity 20 px/s x speed, wrapping around once fully out of view;
- bounce: |sin| hops above a floor, 1 hop/s x speed, x fixed;
- orbit: circle of radius 24 px around the start position, 0.4 turns/s x speed;
- grow / shrink: radius scale sawtooth in [0.5, 1.5), 0.35/s x speed (grow rises, shrink falls);
- still: fixed.
Speeds: slow 0.5, normal 1, fast 2. Shapes are anti-aliased signed-distance masks.
"""
from __future__ import annotations

import math
from typing import List, Sequence

import torch

from .scene import Scene
from .vocab import COLORS, MOTIONS, SHAPES, SIZES, SPEEDS, FPS, RESOLUTION

MAX_OBJECTS = 2


def _params(scenes: Sequence[Scene], size: int, device):
    b = len(scenes)
    k = size / RESOLUTION
    p = torch.zeros(b, MAX_OBJECTS, 11, dtype=torch.float32)
    bg = torch.zeros(b, 3)
    for i, s in enumerate(scenes):
        if len(s.objects) > MAX_OBJECTS:
            raise ValueError(f"at most {MAX_OBJECTS} objects per scene")
        bg[i] = torch.tensor(COLORS[s.background], dtype=torch.float32) / 255.0
        for j, o in enumerate(s.objects):
            rgb = [c / 255.0 for c in COLORS[o.color]]
            p[i, j] = torch.tensor([1.0, *rgb, SHAPES.index(o.shape), MOTIONS.index(o.motion),
                                    SPEEDS[o.speed], SIZES[o.size] * k, o.x * k, o.y * k, o.phase])
    return p.to(device), bg.to(device)


def _wrap(u, r, size):
    span = size + 2 * r
    return torch.remainder(u + r, span) - r


def render(scenes: Sequence[Scene], num_frames: int, frame_offset: int = 0, size: int = RESOLUTION,
           fps: int = FPS, device=None) -> torch.Tensor:
    """Returns float32 frames [B, F, size, size, 3] in [0, 1]."""
    p, bg = _params(scenes, size, device)
    b = p.shape[0]
    k = size / RESOLUTION
    t = (torch.arange(num_frames, dtype=torch.float32, device=device) + frame_offset) / fps
    t = t.view(1, 1, -1)  # [1,1,F]
    present, rgb, shape, motion, sp, r0, x0, y0, ph = (
        p[..., 0:1], p[..., 1:4], p[..., 4:5], p[..., 5:6], p[..., 6:7], p[..., 7:8], p[..., 8:9],
        p[..., 9:10], p[..., 10:11])
    m = motion.expand(-1, -1, num_frames)
    x = x0.expand(-1, -1, num_frames).clone()
    y = y0.expand(-1, -1, num_frames).clone()
    scale = torch.ones_like(x)
    v = 20.0 * k * sp
    mi = {name: i for i, name in enumerate(MOTIONS)}
    x = torch.where(m == mi["left"], _wrap(x0 - v * t, r0, size), x)
    x = torch.where(m == mi["right"], _wrap(x0 + v * t, r0, size), x)
    y = torch.where(m == mi["up"], _wrap(y0 - v * t, r0, size), y)
    y = torch.where(m == mi["down"], _wrap(y0 + v * t, r0, size), y)
    floor = size - r0 - 6 * k
    amp = torch.clamp(floor - r0 - 4 * k, max=40.0 * k)
    hop = floor - amp * torch.abs(torch.sin(math.pi * (sp * t + ph)))
    y = torch.where(m == mi["bounce"], hop, y)
    ang = 2 * math.pi * (0.4 * sp * t + ph)
    rad = 24.0 * k
    x = torch.where(m == mi["orbit"], x0 + rad * torch.cos(ang), x)
    y = torch.where(m == mi["orbit"], y0 + rad * torch.sin(ang), y)
    saw = torch.remainder(0.5 * ph + 0.35 * sp * t, 1.0)
    scale = torch.where(m == mi["grow"], 0.5 + saw, scale)
    scale = torch.where(m == mi["shrink"], 1.5 - saw, scale)
    r = torch.clamp(r0 * scale, min=1.0)  # [B,O,F]; absent objects get r0 = 0

    coords = torch.arange(size, dtype=torch.float32, device=device) + 0.5
    px = coords.view(1, 1, 1, 1, size)
    py = coords.view(1, 1, 1, size, 1)
    rr = r[..., None, None]
    u = (px - x[..., None, None]) / rr
    w = (py - y[..., None, None]) / rr
    rho = torch.sqrt(u * u + w * w + 1e-12)
    d_circle = rho - 1.0
    d_square = torch.maximum(u.abs(), w.abs()) - 0.85
    d_diamond = (u.abs() + w.abs() - 1.0) / math.sqrt(2.0)
    nrm = math.sqrt(1.65 ** 2 + 0.95 ** 2)
    d_tri = torch.maximum(w - 0.65, (1.65 * u.abs() - 0.95 * (w + 1.0)) / nrm)
    theta = torch.atan2(u, -w)
    sector = 2 * math.pi / 5
    a = torch.remainder(theta + sector / 2, sector) - sector / 2
    # straight-edged 5-point star: outer radius 1, inner 0.45, edge from point to inner vertex
    ri = 0.45
    half = sector / 2
    px_, py_ = rho * torch.cos(a.abs()), rho * torch.sin(a.abs())  # point on the x-axis
    ex, ey = ri * math.cos(half) - 1.0, ri * math.sin(half)
    el = math.sqrt(ex * ex + ey * ey)
    d_star = ((px_ - 1.0) * ey - py_ * ex) / el
    sh = shape[..., None, None]
    d = torch.where(sh == 0, d_circle, torch.where(sh == 1, d_square, torch.where(
        sh == 2, d_tri, torch.where(sh == 3, d_diamond, d_star))))
    mask = torch.clamp(0.5 - d * rr, 0.0, 1.0) * present[..., None, None]  # [B,O,F,S,S]
    frames = bg.view(b, 1, 1, 1, 3).expand(b, num_frames, size, size, 3)
    for j in range(MAX_OBJECTS):
        mj = mask[:, j, :, :, :, None]
        frames = frames * (1 - mj) + rgb[:, j].view(b, 1, 1, 1, 3) * mj
    return frames.contiguous()
