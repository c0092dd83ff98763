"""Benchmark models (python3 + onnx): usage: python3 bench/make-bench-models.py OUT_DIR TAIL:H:D [...]

For each TAIL (tail tokens), H (heads) and D (head dim = feature dim of the benchmark):
  ha_f16_t<TAIL>.onnx          the ai.rehyat::HybridAttention node (float16)
  std_f16_t<TAIL>_d<D>.onnx    the same math in standard ONNX ops (float16 matmuls, float32 state)
  mha_f16_h<H>_d<D>.onnx       full softmax: com.microsoft MultiHeadAttention over [1, N, H*D]
"""
import importlib.util
import math
import os
import sys

import onnx
from onnx import TensorProto, helper

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("mtm", os.path.join(here, "..", "scripts", "make-test-models.py"))
mtm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mtm)

F16, F32, I64 = TensorProto.FLOAT16, TensorProto.FLOAT, TensorProto.INT64


def opset(*extra):
    return [helper.make_opsetid("", 17), *extra]


def std_model(tail, d):
    """y, S', z', tails of one chunk with MatMul/Softmax-free standard ops (explicit max/exp/sums)."""
    vi = helper.make_tensor_value_info
    ins = [vi(n, F16, ["B", "H", "Nc", last]) for n, last in mtm.IN]
    ins += [vi("S", F32, ["B", "H", "Dp", "d"]), vi("z", F32, ["B", "H", "Dp"])]
    ins += [vi("k_tail", F16, ["B", "H", "Nt", "d"]), vi("v_tail", F16, ["B", "H", "Nt", "d"]),
            vi("fk_tail", F16, ["B", "H", "Nt", "Dp"])]
    outs = [vi("y", F16, None), vi("S_out", F32, None), vi("z_out", F32, None), vi("k_tail_out", F16, None),
            vi("v_tail_out", F16, None), vi("fk_tail_out", F16, None)]
    c = lambda name, vals, t=I64: helper.make_tensor(name, t, [len(vals)], vals)
    inits = [c("ax2", [2]), c("tail", [tail]), c("zero", [0]), c("big", [2**62]), c("two", [2]), c("three", [3]),
             helper.make_tensor("scale", F16, [], [1.0 / math.sqrt(d)])]
    N = helper.make_node
    nodes = [
        N("Concat", ["k_tail", "k"], ["K"], axis=2), N("Concat", ["v_tail", "v"], ["V"], axis=2),
        N("Concat", ["fk_tail", "fk"], ["FK"], axis=2),
        N("Transpose", ["K"], ["Kt"], perm=[0, 1, 3, 2]), N("MatMul", ["q", "Kt"], ["qk"]),
        N("Mul", ["qk", "scale"], ["logits"]), N("ReduceMax", ["logits"], ["cmax"], axes=[-1], keepdims=1),
        N("Sub", ["logits", "cmax"], ["sh"]), N("Exp", ["sh"], ["e"]),
        N("MatMul", ["e", "V"], ["aS16"]), N("Cast", ["aS16"], ["aS"], to=F32),
        N("Cast", ["e"], ["e32"], to=F32), N("ReduceSum", ["e32", "minus1"], ["nS"], keepdims=1),
        N("Cast", ["fq"], ["fq32"], to=F32), N("MatMul", ["fq32", "S"], ["aL"]),
        N("Unsqueeze", ["z", "minus1"], ["zc"]), N("MatMul", ["fq32", "zc"], ["nL"]),
        N("Add", ["aS", "aL"], ["num"]), N("Add", ["nS", "nL"], ["den"]), N("Div", ["num", "den"], ["y32"]),
        N("Cast", ["y32"], ["y"], to=F16),
        # leave = Nw - min(tail, Nw)
        N("Shape", ["K"], ["shK"]), N("Gather", ["shK", "ax2"], ["Nw"], axis=0), N("Min", ["tail", "Nw"], ["Tn"]),
        N("Sub", ["Nw", "Tn"], ["leave"]),
        N("Slice", ["FK", "zero", "leave", "ax2"], ["FKl"]), N("Slice", ["V", "zero", "leave", "ax2"], ["Vl"]),
        N("Cast", ["FKl"], ["FKl32"], to=F32), N("Cast", ["Vl"], ["Vl32"], to=F32),
        N("Transpose", ["FKl32"], ["FKlT"], perm=[0, 1, 3, 2]), N("MatMul", ["FKlT", "Vl32"], ["dS"]),
        N("Add", ["S", "dS"], ["S_out"]), N("ReduceSum", ["FKl32", "ax2"], ["dz"], keepdims=0),
        N("Add", ["z", "dz"], ["z_out"]),
        N("Slice", ["K", "leave", "big", "ax2"], ["k_tail_out"]), N("Slice", ["V", "leave", "big", "ax2"], ["v_tail_out"]),
        N("Slice", ["FK", "leave", "big", "ax2"], ["fk_tail_out"]),
    ]
    inits.append(c("minus1", [-1]))
    g = helper.make_graph(nodes, "hybrid_attention_std", ins, outs, initializer=inits)
    m = helper.make_model(g, opset_imports=opset(), producer_name="rehyat-kernels-bench")
    m.ir_version = 8
    return m


def mha_model(h, d):
    vi = helper.make_tensor_value_info
    ins = [vi(n, F16, [1, "N", h * d]) for n in ("query", "key", "value")]
    out = vi("out", F16, [1, "N", h * d])
    node = helper.make_node("MultiHeadAttention", ["query", "key", "value"], ["out"], domain="com.microsoft",
                            num_heads=h)
    g = helper.make_graph([node], "mha", ins, [out])
    m = helper.make_model(g, opset_imports=opset(helper.make_opsetid("com.microsoft", 1)),
                          producer_name="rehyat-kernels-bench")
    m.ir_version = 8
    return m


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for spec_ in sys.argv[2:]:
        tail, h, d = (int(x) for x in spec_.split(":"))
        onnx.save(mtm.ha_model(F16, tail), os.path.join(out, f"ha_f16_t{tail}.onnx"))
        onnx.save(std_model(tail, d), os.path.join(out, f"std_f16_t{tail}_d{d}.onnx"))
        onnx.save(mha_model(h, d), os.path.join(out, f"mha_f16_h{h}_d{d}.onnx"))


if __name__ == "__main__":
    main()
