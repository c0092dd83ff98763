"""Exports a tiny, randomly initialised ReHyAt model (the real training/ architecture: causal VAE
decoder, text encoder, teacher DiT, student DiT with hybrid attention) through the real exporter
(training/rehyat/export: export_all + build_manifest), for the pipeline's and worker's tests. Weights are random (seeded), so the frames are noise-like, but
every graph, state and cache is the real thing. Not a released model.

    /usr/bin/python3 packages/pipeline/test/support/export_tiny.py OUT_DIR
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import sys

import torch
from torch import nn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "training"))

from rehyat.dit import DiT, DiTConfig  # noqa: E402
from rehyat.text import TextConfig, TextEncoder, Tokenizer  # noqa: E402
from rehyat.vae import CausalVideoVAE, VAEConfig  # noqa: E402
from rehyat.export.graphs import VaeDecoderGraph  # noqa: E402
from rehyat.export.manifest import build_manifest  # noqa: E402
from rehyat.export.onnx_export import export_all  # noqa: E402

OPSET = 17
M32 = 0xFFFFFFFF


class NoiseRng:
    """The pipeline's documented noise (src/rng.ts): splitmix32 seeding, xoshiro128**, Box-Muller."""

    def __init__(self, seed: int):
        z, s = seed & M32, []
        for _ in range(4):
            z = (z + 0x9E3779B9) & M32
            t = ((z ^ (z >> 16)) * 0x21F0AAAD) & M32
            t = ((t ^ (t >> 15)) * 0x735A2D97) & M32
            s.append((t ^ (t >> 15)) & M32)
        self.s, self.spare = s, None

    def next_u32(self) -> int:
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (32 - k))) & M32
        r = (rotl((s[1] * 5) & M32, 7) * 9) & M32
        t = (s[1] << 9) & M32
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 11)
        return r

    def normal(self) -> float:
        import math
        if self.spare is not None:
            v, self.spare = self.spare, None
            return v
        u1 = (self.next_u32() + 0.5) / 4294967296.0
        u2 = (self.next_u32() + 0.5) / 4294967296.0
        r, th = math.sqrt(-2.0 * math.log(u1)), 2.0 * math.pi * u2
        self.spare = r * math.sin(th)
        return r * math.cos(th)


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    tok = Tokenizer(max_len=12)
    tcfg = TextConfig(vocab_size=tok.vocab_size, max_len=12, dim=32, layers=1, heads=2)
    text = TextEncoder(tcfg).eval()
    vcfg = VAEConfig(latent_channels=4, enc_channels=(8, 8, 8, 8), dec_channels=(16, 8, 8, 8), temporal=4)
    vae = CausalVideoVAE(vcfg).eval()
    dcfg = DiTConfig(latent_channels=4, latent_height=4, latent_width=4, dim=32, layers=2, heads=2, text_dim=32,
                     mlp_ratio=2, tc=2, to=1, feature_dim=8, feature_hidden=8)
    teacher = DiT(dcfg).eval()
    for p in teacher.parameters():  # the zero-initialised modulation/head would make v = 0
        if p.dim() >= 1 and float(p.abs().sum()) == 0.0:
            nn.init.normal_(p, std=0.05)
    student = copy.deepcopy(teacher).to_student(tc=2, to=1, feature_dim=8, feature_hidden=8).eval()

    C, h, w, tc = 4, 4, 4, 2
    # The model helper's exporter and manifest writer (training/rehyat/export), unchanged.
    files = export_all(out, tok, vae, text, teacher, student)
    manifest = build_manifest(out, "tiny-test", files, tok, vae, text, teacher, student,
                              training={"note": "tiny random-weight test model, not a release"},
                              sampler={"steps": 3, "shift": 3.0, "guidance": 4.0},
                              student_name="rehyat-tiny", teacher_name="rehyat-tiny-teacher")
    manifest["limits"]["teacher_max_seconds"] = 8
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)

    # Reference video from PyTorch, chunk-major (training/rehyat/sampling.py), same noise as the TS
    # pipeline draws: chunk t's [C, Tc, h, w] block is the t-th block of the NoiseRng stream.
    from rehyat.sampling import sample_chunk_major
    ref = {"prompt": "a red circle bounces", "seed": 5, "chunks": 3, "steps": 3, "shift": 3.0, "guidance": 4.0}
    rng = NoiseRng(ref["seed"])
    T = ref["chunks"] * tc
    noise = torch.zeros(1, C, T, h, w)
    for c in range(ref["chunks"]):
        block = torch.tensor([rng.normal() for _ in range(C * tc * h * w)], dtype=torch.float32).view(C, tc, h, w)
        noise[0, :, c * tc:(c + 1) * tc] = block
    with torch.no_grad():
        cond = text(tok.batch([ref["prompt"]]))
        uncond = text(tok.batch([""]))
        lat = sample_chunk_major(student, cond, uncond, noise, steps=ref["steps"], shift=ref["shift"], guidance=ref["guidance"])
        frames = VaeDecoderGraph(vae)(lat, *vae.decoder.empty_cache(1, h, w))[0]  # [1, F, H, W, 3] in [0, 1]
    u8 = (frames[0] * 255.0).round().clamp(0, 255).to(torch.uint8).contiguous()
    u8.numpy().tofile(os.path.join(out, "reference_frames.rgb"))
    ref["frames"] = int(u8.shape[0])
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main(sys.argv[1])
