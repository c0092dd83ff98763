"""Export a checkpoint to ONNX (opset 17), weights stored fp16 and cast to fp32 in the graph.

    python3 -m rehyat.export.onnx_export --checkpoint CK --out models/<version> --version <version>

(run from training/). Writes the five graphs, vocab.json, parity fixtures and manifest.json.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import os
from typing import Dict, List

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import torch

from ..dit import empty_states
from .graphs import (STEP_IO, TEACHER_IO, TEXT_IO, VAE_IO, DiTStepGraph, TeacherGraph, TextEncoderGraph,
                     VaeDecoderGraph)

OPSET = 17
CUSTOM_DOMAIN = "ai.rehyat"


def fp16_weights(model: onnx.ModelProto, min_elements: int = 16) -> onnx.ModelProto:
    """Store every float32 initializer with >= min_elements values that float16 represents
    exactly (the weights: they are rounded to fp16 before export) as float16, followed by an
    in-graph Cast back to float32 under the original name (ONNX Runtime folds it at load).
    Computed constants that fp16 would change (frequency tables...) stay float32."""
    g = model.graph
    casts = []
    keep = []
    for init in g.initializer:
        arr32 = numpy_helper.to_array(init) if init.data_type == TensorProto.FLOAT else None
        if (arr32 is not None and arr32.size >= min_elements
                and np.array_equal(arr32.astype(np.float16).astype(np.float32), arr32)):
            arr = arr32.astype(np.float16)
            name16 = init.name + "__fp16"
            keep.append(numpy_helper.from_array(arr, name16))
            casts.append(helper.make_node("Cast", [name16], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "__cast"))
        else:
            keep.append(init)
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    return model


def _export(module, args, path, io_names, dynamic_axes, custom=False):
    buf = io.BytesIO()
    kw = {}
    import inspect
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kw["dynamo"] = False  # torch >= 2.5: keep the TorchScript exporter (symbolic custom op)
    if custom:
        kw["custom_opsets"] = {CUSTOM_DOMAIN: 1}
    with torch.no_grad():
        torch.onnx.export(module, args, buf, opset_version=OPSET, input_names=io_names[0],
                          output_names=io_names[1], dynamic_axes=dynamic_axes, do_constant_folding=True,
                          **kw)
    model = onnx.load_from_string(buf.getvalue())
    model = fp16_weights(model)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return model


def example_inputs(student, teacher, text, vae, batch=2):
    """Deterministic example inputs for each graph (also the parity fixtures' inputs)."""
    g = torch.Generator().manual_seed(1234)
    c = student.cfg
    tc = c.tc
    L = text.cfg.max_len
    ids = torch.randint(3, text.cfg.vocab_size, (batch, L), generator=g)
    ids[:, 0] = 2
    ctx = torch.randn(batch, L, text.cfg.dim, generator=g)
    x_chunk = torch.randn(batch, c.latent_channels, tc, c.latent_height, c.latent_width, generator=g)
    x_video = torch.randn(batch, c.latent_channels, 2 * tc, c.latent_height, c.latent_width, generator=g)
    t = torch.rand(batch, generator=g)
    caches = vae.decoder.empty_cache(batch, c.latent_height, c.latent_width)
    return ids, ctx, x_chunk, x_video, t, caches


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


def _io_desc(model: onnx.ModelProto):
    def desc(v):
        tt = v.type.tensor_type
        dims = [d.dim_param if d.dim_param else int(d.dim_value) for d in tt.shape.dim]
        return {"name": v.name, "dtype": TensorProto.DataType.Name(tt.elem_type).lower(), "shape": dims}
    return {"inputs": [desc(v) for v in model.graph.input], "outputs": [desc(v) for v in model.graph.output]}


def export_all(out_dir: str, tok, vae, text, teacher, student) -> Dict[str, dict]:
    """Export every graph into out_dir. Returns {key: {"path", "io"}}."""
    os.makedirs(out_dir, exist_ok=True)
    for m in (vae, text, teacher, student):
        m.eval().float().cpu()
        with torch.no_grad():
            for prm in m.parameters():  # the release stores fp16 weights: compute with exactly those
                prm.copy_(prm.half().float())
    ids, ctx, x_chunk, x_video, t, caches = example_inputs(student, teacher, text, vae)
    c = student.cfg
    files = {}

    m = _export(TextEncoderGraph(text), (ids,), os.path.join(out_dir, "text_encoder.onnx"), TEXT_IO,
                {"ids": {0: "batch"}, "context": {0: "batch"}})
    files["text_encoder"] = {"path": "text_encoder.onnx", "io": _io_desc(m)}

    dyn = {"latent": {0: "batch", 2: "latent_frames"}, "frames": {0: "batch", 1: "frames"}}
    for i in range(3):
        dyn[f"cache_{i}"] = {0: "batch"}
        dyn[f"cache_{i}_out"] = {0: "batch"}
    m = _export(VaeDecoderGraph(vae), (x_chunk, *caches), os.path.join(out_dir, "vae_decoder.onnx"), VAE_IO, dyn)
    files["vae_decoder"] = {"path": "vae_decoder.onnx", "io": _io_desc(m)}

    dyn = {"x": {0: "batch", 2: "latent_frames"}, "t": {0: "batch"}, "context": {0: "batch"},
           "velocity": {0: "batch", 2: "latent_frames"}}
    m = _export(TeacherGraph(teacher), (x_video, t, ctx), os.path.join(out_dir, "teacher_dit.onnx"), TEACHER_IO, dyn)
    files["teacher_dit"] = {"path": "teacher_dit.onnx", "io": _io_desc(m)}

    st = step_example_state(student, x_chunk, t, ctx)
    dyn = {"x": {0: "batch"}, "t": {0: "batch"}, "context": {0: "batch"}, "velocity": {0: "batch"}}
    for nm in ("S", "z", "S_out", "z_out"):
        dyn[nm] = {1: "batch"}
    for nm in ("k_tail", "v_tail", "fk_tail"):
        dyn[nm] = {1: "batch", 3: "tail_tokens_in"}
        dyn[nm + "_out"] = {1: "batch", 3: "tail_tokens_out"}
    off = torch.tensor([c.tc], dtype=torch.int64)
    for key, custom in (("dit_step", False), ("dit_step_custom", True)):
        s = copy.deepcopy(student)
        s.set_custom_op(custom)
        m = _export(DiTStepGraph(s), (x_chunk, t, ctx, off, *st), os.path.join(out_dir, key + ".onnx"), STEP_IO,
                    dyn, custom=custom)
        files[key] = {"path": key + ".onnx", "io": _io_desc(m)}

    with open(os.path.join(out_dir, "vocab.json"), "w") as f:
        json.dump(tok.to_json(), f, indent=0)
    files["vocab"] = {"path": "vocab.json"}
    return files


@torch.no_grad()
def step_example_state(student, x_chunk, t, ctx):
    """State after one chunk (so tails are non-empty, Nt = To * tokens per frame)."""
    st = empty_states(student.cfg, x_chunk.shape[0])
    _, st = student.forward_step(x_chunk, t, ctx, 0, st)
    return st


def main(argv=None):
    from ..train import load_checkpoint
    from .manifest import build_manifest
    from .parity import write_fixtures
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--metrics", help="metrics.json of the training run, summarised into the manifest")
    a = ap.parse_args(argv)
    ck, tok, vae, text, teacher, student = load_checkpoint(a.checkpoint)
    files = export_all(a.out, tok, vae, text, teacher, student)
    # the custom-op graph has the same math and inputs: dit_step.parity.json serves both
    write_fixtures(os.path.join(a.out, "parity"), tok, vae, text, teacher, student, batch=1, custom=False)
    training = {}
    if a.metrics:
        with open(a.metrics) as f:
            m = json.load(f)
        training = {k: m[k] for k in ("device", "torch", "train_seconds") if k in m}
    manifest = build_manifest(a.out, a.version, files, tok, vae, text, teacher, student, training,
                              student_name=a.version, teacher_name=f"{a.version}-teacher")
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    total = sum(e["bytes"] for e in manifest["files"].values())
    print(json.dumps({k: e["bytes"] for k, e in manifest["files"].items()}), "total", total)


if __name__ == "__main__":
    main()
