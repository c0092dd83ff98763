"""Recover a training checkpoint from a released model folder (models/<version>), so that a
released model can be evaluated and trained further after its checkpoint is gone.

    python3 -m rehyat.export.recover --model ../models/rehyat-5 --preset long4 --out runs/rec/checkpoint.pt

(run from training/, with the torch that exported the release: the graphs are matched initializer by
initializer against a fresh export of the same configuration.) How:

1. build the preset's models (vocabulary from the release's vocab.json), give every weight and
   buffer distinct random values, round them to fp16 as the exporter does, and export the four
   graphs to a temporary folder;
2. the fresh graph and the released one must have the same nodes and initializer shapes; each fresh
   initializer equals one parameter as stored or transposed (the exporter folds Linear weights into
   MatMul's [in, out] layout), which names the released initializer at the same position;
3. load the released values into the models and rerun the release's parity fixtures in PyTorch
   (<= 1e-4, as the ONNX parity test does): a wrong mapping cannot pass.

Limits: the torch that exported the release must run this (here Debian's 1.13, as for every release
so far); where the exporter merged equal-valued weights into one initializer, only tensors that kept
their own names are handled, so a release of untrained (zero- or one-valued) weights may be refused.

The release stores no VAE encoder: the checkpoint's encoder is random and marked missing
(``vae_encoder: "missing"``); ``rehyat.train --stages encoder`` refits it to the released, frozen
decoder before anything encodes videos. Released weights are fp16, like every checkpoint's.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
from typing import Dict, List, Tuple

import numpy as np
import onnx
from onnx import numpy_helper
import torch

from ..dit import DiT
from ..text import TextEncoder, Tokenizer
from ..vae import CausalVideoVAE
from .graphs import DiTStepGraph, TeacherGraph, TextEncoderGraph, VaeDecoderGraph
from .parity import fill

GRAPHS = ("text_encoder", "vae_decoder", "teacher_dit", "dit_step")


class RecoverError(RuntimeError):
    """The release does not match the preset's models (another configuration or exporter)."""


def _build(preset_name: str, vocab_path: str):
    from ..train import preset
    p = preset(preset_name)
    with open(vocab_path) as f:
        tok = Tokenizer.from_json(json.load(f))
    p.text.vocab_size = tok.vocab_size
    p.text.max_len = tok.max_len
    vae = CausalVideoVAE(p.vae)
    text = TextEncoder(p.text)
    tcfg = copy.deepcopy(p.dit)
    tcfg.hybrid = False
    teacher = DiT(tcfg)
    student = copy.deepcopy(teacher)
    student.cfg = copy.deepcopy(teacher.cfg)
    student.to_student(p.tc, p.to)
    return p, tok, vae, text, teacher, student


