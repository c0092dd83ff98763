"""Writes the small ONNX models the tests run (python3 with the `onnx` package, any 1.12+).

usage: python3 scripts/make-test-models.py OUT_DIR

  ha_<f32|f16>_t<T>.onnx   one ai.rehyat::HybridAttention node, tail_tokens=T, dynamic dims
  ha_f32_t8_s02.onnx       the same with scale=0.2
  add_f32.onnx             Y = A + B (standard ops only, for onnxruntime-node)
"""
import os
import sys

import onnx
from onnx import TensorProto, helper

TAILS = (0, 3, 4, 5, 8, 20, 64)
IN = [("q", "d"), ("k", "d"), ("v", "d"), ("fq", "Dp"), ("fk", "Dp")]


def vi(name, elem, dims):
    return helper.make_tensor_value_info(name, elem, dims)


def ha_model(elem, tail, scale=None):
    inputs = [vi(n, elem, ["B", "H", "Nc", last]) for n, last in IN]
    inputs += [vi("S", TensorProto.FLOAT, ["B", "H", "Dp", "d"]), vi("z", TensorProto.FLOAT, ["B", "H", "Dp"])]
    inputs += [vi("k_tail", elem, ["B", "H", "Nt", "d"]), vi("v_tail", elem, ["B", "H", "Nt", "d"]),
               vi("fk_tail", elem, ["B", "H", "Nt", "Dp"])]
    outputs = [vi("y", elem, ["B", "H", "Nc", "d"]), vi("S_out", TensorProto.FLOAT, ["B", "H", "Dp", "d"]),
               vi("z_out", TensorProto.FLOAT, ["B", "H", "Dp"]), vi("k_tail_out", elem, ["B", "H", "Tn", "d"]),
               vi("v_tail_out", elem, ["B", "H", "Tn", "d"]), vi("fk_tail_out", elem, ["B", "H", "Tn", "Dp"])]
    attrs = {"tail_tokens": tail}
    if scale is not None:
        attrs["scale"] = float(scale)
    node = helper.make_node("HybridAttention", [i.name for i in inputs], [o.name for o in outputs],
                            domain="ai.rehyat", **attrs)
    graph = helper.make_graph([node], "hybrid_attention", inputs, outputs)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.rehyat", 1)],
                          producer_name="rehyat-kernels-tests")
    m.ir_version = 8
    return m


def add_model():
    a = vi("A", TensorProto.FLOAT, ["n"])
    b = vi("B", TensorProto.FLOAT, ["n"])
    y = vi("Y", TensorProto.FLOAT, ["n"])
    g = helper.make_graph([helper.make_node("Add", ["A", "B"], ["Y"])], "add", [a, b], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="rehyat-kernels-tests")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for t in TAILS:
        onnx.save(ha_model(TensorProto.FLOAT, t), os.path.join(out, f"ha_f32_t{t}.onnx"))
        onnx.save(ha_model(TensorProto.FLOAT16, t), os.path.join(out, f"ha_f16_t{t}.onnx"))
    onnx.save(ha_model(TensorProto.FLOAT, 8, 0.2), os.path.join(out, "ha_f32_t8_s02.onnx"))
    onnx.save(add_model(), os.path.join(out, "add_f32.onnx"))


if __name__ == "__main__":
    main()
