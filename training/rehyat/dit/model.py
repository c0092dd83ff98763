"""Wan-like diffusion transformer on VAE latents, flow-matching velocity prediction.

Tokens: patchify 1x2x2 over the normalised latent [B, C, T, H', W'] -> N = T * (H'/2) * (W'/2)
tokens, time-major. Each block: AdaLN(timestep) -> self-attention (q/k RMSNorm per head, 3D
RoPE) -> gated residual; cross-attention to the text context; AdaLN -> MLP -> gated residual.

Self-attention is full bidirectional softmax in the teacher (``hybrid=False``) and ReHyAt hybrid
attention (chunk size Tc, overlap To latent frames, learnable feature maps phi_q, phi_k) in the
student (``hybrid=True``). The student has two equivalent forward passes: ``forward`` (parallel,
all chunks at once, chunk-causal) and ``forward_step`` (one chunk with explicit recurrent state
stacked over layers: S [L,B,H,D',d], z [L,B,H,D'], k/v tails [L,B,H,Nt,d], phi_k tail
[L,B,H,Nt,D']; Nt = 0 for the first chunk).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict
from typing import List, Optional, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from ..attention import FeatureMap, hybrid_attention_chunked, hybrid_attention_step
from .rope import apply_rope, rope_angles

States = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class DiTConfig:
    latent_channels: int = 16
    latent_height: int = 16
    latent_width: int = 16
    dim: int = 128
    layers: int = 8
    heads: int = 4
    text_dim: int = 128
    mlp_ratio: int = 4
    hybrid: bool = False
    tc: int = 2
    to: int = 1
    feature_dim: int = 32
    feature_hidden: int = 32
    # 3D RoPE base. 10000 (rehyat-1/2) leaves most rotary pairs of an 8x8x8 token grid almost
    # unrotated (periods of hundreds of tokens); 100 spreads the periods over ~6-600 tokens
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def tokens_per_frame(self) -> int:
        return (self.latent_height // 2) * (self.latent_width // 2)

    def to_dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


class PlainLayerNorm(nn.Module):
    """LayerNorm without affine parameters, written out (torch 1.13 exports nn.LayerNorm without
    affine as LayerNormalization with an empty scale input, which the ONNX checker rejects)."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        mu = x.mean(-1, keepdim=True)
        xc = x - mu
        return xc * torch.rsqrt(xc.pow(2).mean(-1, keepdim=True) + self.eps)


class _HybridAttentionOp(torch.autograd.Function):
    """Exports as one ``ai.rehyat::HybridAttention`` node; runs the reference math in PyTorch."""

    @staticmethod
    def forward(ctx, q, k, v, fq, fk, s, z, kt, vt, fkt, tail_tokens, scale):
        return hybrid_attention_step(q, k, v, fq, fk, s, z, kt, vt, fkt, tail_tokens, scale)

    @staticmethod
    def symbolic(g, q, k, v, fq, fk, s, z, kt, vt, fkt, tail_tokens, scale):
        return g.op("ai.rehyat::HybridAttention", q, k, v, fq, fk, s, z, kt, vt, fkt,
                    tail_tokens_i=int(tail_tokens), scale_f=float(scale), outputs=6)


def _softmax_attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention") and q.is_cuda:
        return F.scaled_dot_product_attention(q, k, v)
    return torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1]), dim=-1) @ v


