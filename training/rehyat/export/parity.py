"""Parity fixtures: PyTorch outputs of every exported graph on deterministic inputs.

A fixture file ``<graph>.parity.json`` holds ``runs``; each run's inputs are given either as
explicit ``values``, as a formula ``fill`` (value[i] = scale * sin(a * i + b), computed in
float64 then cast, identical in JS), or ``from`` an output of an earlier run (state chaining).
Outputs are stored subsampled (every ``stride``-th value, at most ~2000) plus ``sum`` and
``abs_sum`` of all values, so fixtures of the real model stay small. The Node checker
(``training/tests/node/parity.mjs``) runs the graph with onnxruntime-node and compares with
``tolerance`` (max |ort - torch| <= atol + rtol * max |torch| on the stored values).
"""
from __future__ import annotations

import json
import math
import os
from typing import Dict, List

import numpy as np
import torch

from ..dit import empty_states
from .graphs import DiTStepGraph, TeacherGraph, TextEncoderGraph, VaeDecoderGraph

ATOL, RTOL = 1e-4, 1e-4


def fill(dims, a, b, scale=1.0, dtype=np.float32):
    n = int(np.prod(dims)) if dims else 1
    v = scale * np.sin(a * np.arange(n, dtype=np.float64) + b)
    return torch.from_numpy(v.astype(dtype).reshape(dims))


def _spec_fill(dims, a, b, scale=1.0):
    return {"dims": list(dims), "dtype": "float32", "fill": {"a": a, "b": b, "scale": scale}}


def _spec_values(x: torch.Tensor):
    dt = "int64" if x.dtype == torch.int64 else "float32"
    return {"dims": list(x.shape), "dtype": dt, "values": x.reshape(-1).tolist()}


def _out(x: torch.Tensor, max_values=2000):
    flat = x.detach().double().reshape(-1)
    stride = max(1, math.ceil(flat.numel() / max_values))
    return {"dims": list(x.shape), "stride": stride, "values": [float("%.8g" % v) for v in flat[::stride].tolist()],
            "sum": float(flat.sum()), "abs_sum": float(flat.abs().sum())}


@torch.no_grad()
def write_fixtures(out_dir: str, tok, vae, text, teacher, student, batch: int = 2, custom: bool = True) -> List[str]:
    os.makedirs(out_dir, exist_ok=True)
    c = student.cfg
    L, D = text.cfg.max_len, text.cfg.dim
    prompts = ["a small red circle slowly drifts left over a blue background", ""][:batch]
    ids = tok.batch(prompts + [""] * (batch - len(prompts)))
    paths = []

    def dump(name, graph, runs):
        path = os.path.join(out_dir, name + ".parity.json")
        with open(path, "w") as f:
            json.dump({"graph": graph, "tolerance": {"atol": ATOL, "rtol": RTOL}, "runs": runs}, f)
        paths.append(path)

    ctx = TextEncoderGraph(text)(ids)
    dump("text_encoder", "text_encoder.onnx", [{"inputs": {"ids": _spec_values(ids)}, "outputs": {"context": _out(ctx)}}])

    # VAE decoder: two chained chunks
    lat_dims = [batch, c.latent_channels, c.tc, c.latent_height, c.latent_width]
    caches = vae.decoder.empty_cache(batch, c.latent_height, c.latent_width)
    g = VaeDecoderGraph(vae)
    runs, prev = [], None
    for r in range(2):
        lat = fill(lat_dims, 0.37, 0.1 + r)
        ins = {"latent": _spec_fill(lat_dims, 0.37, 0.1 + r)}
        if r == 0:
            for i, cc in enumerate(caches):
                ins[f"cache_{i}"] = _spec_fill(list(cc.shape), 0.0, 0.0, 0.0)
        else:
            for i in range(3):
                ins[f"cache_{i}"] = {"from": {"run": 0, "output": f"cache_{i}_out"}}
        outs = g(lat, *caches)
        caches = list(outs[1:])
        runs.append({"inputs": ins, "outputs": {n: _out(t) for n, t in
                                                zip(["frames", "cache_0_out", "cache_1_out", "cache_2_out"], outs)}})
    dump("vae_decoder", "vae_decoder.onnx", runs)

    # teacher: a whole video of 2 chunks
    xd = [batch, c.latent_channels, 2 * c.tc, c.latent_height, c.latent_width]
    tt = torch.tensor([0.7, 0.3][:batch] + [0.5] * max(0, batch - 2), dtype=torch.float32)
    v = TeacherGraph(teacher)(fill(xd, 0.29, 0.5), tt, ctx)
    dump("teacher_dit", "teacher_dit.onnx", [{"inputs": {"x": _spec_fill(xd, 0.29, 0.5), "t": _spec_values(tt),
                                                          "context": _spec_values(ctx.float())},
                                               "outputs": {"velocity": _out(v)}}])

    # student step: chunk 0 (empty tails) then chunk 1 (state chained)
    names = ["velocity", "S_out", "z_out", "k_tail_out", "v_tail_out", "fk_tail_out"]
    sn = ["S", "z", "k_tail", "v_tail", "fk_tail"]
    for key in (("dit_step", "dit_step_custom") if custom else ("dit_step",)):
        st = empty_states(c, batch)
        gs = DiTStepGraph(student)
        runs = []
        for r in range(2):
            xd = [batch, c.latent_channels, c.tc, c.latent_height, c.latent_width]
            x = fill(xd, 0.23, 0.7 * r)
            off = torch.tensor([r * c.tc], dtype=torch.int64)
            ins = {"x": _spec_fill(xd, 0.23, 0.7 * r), "t": _spec_values(tt), "context": _spec_values(ctx.float()),
                   "frame_offset": _spec_values(off)}
            if r == 0:
                for n, s in zip(sn, st):
                    ins[n] = _spec_fill(list(s.shape), 0.0, 0.0, 0.0)
            else:
                for n in sn:
                    ins[n] = {"from": {"run": 0, "output": n + "_out"}}
            outs = gs(x, tt, ctx, off, *st)
            st = outs[1:]
            runs.append({"inputs": ins, "outputs": {n: _out(t) for n, t in zip(names, outs)}})
        dump(key, key + ".onnx", runs)
    return paths