def _scramble(models, seed: int = 7):
    """Distinct random fp16-representable values in every float parameter and buffer."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in models:
            for t in list(m.parameters()) + [b for b in m.buffers() if b.is_floating_point()]:
                t.copy_((torch.rand(t.shape, generator=g) * 2 + 0.5).half().float())


def _ties(model: onnx.ModelProto) -> Dict[str, str]:
    """Tensors the exporter merged because their values were equal (one initializer, then an Identity
    node under the other tensor's name): {tensor: the tensor whose initializer it shares}, names as in
    the module (the graph wrapper's first name component dropped)."""
    inits = {i.name for i in model.graph.initializer}
    named = {n.output[0] for n in model.graph.node if n.op_type == "Cast" and n.input[0] in inits}
    strip = lambda n: n.split(".", 1)[1] if "." in n else n
    return {strip(n.output[0]): strip(n.input[0]) for n in model.graph.node
            if n.op_type == "Identity" and (n.input[0] in inits or n.input[0] in named) and "." in n.output[0]}


def _arrays(model: onnx.ModelProto) -> List[Tuple[str, np.ndarray]]:
    return [(i.name, numpy_helper.to_array(i)) for i in model.graph.initializer]


def _structure(model: onnx.ModelProto):
    return [(n.op_type, len(n.input), len(n.output)) for n in model.graph.node]


def _tensors(module) -> Dict[str, torch.Tensor]:
    out = dict(module.named_parameters())
    out.update({k: b for k, b in module.named_buffers() if b.is_floating_point()})
    return out


def _match(fresh: onnx.ModelProto, released: onnx.ModelProto, module, graph: str) -> Dict[str, np.ndarray]:
    """-> {tensor name in ``module``: released value in the tensor's layout}."""
    if _structure(fresh) != _structure(released):
        raise RecoverError(f"{graph}: the released graph's nodes differ from a fresh export of the preset "
                           f"({len(released.graph.node)} vs {len(fresh.graph.node)} nodes): another "
                           "configuration, another torch exported it, or equal-valued weights (an untrained "
                           "model) were merged by the exporter")
    fa, ra = _arrays(fresh), _arrays(released)
    if [a.shape for _, a in fa] != [a.shape for _, a in ra]:
        raise RecoverError(f"{graph}: initializer shapes differ from a fresh export of the preset")
    index: Dict[bytes, Tuple[str, bool]] = {}
    for name, t in _tensors(module).items():
        a = t.detach().half().numpy()
        index.setdefault(a.tobytes(), (name, False))
        if a.ndim >= 2:
            index.setdefault(np.ascontiguousarray(np.swapaxes(a, -1, -2)).tobytes(), (name, True))
    found: Dict[str, np.ndarray] = {}
    tensors = _tensors(module)
    for (fname, f), (rname, r) in zip(fa, ra):
        key = f.astype(np.float16).tobytes() if f.dtype != np.float16 else f.tobytes()
        hit = index.get(key)
        if hit is None:
            continue  # a computed constant (RoPE tables, shapes): no weight of its own
        name, transposed = hit
        shape = tuple(tensors[name].shape)
        v = r.astype(np.float32)
        if transposed:
            v = np.swapaxes(v.reshape(shape[:-2] + (shape[-1], shape[-2])), -1, -2)
        v = v.reshape(shape)
        if name in found and not np.array_equal(found[name], v):
            raise RecoverError(f"{graph}: {name} appears twice with different released values")
        found[name] = np.ascontiguousarray(v)
    return found


def _export_fresh(tok, vae, text, teacher, student, out_dir: str) -> Dict[str, onnx.ModelProto]:
    from .onnx_export import export_all
    export_all(out_dir, tok, vae, text, teacher, student)
    return {g: onnx.load(os.path.join(out_dir, g + ".onnx")) for g in GRAPHS}


def _input(spec, done_runs):
    if "from" in spec:
        return done_runs[spec["from"]["run"]][spec["from"]["output"]]
    if "fill" in spec:
        f = spec["fill"]
        return fill(spec["dims"], f["a"], f["b"], f.get("scale", 1.0))
    dt = torch.int64 if spec["dtype"] == "int64" else torch.float32
    return torch.tensor(spec["values"], dtype=dt).reshape(spec["dims"])


@torch.no_grad()
def check_fixtures(parity_dir: str, vae, text, teacher, student) -> Dict[str, float]:
    """Rerun every ``<graph>.parity.json`` in PyTorch. -> {graph: worst |torch - fixture| / tolerance}
    (<= 1 passes)."""
    graphs = {"text_encoder": (TextEncoderGraph(text), ["ids"], ["context"]),
              "vae_decoder": (VaeDecoderGraph(vae), ["latent", "cache_0", "cache_1", "cache_2"],
                              ["frames", "cache_0_out", "cache_1_out", "cache_2_out"]),
              "teacher_dit": (TeacherGraph(teacher), ["x", "t", "context"], ["velocity"]),
              "dit_step": (DiTStepGraph(student), ["x", "t", "context", "frame_offset", "S", "z", "k_tail",
                                                   "v_tail", "fk_tail"],
                           ["velocity", "S_out", "z_out", "k_tail_out", "v_tail_out", "fk_tail_out"])}
    worst = {}
    for g, (mod, ins, outs) in graphs.items():
        with open(os.path.join(parity_dir, g + ".parity.json")) as f:
            fx = json.load(f)
        tol = fx["tolerance"]
        done, w = [], 0.0
        for run in fx["runs"]:
            args = [_input(run["inputs"][n], done) for n in ins]
            res = mod(*args)
            res = res if isinstance(res, tuple) else (res,)
            named = dict(zip(outs, res))
            done.append(named)
            for n, exp in run["outputs"].items():
                got = named[n].double().reshape(-1)[::exp["stride"]].numpy()
                want = np.asarray(exp["values"], dtype=np.float64)
                bound = tol["atol"] + tol["rtol"] * float(np.abs(want).max() if want.size else 0.0)
                if got.shape != want.shape:
                    raise RecoverError(f"{g}: output {n} has {got.size} sampled values, the fixture {want.size}")
                w = max(w, float(np.abs(got - want).max() / bound) if want.size else 0.0)
        worst[g] = round(w, 4)
    return worst


def recover(model_dir: str, preset_name: str = "long4", log=print):
    """-> (preset, tok, vae, text, teacher, student, report) with the release's weights loaded (the VAE
    encoder left random). Raises RecoverError when the release does not match the preset."""
    p, tok, vae, text, teacher, student = _build(preset_name, os.path.join(model_dir, "vocab.json"))
    models = {"text_encoder": text, "vae_decoder": vae, "teacher_dit": teacher, "dit_step": student}
    _scramble(models.values())
    released = {g: onnx.load(os.path.join(model_dir, g + ".onnx")) for g in GRAPHS}
    ties = {g: _ties(released[g]) for g in GRAPHS}
    with torch.no_grad():  # equal released tensors: equal fresh ones, so the exporter merges them alike
        for g, tied in ties.items():
            tensors = _tensors(models[g])
            for dst, src in tied.items():
                if dst in tensors and src in tensors:
                    tensors[dst].copy_(tensors[src])
    with tempfile.TemporaryDirectory() as tmp:
        fresh = _export_fresh(tok, vae, text, teacher, student, tmp)
    report = {"model_dir": os.path.abspath(model_dir), "preset": preset_name, "tensors": {}}
    for g in GRAPHS:
        module = models[g]
        found = _match(fresh[g], released[g], module, g)
        tensors = _tensors(module)
        for dst, src in ties[g].items():
            if src in found and dst in tensors:
                found[dst] = found[src]
        missing = sorted(n for n in tensors if n not in found and not (g == "vae_decoder" and n.startswith("encoder.")))
        if missing:
            raise RecoverError(f"{g}: no released initializer for {', '.join(missing[:6])}"
                               f"{' ...' if len(missing) > 6 else ''}")
        with torch.no_grad():
            for n, v in found.items():
                tensors[n].copy_(torch.from_numpy(v))
        report["tensors"][g] = len(found)
        log(f"[recover] {g}: {len(found)} tensors")
    with torch.no_grad():  # the encoder is not released: fresh initial weights, marked missing below
        enc = CausalVideoVAE(p.vae).encoder
        vae.encoder.load_state_dict(enc.state_dict())
    for m in models.values():
        m.eval()
    report["parity_worst_over_tolerance"] = check_fixtures(os.path.join(model_dir, "parity"), vae, text, teacher,
                                                           student)
    bad = {g: w for g, w in report["parity_worst_over_tolerance"].items() if not w <= 1.0}
    if bad:
        raise RecoverError(f"recovered weights fail the release's parity fixtures: {bad}")
    log(f"[recover] parity fixtures pass: {report['parity_worst_over_tolerance']}")
    return p, tok, vae, text, teacher, student, report


def main(argv=None):
    from ..train import save_checkpoint
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="released model folder (manifest.json, *.onnx, parity/)")
    ap.add_argument("--preset", default="long4", help="the training preset the release was made with")
    ap.add_argument("--out", required=True, help="checkpoint to write")
    a = ap.parse_args(argv)
    try:
        p, tok, vae, text, teacher, student, report = recover(a.model, a.preset)
    except (RecoverError, FileNotFoundError) as e:
        raise SystemExit(f"recover: {e}") from None
    metrics = {}
    mpath = os.path.join(a.model, "metrics.json")
    if os.path.exists(mpath):
        with open(mpath) as f:
            metrics = json.load(f)
    metrics["recovered"] = report
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    save_checkpoint(a.out, p, tok, vae, text, teacher, student, metrics, vae_encoder="missing")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
