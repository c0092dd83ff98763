"""Export wrappers: fixed input/output names, what each ONNX graph computes.

text_encoder.onnx  ids [B, L] int64                     -> context [B, L, Dt]
vae_decoder.onnx   latent [B, C, T, h, w], cache_0..2   -> frames [B, 4T, H, W, 3] in [0, 1],
                                                           cache_0_out..cache_2_out
teacher_dit.onnx   x [B, C, T, h, w], t [B], context    -> velocity [B, C, T, h, w]
dit_step.onnx      x [B, C, Tc, h, w], t [B], context, frame_offset [1] int64,
                   S [L,B,H,D',d], z [L,B,H,D'], k_tail, v_tail [L,B,H,Nt,d], fk_tail [L,B,H,Nt,D']
                   -> velocity, S_out, z_out, k_tail_out, v_tail_out, fk_tail_out
dit_step_custom.onnx  the same with each attention as one ai.rehyat::HybridAttention node.
"""
from __future__ import annotations

import torch
from torch import nn


class TextEncoderGraph(nn.Module):
    def __init__(self, text):
        super().__init__()
        self.text = text

    def forward(self, ids):
        return self.text(ids)


class VaeDecoderGraph(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent, cache_0, cache_1, cache_2):
        x, caches = self.vae.decode(latent, [cache_0, cache_1, cache_2])
        frames = ((x.clamp(-1.0, 1.0) + 1.0) * 0.5).permute(0, 2, 3, 4, 1)
        return (frames,) + tuple(caches)


class TeacherGraph(nn.Module):
    def __init__(self, dit):
        super().__init__()
        self.dit = dit

    def forward(self, x, t, context):
        return self.dit(x, t, context)


class DiTStepGraph(nn.Module):
    def __init__(self, dit):
        super().__init__()
        self.dit = dit

    def forward(self, x, t, context, frame_offset, s, z, k_tail, v_tail, fk_tail):
        v, st = self.dit.forward_step(x, t, context, frame_offset, (s, z, k_tail, v_tail, fk_tail))
        return (v,) + tuple(st)


TEXT_IO = (["ids"], ["context"])
VAE_IO = (["latent", "cache_0", "cache_1", "cache_2"], ["frames", "cache_0_out", "cache_1_out", "cache_2_out"])
TEACHER_IO = (["x", "t", "context"], ["velocity"])
STEP_IO = (["x", "t", "context", "frame_offset", "S", "z", "k_tail", "v_tail", "fk_tail"],
           ["velocity", "S_out", "z_out", "k_tail_out", "v_tail_out", "fk_tail_out"])
