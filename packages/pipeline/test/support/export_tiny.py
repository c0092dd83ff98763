"""Exports a tiny, randomly initialised ReHyAt model (the real training/ architecture: causal VAE
decoder, text encoder, teacher DiT, student DiT with hybrid attention) in the layout the pipeline
reads, for the pipeline's tests. Weights are random (seeded), so the frames are noise-like, but
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


class StepWrapper(nn.Module):
    def __init__(self, dit):
        super().__init__()
        self.dit = dit

    def forward(self, x, t, context, frame_offset, S, z, k_tail, v_tail, fk_tail):
        v, st = self.dit.forward_step(x, t, context, frame_offset, (S, z, k_tail, v_tail, fk_tail))
        return (v,) + tuple(st)


class TeacherWrapper(nn.Module):
    def __init__(self, dit):
        super().__init__()
        self.dit = dit

    def forward(self, x, t, context):
        return self.dit(x, t, context, softmax=True)


class DecoderWrapper(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, z, cache0, cache1, cache2):
        frames, caches = self.vae.decode(z, [cache0, cache1, cache2])
        return (frames,) + tuple(caches)


def affine_layernorms(model: nn.Module) -> nn.Module:
    """torch 1.13's opset-17 export drops the scale input of a LayerNorm without affine parameters
    (an invalid graph); identity affine parameters give the same math and a valid node."""
    for m in model.modules():
        if isinstance(m, nn.LayerNorm) and not m.elementwise_affine:
            m.elementwise_affine = True
            m.weight = nn.Parameter(torch.ones(m.normalized_shape))
            m.bias = nn.Parameter(torch.zeros(m.normalized_shape))
    return model


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
    affine_layernorms(teacher)
    affine_layernorms(student)

    C, h, w, tc = 4, 4, 4, 2
    L, H, d, dp = dcfg.layers, dcfg.heads, dcfg.head_dim, dcfg.feature_dim
    tpf = (h // 2) * (w // 2)
    files = {}

    def export(module, args, name, inputs, outputs, dynamic, custom=False):
        path = os.path.join(out, name + ".onnx")
        kw = {"custom_opsets": {"ai.rehyat": 1}} if custom else {}
        with torch.no_grad():
            torch.onnx.export(module, args, path, input_names=inputs, output_names=outputs,
                              dynamic_axes=dynamic, opset_version=OPSET, do_constant_folding=True, **kw)
        return path

    ids = tok.batch(["a red circle", ""])
    export(text, (ids,), "text_encoder", ["ids"], ["context"], {"ids": {0: "b"}, "context": {0: "b"}})
    ctx = text(ids)

    b = 2
    nt = dcfg.to * tpf
    step_args = (torch.randn(b, C, tc, h, w), torch.rand(b), ctx, torch.tensor([2], dtype=torch.int64),
                 torch.rand(L, b, H, dp, d), torch.rand(L, b, H, dp), torch.randn(L, b, H, nt, d),
                 torch.randn(L, b, H, nt, d), torch.rand(L, b, H, nt, dp))
    state = ["S", "z", "k_tail", "v_tail", "fk_tail"]
    dyn = {"x": {0: "b"}, "t": {0: "b"}, "context": {0: "b"}, "v": {0: "b"}}
    for s in state:
        dyn[s] = {1: "b"}
        dyn[s + "_out"] = {1: "b"}
    for s in ["k_tail", "v_tail", "fk_tail"]:
        dyn[s] = {1: "b", 3: "nt"}
    ins = ["x", "t", "context", "frame_offset"] + state
    outs = ["v"] + [s + "_out" for s in state]
    export(StepWrapper(student), step_args, "dit_step", ins, outs, dyn)
    student.set_custom_op(True)
    export(StepWrapper(student), step_args, "dit_step_custom", ins, outs, dyn, custom=True)
    student.set_custom_op(False)

    export(TeacherWrapper(teacher), (torch.randn(b, C, 2 * tc, h, w), torch.rand(b), ctx), "teacher_dit",
           ["x", "t", "context"], ["v"], {"x": {0: "b", 2: "T"}, "t": {0: "b"}, "context": {0: "b"}, "v": {0: "b", 2: "T"}})

    shapes = vae.decoder.cache_shapes(1, h, w)
    caches = [torch.zeros(s) for s in shapes]
    export(DecoderWrapper(vae), (torch.randn(1, C, tc, h, w), *caches), "vae_decoder",
           ["z", "cache0", "cache1", "cache2"], ["frames", "cache0_out", "cache1_out", "cache2_out"], None)

    with open(os.path.join(out, "vocab.json"), "w") as f:
        json.dump(tok.to_json(), f)

    def entry(fn):
        p = os.path.join(out, fn)
        data = open(p, "rb").read()
        return {"path": fn, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}

    for key in ["text_encoder", "dit_step", "dit_step_custom", "teacher_dit", "vae_decoder"]:
        files[key] = entry(key + ".onnx")
    files["vocab"] = entry("vocab.json")
    manifest = {
        "format": 1,
        "version": "tiny-test",
        "models": {"student": "rehyat-tiny", "teacher": "rehyat-tiny-teacher"},
        "video": {"width": w * 8, "height": h * 8, "fps": 8, "first_chunk_frames": 4 * tc, "chunk_frames": 4 * tc},
        "limits": {"sizes": [f"{w * 8}x{h * 8}"], "min_seconds": 1, "max_seconds": 60, "teacher_max_seconds": 8,
                   "max_prompt_chars": 200, "max_steps": 50},
        "sampler": {"steps": 3, "shift": 3.0, "guidance": 4.0},
        "latent": {"channels": C, "height": h, "width": w, "tc": tc, "to": dcfg.to, "temporal": 4},
        "state": {"layers": L, "heads": H, "head_dim": d, "feature_dim": dp, "tokens_per_frame": tpf},
        "vae_cache": [{"name": f"cache{i}", "shape": list(s[1:])} for i, s in enumerate(shapes)],
        "text": {"max_len": tcfg.max_len, "dim": tcfg.dim},
        "files": files,
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)

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
        frames = vae.decode_chunks(lat, tc)  # [1, 3, F, H, W]
    u8 = ((frames[0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 3, 0).contiguous()
    u8.numpy().tofile(os.path.join(out, "reference_frames.rgb"))
    ref["frames"] = int(u8.shape[0])
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main(sys.argv[1])
