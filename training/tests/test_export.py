import json
import os
import shutil
import subprocess

import onnx
import pytest
import torch
from onnx import TensorProto

from rehyat import train
from rehyat.dit import DiT
from rehyat.export.manifest import build_manifest
from rehyat.export.onnx_export import export_all
from rehyat.export.parity import write_fixtures
from rehyat.text import TextEncoder, Tokenizer
from rehyat.vae import CausalVideoVAE

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    p = train.preset("tiny")
    tok = Tokenizer(max_len=p.text.max_len)
    p.text.vocab_size = tok.vocab_size
    vae, text, teacher = CausalVideoVAE(p.vae), TextEncoder(p.text), DiT(p.dit)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial weights (zero-initialised heads would hide bugs)
        for prm in teacher.parameters():
            prm.add_(torch.randn(prm.shape, generator=g) * 0.05)
    import copy
    student = copy.deepcopy(teacher)
    student.cfg = copy.deepcopy(teacher.cfg)
    student.to_student(p.tc, p.to)
    out = str(tmp_path_factory.mktemp("export"))
    files = export_all(out, tok, vae, text, teacher, student)
    write_fixtures(os.path.join(out, "parity"), tok, vae, text, teacher, student)
    man = build_manifest(out, "tiny", files, tok, vae, text, teacher, student)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(man, f)
    return out, man, student


def test_graphs_check_and_store_fp16_weights(exported):
    out, man, _ = exported
    for key in ("text_encoder", "vae_decoder", "teacher_dit", "dit_step", "dit_step_custom"):
        m = onnx.load(os.path.join(out, man["files"][key]["path"]))
        onnx.checker.check_model(m)
        assert any(op.version == 17 for op in m.opset_import if op.domain in ("", "ai.onnx"))
        import numpy as np
        big = [i for i in m.graph.initializer if len(i.dims) >= 2 and int(np.prod(i.dims)) >= 256]
        assert big and all(i.data_type == TensorProto.FLOAT16 for i in big), key


def test_step_io_and_custom_op_node(exported):
    out, man, student = exported
    c = student.cfg
    std = onnx.load(os.path.join(out, "dit_step.onnx"))
    cus = onnx.load(os.path.join(out, "dit_step_custom.onnx"))
    names = [i.name for i in std.graph.input]
    assert names == ["x", "t", "context", "frame_offset", "S", "z", "k_tail", "v_tail", "fk_tail"]
    assert [o.name for o in cus.graph.output] == ["velocity", "S_out", "z_out", "k_tail_out", "v_tail_out", "fk_tail_out"]
    nodes = [n for n in cus.graph.node if n.op_type == "HybridAttention"]
    assert len(nodes) == c.layers and all(n.domain == "ai.rehyat" for n in nodes)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nodes[0].attribute}
    assert attrs["tail_tokens"] == c.to * c.tokens_per_frame
    assert abs(attrs["scale"] - c.head_dim ** -0.5) < 1e-6
    assert len(nodes[0].input) == 10 and len(nodes[0].output) == 6
    assert not any(n.op_type == "HybridAttention" for n in std.graph.node)
    assert any(op.domain == "ai.rehyat" for op in cus.opset_import)


def test_manifest_fields(exported):
    out, man, student = exported
    assert man["format"] == 1 and man["models"]["student"] and man["models"]["teacher"]
    for f in man["files"].values():
        assert len(f["sha256"]) == 64 and f["bytes"] > 0
    assert man["student"]["tc_latent_frames"] == student.cfg.tc
    assert man["video"]["chunk_frames"] == 4 * student.cfg.tc


def _node_ok():
    if shutil.which("node") is None:
        return False
    r = subprocess.run(["node", "-e", "require.resolve('onnxruntime-node')"], cwd=REPO, capture_output=True)
    return r.returncode == 0


@pytest.mark.skipif(not _node_ok(), reason="node + onnxruntime-node (root node_modules) needed for ORT parity")
def test_onnxruntime_node_parity(exported):
    out, _, _ = exported
    r = subprocess.run(["node", os.path.join(REPO, "training/tests/node/parity.mjs"), os.path.join(out, "parity"), out,
                        "--skip-custom"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count('"graph"') == 4
