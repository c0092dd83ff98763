"""models/<version>/manifest.json: validates against packages/contracts/src/model-manifest.ts
(format 1) and adds what the pipeline needs: io of every graph, state layout, tokenizer, Tc/To."""
from __future__ import annotations

import os
from typing import Dict

from ..sampling import schedule  # noqa: F401  (documented sampler)
from ..world import FPS
from .onnx_export import sha256


def build_manifest(out_dir: str, version: str, files: Dict[str, dict], tok, vae, text, teacher, student,
                   training: dict = None, sampler=None, student_name="rehyat-1", teacher_name="rehyat-1-teacher") -> dict:
    c = student.cfg
    size = 8 * c.latent_height
    chunk_frames = 4 * c.tc
    sampler = sampler or {"steps": 16, "shift": 3.0, "guidance": 4.0}
    fentries = {}
    for key, f in files.items():
        path = os.path.join(out_dir, f["path"])
        e = {"path": f["path"], "sha256": sha256(path), "bytes": os.path.getsize(path)}
        if "io" in f:
            e.update(f["io"])
        fentries[key] = e
    P = c.tokens_per_frame
    return {
        "format": 1,
        "version": version,
        "models": {"student": student_name, "teacher": teacher_name},
        "video": {"width": size, "height": size, "fps": FPS, "first_chunk_frames": chunk_frames,
                  "chunk_frames": chunk_frames, "frames_per_latent_frame": 4,
                  "pixel_format": "frames output of vae_decoder: float32 [B, F, H, W, 3] RGB in [0, 1]"},
        "limits": {"sizes": [f"{size}x{size}"], "min_seconds": chunk_frames / FPS, "max_seconds": 120,
                   "teacher_max_seconds": 32, "max_prompt_chars": 500, "max_steps": 64},
        "sampler": {**sampler, "kind": "flow-matching-euler",
                    "schedule": "t_i = shift*u/(1+(shift-1)*u), u = 1 - i/steps, i = 0..steps; x += (t_{i+1}-t_i)*v",
                    "cfg": "v = v_uncond + guidance * (v_cond - v_uncond); cond and uncond batched [cond; uncond]",
                    "uncond_prompt": "", "noise": "standard normal latent [B, C, T, h, w]"},
        "latent": {"channels": c.latent_channels, "height": c.latent_height, "width": c.latent_width,
                   "temporal_compression": 4, "spatial_compression": 8},
        "tokenizer": {"file": "vocab.json", "max_len": text.cfg.max_len, "pad_id": 0, "unk_id": 1, "bos_id": 2,
                      "lowercase": True, "pattern": "[a-z]+"},
        "student": {
            "graph": "dit_step", "graph_custom_op": "dit_step_custom",
            "tc_latent_frames": c.tc, "to_latent_frames": c.to, "tokens_per_latent_frame": P,
            "layers": c.layers, "heads": c.heads, "head_dim": c.head_dim, "feature_dim": c.feature_dim,
            "custom_op": {"domain": "ai.rehyat", "name": "HybridAttention", "version": 1,
                          "attributes": {"tail_tokens": c.to * P, "scale": c.head_dim ** -0.5}},
            "state": {
                "S": {"shape": ["layers", "batch", "heads", "feature_dim", "head_dim"], "dtype": "float32"},
                "z": {"shape": ["layers", "batch", "heads", "feature_dim"], "dtype": "float32"},
                "k_tail": {"shape": ["layers", "batch", "heads", "tail_tokens", "head_dim"], "dtype": "float32"},
                "v_tail": {"shape": ["layers", "batch", "heads", "tail_tokens", "head_dim"], "dtype": "float32"},
                "fk_tail": {"shape": ["layers", "batch", "heads", "tail_tokens", "feature_dim"], "dtype": "float32"},
                "initial": "S, z zeros; tails with tail_tokens = 0 (first chunk)",
                "after_first_chunk_tail_tokens": c.to * P,
                "per_denoising_step": True,
                "note": "one state set per denoising step (CFG branches ride in the batch); feed *_out back as the next chunk's inputs at the same step",
            },
            "frame_offset": "int64 [1]: latent frame index of the chunk's first frame (chunk_index * tc)",
        },
        "vae_decoder": {
            "caches": [{"name": f"cache_{i}", "shape": list(s)} for i, s in
                       enumerate(vae.decoder.cache_shapes(1, c.latent_height, c.latent_width))],
            "initial": "zeros (batch dimension = the batch decoded)",
            "note": "decode latent chunks in order, feeding cache_i_out to cache_i; equals whole-video decoding",
        },
        "teacher": {"graph": "teacher_dit", "latent_frames_trained": 8, "whole_video": True},
        "text_encoder": {"graph": "text_encoder", "dim": text.cfg.dim},
        "parity": {"folder": "parity", "checker": "node training/tests/node/parity.mjs models/<version>/parity models/<version> --skip-custom"},
        "training": training or {},
        "files": fentries,
    }
