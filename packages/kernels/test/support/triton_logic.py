"""Runs the Triton source of HybridAttention's float16 fast path (ha_window_attention,
ha_state_update) on the CPU through the numpy stand-in in triton_numpy/, at the tile sizes the
generator compiles, over odd shapes (Nt = 0, one-token chunks, a tail longer than the chunk, D' not
a multiple of the tiles, partial key blocks), against a float64 form of shared/REHYAT.md. Outputs
start as NaN; loads and stores are bounds-checked. Prints one line per case; exit 1 on a failure.
usage: python3 triton_logic.py    (needs numpy only)"""
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "triton_numpy"))
sys.path.insert(0, str(HERE.parent.parent / "ops" / "hybrid_attention"))
import triton  # noqa: E402  (the stand-in)
import triton.language as tl  # noqa: E402
import hybrid_attention_triton as hat  # noqa: E402

LOG2E = 1.4426950408889634


def reference(x, Tn, scale):
    kw = np.concatenate([x["kt"], x["k"]], 1).astype(np.float64)
    vw = np.concatenate([x["vt"], x["v"]], 1).astype(np.float64)
    fkw = np.concatenate([x["fkt"], x["fk"]], 1).astype(np.float64)
    logits = np.einsum("bnd,bmd->bnm", x["q"].astype(np.float64), kw) * scale
    e = np.exp(logits - logits.max(-1, keepdims=True))
    fq, S, z = x["fq"].astype(np.float64), x["S"].astype(np.float64), x["z"].astype(np.float64)
    y = (e @ vw + fq @ S) / (e.sum(-1) + np.einsum("bnp,bp->bn", fq, z))[..., None]
    leave = kw.shape[1] - Tn
    return y, S + np.einsum("bjp,bjc->bpc", fkw[:, :leave], vw[:, :leave]), z + fkw[:, :leave].sum(1)


def run(rng, BH, Nc, Nt, d, Dp, Tn, attn, state):
    h = lambda *s: rng.standard_normal(s).astype(np.float16)
    u = lambda *s: (0.01 + 0.3 * rng.random(s)).astype(np.float16)
    x = dict(q=h(BH, Nc, d), k=h(BH, Nc, d), v=h(BH, Nc, d), fq=u(BH, Nc, Dp), fk=u(BH, Nc, Dp),
             kt=h(BH, Nt, d), vt=h(BH, Nt, d), fkt=u(BH, Nt, Dp),
             S=(30 * (2 * rng.random((BH, Dp, d)) - 1)).astype(np.float32),
             z=(1500 * rng.random((BH, Dp))).astype(np.float32))
    P = lambda a: tl.Ptr(a.reshape(-1))
    scale = 1 / math.sqrt(d)
    y = np.full((BH, Nc, d), np.nan, np.float16)
    triton.launch(hat.ha_window_attention, (triton.cdiv(Nc, attn["BLOCK_M"]), BH), P(x["q"]), P(x["k"]), P(x["v"]),
                  P(x["kt"]), P(x["vt"]), P(x["fq"]), P(x["S"]), P(x["z"]), P(y), Nc, Nt, Dp, scale * LOG2E, D=d, **attn)
    S2, z2 = np.full_like(x["S"], np.nan), np.full_like(x["z"], np.nan)
    grid = (triton.cdiv(Dp, state["BLOCK_P"]), triton.cdiv(d, state["BLOCK_D"]), BH)
    triton.launch(hat.ha_state_update, grid, P(x["v"]), P(x["fk"]), P(x["vt"]), P(x["fkt"]), P(x["S"]), P(x["z"]),
                  P(S2), P(z2), Nc, Nt, Dp, Nt + Nc - Tn, D=d, **state)
    yr, Sr, zr = reference(x, Tn, scale)
    rel = lambda a, e: float(np.linalg.norm(a.astype(np.float64) - e) / np.linalg.norm(e))
    ey, eS, ez = rel(y, yr), rel(S2, Sr), rel(z2, zr)
    mx = float(np.abs(y.astype(np.float64) - yr).max())
    # the op's tolerances: fp16 y 2e-3 (relRms and maxAbs), S and z 1e-5; NaN (unwritten) fails
    ok = ey <= 2e-3 and mx <= 2e-3 * max(1.0, float(np.abs(yr).max())) and eS <= 1e-5 and ez <= 1e-5
    print(f"{'ok  ' if ok else 'FAIL'} BH={BH} Nc={Nc} Nt={Nt} d={d} Dp={Dp} Tn={Tn} attn={attn} state={state}: "
          f"y relRms {ey:.1e} maxAbs {mx:.1e}, S {eS:.1e}, z {ez:.1e}")
    return ok


def main():
    rng = np.random.default_rng(2026)
    A = lambda bm, bn: dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_P=32, LIN_SPLIT=1)
    St = lambda bp, bd, bk: dict(BLOCK_P=bp, BLOCK_D=bd, BLOCK_K=bk)
    cases = [
        ((2, 41, 20, 128, 96, 20), A(128, 64), St(64, 64, 64)),
        ((2, 150, 64, 128, 128, 64), A(128, 64), St(64, 64, 64)),
        ((3, 300, 0, 128, 16, 100), A(64, 128), St(32, 32, 64)),
        ((6, 33, 8, 64, 48, 8), A(128, 64), St(64, 64, 64)),
        ((1, 7, 64, 64, 64, 64), A(128, 64), St(64, 64, 64)),
        ((2, 200, 130, 64, 96, 64), A(128, 128), St(64, 64, 32)),
        ((2, 1, 5, 32, 16, 5), A(64, 64), St(64, 32, 64)),
        ((1, 130, 20, 32, 80, 20), A(64, 64), St(64, 32, 64)),
        ((4, 128, 64, 32, 32, 64), A(64, 64), St(64, 32, 64)),
        ((1, 37, 0, 32, 32, 8), A(64, 64), St(32, 32, 64)),
    ]
    ok = all([run(rng, *c, a, s) for c, a, s in cases])
    print(f"{len(cases) if ok else 0} passed, {0 if ok else 1} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
