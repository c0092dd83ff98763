"""Golden fixtures for the ``ai.rehyat::HybridAttention`` op (kernels package tests).

    python3 -m rehyat.attention.fixtures [out_dir]     (run from training/)

writes ``training/fixtures/hybrid_attention/<case>.json``. Each file is one op call, or a
sequence of calls whose state is chained, computed with :func:`hybrid_attention_step` and
checked against the naive ground truth. Layout of a file:

    {"op": "ai.rehyat::HybridAttention", "version": 1,
     "attributes": {"tail_tokens": int, "scale": float},
     "steps": [{"inputs":  {name: {"shape": [...], "dtype": "float32", "data": [...]}},
                "outputs": {name: {...}}}, ...],
     "parallel_y": {...}   # naive whole-sequence output, = concat of the steps' y
    }

inputs: q k v fq fk S z k_tail v_tail fk_tail; outputs: y S_out z_out k_tail_out v_tail_out
fk_tail_out (data row-major, float32 values printed with 9 significant digits).
"""
from __future__ import annotations

import json
import math
import os
import sys

import torch

from .feature_map import FeatureMap
from .naive import hybrid_attention_naive
from .recurrent import empty_state, hybrid_attention_step

IN_NAMES = ["q", "k", "v", "fq", "fk", "S", "z", "k_tail", "v_tail", "fk_tail"]
OUT_NAMES = ["y", "S_out", "z_out", "k_tail_out", "v_tail_out", "fk_tail_out"]

# name, B, H, tokens per frame P, d, D', Tc, To, frames (whole sequence)
CASES = [
    ("first_chunk_no_tail", 1, 2, 3, 8, 6, 2, 1, 2),
    ("to0_three_chunks", 1, 2, 3, 8, 6, 2, 0, 6),
    ("tc2_to1_four_chunks", 2, 2, 3, 8, 6, 2, 1, 8),
    ("tc3_to2_d32", 1, 3, 2, 32, 16, 3, 2, 9),
    ("tc1_to0_d16", 1, 1, 5, 16, 8, 1, 0, 3),
]


def _t(x: torch.Tensor) -> dict:
    x = x.detach().float().contiguous()
    return {"shape": list(x.shape), "dtype": "float32",
            "data": [float("%.9g" % v) for v in x.reshape(-1).tolist()]}


def build_case(b, h, p, d, dp, tc, to, frames, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = frames * p
    q, k, v = (torch.randn(b, h, n, d, generator=g) for _ in range(3))
    torch.manual_seed(seed)
    with torch.no_grad():
        fq, fk = FeatureMap(h, d, dp)(q), FeatureMap(h, d, dp)(k)
    scale = 1.0 / math.sqrt(d)
    ref = hybrid_attention_naive(q, k, v, fq, fk, p, tc, to, scale)
    state = empty_state(b, h, d, dp)
    steps, ys = [], []
    cn = tc * p
    for i in range(0, n, cn):
        sl = slice(i, min(n, i + cn))
        ins = (q[:, :, sl], k[:, :, sl], v[:, :, sl], fq[:, :, sl], fk[:, :, sl]) + tuple(state)
        outs = hybrid_attention_step(*ins, tail_tokens=to * p, scale=scale)
        steps.append({"inputs": {nm: _t(x) for nm, x in zip(IN_NAMES, ins)},
                      "outputs": {nm: _t(x) for nm, x in zip(OUT_NAMES, outs)}})
        ys.append(outs[0])
        state = outs[1:]
    y = torch.cat(ys, dim=2)
    err = (y - ref).abs().max().item()
    if err > 1e-5:
        raise AssertionError(f"recurrent vs naive mismatch {err}")
    return {"op": "ai.rehyat::HybridAttention", "version": 1,
            "attributes": {"tail_tokens": to * p, "scale": scale},
            "geometry": {"B": b, "H": h, "tokens_per_frame": p, "d": d, "feature_dim": dp,
                         "Tc": tc, "To": to, "frames": frames},
            "steps": steps, "parallel_y": _t(ref)}


def write_all(out_dir: str) -> list:
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for i, (name, *geo) in enumerate(CASES):
        case = build_case(*geo, seed=100 + i)
        path = os.path.join(out_dir, name + ".json")
        with open(path, "w") as f:
            json.dump(case, f, separators=(",", ":"))
        paths.append(path)
    return paths


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, "..", "..", "fixtures", "hybrid_attention")
    for p in write_all(sys.argv[1] if len(sys.argv) > 1 else default):
        print(p, os.path.getsize(p))