class SelfAttention(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        self.heads, self.hd = cfg.heads, cfg.head_dim
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.o = nn.Linear(cfg.dim, cfg.dim)
        self.q_norm, self.k_norm = RMSNorm(self.hd), RMSNorm(self.hd)
        self.hybrid = cfg.hybrid
        if cfg.hybrid:
            self.phi_q = FeatureMap(cfg.heads, self.hd, cfg.feature_dim, cfg.feature_hidden)
            self.phi_k = FeatureMap(cfg.heads, self.hd, cfg.feature_dim, cfg.feature_hidden)
        self.capture: Optional[list] = None  # set to a list to record (q, k, v, y) for distillation
        self.use_custom_op = False

    def add_feature_maps(self):
        self.hybrid = True
        self.phi_q = FeatureMap(self.cfg.heads, self.hd, self.cfg.feature_dim, self.cfg.feature_hidden)
        self.phi_k = FeatureMap(self.cfg.heads, self.hd, self.cfg.feature_dim, self.cfg.feature_hidden)

    def project(self, x, cos, sin):
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        return q, k, v, apply_rope(q, cos, sin), apply_rope(k, cos, sin)

    def merge(self, y):
        b, h, n, d = y.shape
        return self.o(y.transpose(1, 2).reshape(b, n, h * d))

    def forward(self, x, cos, sin, softmax: bool = False):
        q, k, v, qr, kr = self.project(x, cos, sin)
        if self.hybrid and not softmax:
            y = hybrid_attention_chunked(qr, kr, v, self.phi_q(q), self.phi_k(k),
                                         self.cfg.tokens_per_frame, self.cfg.tc, self.cfg.to).to(v.dtype)
        else:
            y = _softmax_attention(qr, kr, v)
        if self.capture is not None:
            self.capture.append((q.detach(), k.detach(), qr.detach(), kr.detach(), v.detach(), y.detach()))
        return self.merge(y)

    def forward_step(self, x, cos, sin, state):
        q, k, v, qr, kr = self.project(x, cos, sin)
        fq, fk = self.phi_q(q), self.phi_k(k)
        s, z, kt, vt, fkt = state
        tail = self.cfg.to * self.cfg.tokens_per_frame
        scale = 1.0 / math.sqrt(self.hd)
        if self.use_custom_op:
            out = _HybridAttentionOp.apply(qr, kr, v, fq, fk, s, z, kt, vt, fkt, tail, scale)
        else:
            out = hybrid_attention_step(qr, kr, v, fq, fk, s, z, kt, vt, fkt, tail, scale)
        y = out[0]
        return self.merge(y.to(v.dtype)), tuple(out[1:])


class CrossAttention(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.heads, self.hd = cfg.heads, cfg.head_dim
        self.q = nn.Linear(cfg.dim, cfg.dim)
        self.kv = nn.Linear(cfg.text_dim, 2 * cfg.dim)
        self.o = nn.Linear(cfg.dim, cfg.dim)
        self.q_norm, self.k_norm = RMSNorm(self.hd), RMSNorm(self.hd)

    def forward(self, x, ctx):
        b, n, _ = x.shape
        q = self.q_norm(self.q(x).view(b, n, self.heads, self.hd).transpose(1, 2))
        k, v = self.kv(ctx).view(b, ctx.shape[1], 2, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        y = _softmax_attention(q, self.k_norm(k), v)
        return self.o(y.transpose(1, 2).reshape(b, n, -1))


class Block(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.norm1 = PlainLayerNorm(cfg.dim)
        self.norm2 = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.norm3 = PlainLayerNorm(cfg.dim)
        self.attn = SelfAttention(cfg)
        self.cross = CrossAttention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, cfg.mlp_ratio * cfg.dim), nn.GELU(),
                                 nn.Linear(cfg.mlp_ratio * cfg.dim, cfg.dim))
        self.mod = nn.Parameter(torch.zeros(1, 6, cfg.dim))

    def forward(self, x, e, ctx, cos, sin, softmax=False):
        sh1, sc1, g1, sh2, sc2, g2 = (u.unsqueeze(1) for u in (self.mod + e).unbind(1))
        x = x + g1 * self.attn(self.norm1(x) * (1 + sc1) + sh1, cos, sin, softmax=softmax)
        x = x + self.cross(self.norm2(x), ctx)
        return x + g2 * self.mlp(self.norm3(x) * (1 + sc2) + sh2)

    def forward_step(self, x, e, ctx, cos, sin, state):
        sh1, sc1, g1, sh2, sc2, g2 = (u.unsqueeze(1) for u in (self.mod + e).unbind(1))
        a, new_state = self.attn.forward_step(self.norm1(x) * (1 + sc1) + sh1, cos, sin, state)
        x = x + g1 * a
        x = x + self.cross(self.norm2(x), ctx)
        return x + g2 * self.mlp(self.norm3(x) * (1 + sc2) + sh2), new_state


def timestep_embedding(t: torch.Tensor, dim: int = 256) -> torch.Tensor:
    """t in [0, 1] (flow-matching time), embedded at t * 1000."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    a = (t.float() * 1000.0)[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=-1)


def empty_states(cfg: DiTConfig, b: int, device=None, dtype=torch.float32) -> States:
    L, H, d, dp = cfg.layers, cfg.heads, cfg.head_dim, cfg.feature_dim
    return (torch.zeros(L, b, H, dp, d, device=device), torch.zeros(L, b, H, dp, device=device),
            torch.zeros(L, b, H, 0, d, device=device, dtype=dtype),
            torch.zeros(L, b, H, 0, d, device=device, dtype=dtype),
            torch.zeros(L, b, H, 0, dp, device=device, dtype=dtype))


def stack_states(per_layer: List[tuple]) -> States:
    return tuple(torch.stack([st[i] for st in per_layer], dim=0) for i in range(5))


class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        pin = cfg.latent_channels * 4
        self.patch_in = nn.Linear(pin, cfg.dim)
        self.t_embed = nn.Sequential(nn.Linear(256, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        self.t_mod = nn.Linear(cfg.dim, 6 * cfg.dim)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.layers)])
        self.norm_out = PlainLayerNorm(cfg.dim)
        self.head_mod = nn.Linear(cfg.dim, 2 * cfg.dim)
        self.head = nn.Linear(cfg.dim, pin)
        for lin in (self.t_mod, self.head_mod, self.head):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    # --- conversion teacher -> student -------------------------------------------------
    def to_student(self, tc: int, to: int, feature_dim: int = None, feature_hidden: int = None):
        """Turn a (copy of a) teacher into a ReHyAt student: every self-attention becomes hybrid."""
        c = self.cfg
        c.hybrid, c.tc, c.to = True, tc, to
        if feature_dim:
            c.feature_dim = feature_dim
        if feature_hidden:
            c.feature_hidden = feature_hidden
        for blk in self.blocks:
            blk.attn.cfg = c
            blk.attn.add_feature_maps()
        return self

    def set_custom_op(self, on: bool):
        for blk in self.blocks:
            blk.attn.use_custom_op = on

    # --- helpers ----------------------------------------------------------------------
    def patchify(self, x):
        b, c, t, h, w = x.shape
        x = x.reshape(b, c, t, h // 2, 2, w // 2, 2).permute(0, 2, 3, 5, 1, 4, 6)
        return x.reshape(b, t * (h // 2) * (w // 2), c * 4)

    def unpatchify(self, y, t):
        c, h, w = self.cfg.latent_channels, self.cfg.latent_height, self.cfg.latent_width
        b = y.shape[0]
        y = y.reshape(b, t, h // 2, w // 2, c, 2, 2).permute(0, 4, 1, 2, 5, 3, 6)
        return y.reshape(b, c, t, h, w)

    def _embed(self, t):
        e = self.t_embed(timestep_embedding(t))
        return e, self.t_mod(F.silu(e)).view(-1, 6, self.cfg.dim)

    def _rope(self, frames):
        ang = rope_angles(frames, self.cfg.latent_height // 2, self.cfg.latent_width // 2, self.cfg.head_dim,
                          theta=self.cfg.rope_theta)
        return torch.cos(ang), torch.sin(ang)

    def _out(self, x, e, t_frames):
        sh, sc = self.head_mod(F.silu(e)).unsqueeze(1).chunk(2, dim=-1)
        return self.unpatchify(self.head(self.norm_out(x) * (1 + sc) + sh), t_frames)

    # --- forward passes -----------------------------------------------------------------
    def forward(self, x, t, ctx, softmax: bool = False):
        """Parallel pass over the whole latent video x [B, C, T, H', W'] -> velocity.
        Student: chunk-causal hybrid attention; ``softmax=True`` forces full softmax."""
        tn = x.shape[2]
        h = self.patch_in(self.patchify(x))
        e, em = self._embed(t)
        cos, sin = self._rope(torch.arange(tn, device=x.device, dtype=torch.float32))
        for blk in self.blocks:
            h = blk(h, em, ctx, cos, sin, softmax=softmax)
        return self._out(h, e, tn)

    def forward_step(self, x, t, ctx, frame_offset, states: States):
        """One chunk x [B, C, Tc, H', W'] starting at latent frame ``frame_offset`` (int or
        int64 tensor [1]) with stacked states -> (velocity, new stacked states)."""
        tn = x.shape[2]
        h = self.patch_in(self.patchify(x))
        e, em = self._embed(t)
        if not torch.is_tensor(frame_offset):
            frame_offset = torch.tensor([frame_offset], dtype=torch.int64, device=x.device)
        frames = frame_offset.float().reshape(1) + torch.arange(tn, device=x.device, dtype=torch.float32)
        cos, sin = self._rope(frames)
        new = []
        for i, blk in enumerate(self.blocks):
            h, st = blk.forward_step(h, em, ctx, cos, sin, tuple(s[i] for s in states))
            new.append(st)
        return self._out(h, e, tn), stack_states(new)
