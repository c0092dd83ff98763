"""A numpy stand-in for the few Triton features that ops/hybrid_attention/hybrid_attention_triton.py
uses, so that the kernels' indexing, masking and segment logic run on the CPU without Triton or a
GPU (test/triton-logic.test.ts). Programs run one after the other; `launch` is ours, not Triton's.
It checks logic only: code generation, performance and Triton's typing rules need the real compiler
(bench/triton_check.py on the GPU)."""
from . import language  # noqa: F401

PID = [0, 0, 0]


def jit(fn=None, **_kw):
    return (lambda f: f) if fn is None else fn


def cdiv(a, b):
    return (a + b - 1) // b


def launch(fn, grid, *args, **constexprs):
    g = list(grid) + [1] * (3 - len(grid))
    for z in range(g[2]):
        for y in range(g[1]):
            for x in range(g[0]):
                PID[:] = [x, y, z]
                fn(*args, **constexprs)
