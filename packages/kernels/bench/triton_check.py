#!/usr/bin/env python3
"""The Triton kernels of HybridAttention (ops/hybrid_attention/hybrid_attention_triton.py), run from
Python (Triton JIT) on the GPU: correctness against a float64 reference of the math in
shared/REHYAT.md, a timing sweep of tile configurations, PyTorch SDPA on the same card for scale,
and a whole-video loop (32 Wan2.1 chunks) of the Triton kernels alone.

    python3 packages/kernels/bench/triton_check.py OUT_DIR [quick]

Writes OUT_DIR/triton_check.jsonl (one JSON object per result) and OUT_DIR/tuned.json (the fastest
correct configuration per kernel name of scripts/gen-triton-ptx.py). Prints a summary last.
"""
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
import triton

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE / "ops" / "hybrid_attention"))
import hybrid_attention_triton as hat  # noqa: E402

LOG2E = 1.4426950408889634
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/triton-check")
QUICK = len(sys.argv) > 2 and sys.argv[2] == "quick"
OUT.mkdir(parents=True, exist_ok=True)
LOG = open(OUT / "triton_check.jsonl", "w")
torch.backends.cuda.matmul.allow_tf32 = False


def emit(**kw):
    LOG.write(json.dumps(kw) + "\n")
    LOG.flush()
    print(json.dumps(kw), flush=True)


def make_inputs(BH, Nc, Nt, d, Dp, seed, state_scale=30.0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    h = lambda *s: torch.randn(*s, device="cuda", generator=g).half()
    u = lambda lo, hi, *s: (lo + (hi - lo) * torch.rand(*s, device="cuda", generator=g)).half()
    return dict(
        q=h(BH, Nc, d), k=h(BH, Nc, d), v=h(BH, Nc, d),
        fq=u(0.01, 0.3, BH, Nc, Dp), fk=u(0.01, 0.3, BH, Nc, Dp),
        S=(state_scale * (2 * torch.rand(BH, Dp, d, device="cuda", generator=g) - 1)).float(),
        z=(state_scale * 50 * torch.rand(BH, Dp, device="cuda", generator=g)).float(),
        kt=h(BH, Nt, d), vt=h(BH, Nt, d), fkt=u(0.01, 0.3, BH, Nt, Dp),
    )


def reference(x, Tn, scale):
    """y, S', z' in float64 (shared/REHYAT.md)."""
    kw = torch.cat([x["kt"], x["k"]], 1).double()
    vw = torch.cat([x["vt"], x["v"]], 1).double()
    fkw = torch.cat([x["fkt"], x["fk"]], 1).double()
    logits = (x["q"].double() @ kw.transpose(1, 2)) * scale
    c = logits.amax(-1, keepdim=True)
    e = torch.exp(logits - c)
    a = e @ vw + x["fq"].double() @ x["S"].double()
    n = e.sum(-1) + (x["fq"].double() @ x["z"].double()[..., None])[..., 0]
    y = a / n[..., None]
    leave = kw.shape[1] - Tn
    S2 = x["S"].double() + fkw[:, :leave].transpose(1, 2) @ vw[:, :leave]
    z2 = x["z"].double() + fkw[:, :leave].sum(1)
    return y, S2, z2


def closeness(a, e, tol):
    a, e = a.double(), e.double()
    diff = a - e
    rel = (diff.norm() / e.norm().clamp_min(1e-300)).item()
    mx = diff.abs().max().item() if diff.numel() else 0.0
    ok = (not math.isnan(rel)) and rel <= tol and mx <= tol * max(1.0, e.abs().max().item() if e.numel() else 1.0)
    return dict(relRms=rel, maxAbs=mx, ok=bool(ok))


def attention(x, cfg, scale, y=None):
    BH, Nc, d = x["q"].shape
    Nt, Dp = x["kt"].shape[1], x["fq"].shape[2]
    y = torch.full_like(x["q"], float("nan")) if y is None else y
    c = cfg["const"]
    grid = (triton.cdiv(Nc, c["BLOCK_M"]), BH)
    kt = x["kt"] if Nt else x["k"]  # a valid pointer; never read when Nt == 0
    vt = x["vt"] if Nt else x["v"]
    k = hat.ha_window_attention[grid](x["q"], x["k"], x["v"], kt, vt, x["fq"], x["S"], x["z"], y, Nc, Nt, Dp,
                                      scale * LOG2E, D=d, **c, num_warps=cfg["num_warps"],
                                      num_stages=cfg["num_stages"])
    return y, k


def state_update(x, Tn, cfg, out=None):
    BH, Nc, d = x["v"].shape
    Nt, Dp = x["kt"].shape[1], x["fk"].shape[2]
    leave = Nt + Nc - Tn
    S2, z2 = (torch.full_like(x["S"], float("nan")), torch.full_like(x["z"], float("nan"))) if out is None else out
    c = cfg["const"]
    grid = (triton.cdiv(Dp, c["BLOCK_P"]), triton.cdiv(d, c["BLOCK_D"]), BH)
    vt = x["vt"] if Nt else x["v"]
    fkt = x["fkt"] if Nt else x["fk"]
    k = hat.ha_state_update[grid](x["v"], x["fk"], vt, fkt, x["S"], x["z"], S2, z2, Nc, Nt, Dp, leave, D=d, **c,
                                  num_warps=cfg["num_warps"], num_stages=cfg["num_stages"])
    return S2, z2, k


def acfg(D, bm, bn, w, st, split=1, bp=32):
    return dict(kernel="ha_window_attention", D=D, const=dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_P=bp, LIN_SPLIT=split),
                num_warps=w, num_stages=st)


def scfg(D, bp, bd, bk, w=4, st=3):
    return dict(kernel="ha_state_update", D=D, const=dict(BLOCK_P=bp, BLOCK_D=bd, BLOCK_K=bk), num_warps=w,
                num_stages=st)


ATTN = {
    128: [acfg(128, 128, 64, 8, 3), acfg(128, 128, 128, 8, 2), acfg(128, 128, 128, 8, 3), acfg(128, 64, 64, 4, 3),
          acfg(128, 128, 64, 8, 4), acfg(128, 128, 64, 8, 3, split=0)],
    64: [acfg(64, 128, 64, 8, 3), acfg(64, 128, 128, 8, 3), acfg(64, 64, 64, 4, 3)],
    32: [acfg(32, 64, 64, 4, 3), acfg(32, 128, 64, 4, 3), acfg(32, 64, 128, 4, 3)],
}
STATE = {
    128: [scfg(128, 64, 64, 64), scfg(128, 32, 32, 64), scfg(128, 64, 128, 32), scfg(128, 32, 64, 128)],
    64: [scfg(64, 64, 64, 64), scfg(64, 32, 32, 64)],
    32: [scfg(32, 64, 32, 64), scfg(32, 32, 32, 64)],
}
if QUICK:
    ATTN = {k: v[:1] for k, v in ATTN.items()}
    STATE = {k: v[:1] for k, v in STATE.items()}

# correctness cases: (BH, Nc, Nt, d, Dp, Tn)
CASES = {
    128: [(2, 41, 20, 128, 96, 20), (2, 150, 64, 128, 128, 64), (3, 300, 0, 128, 16, 100), (12, 4680, 1560, 128, 128, 1560)],
    64: [(6, 33, 8, 64, 48, 8), (1, 7, 64, 64, 64, 64), (4, 200, 64, 64, 96, 64)],
    32: [(2, 1, 5, 32, 16, 5), (1, 130, 20, 32, 80, 20), (4, 128, 64, 32, 32, 64), (1, 37, 0, 32, 32, 8)],
}
# timing shapes per d: (name, BH, Nc, Nt, Dp, Tn)
TIMING = {
    128: [("Wan chunk", 12, 4680, 1560, 128, 1560), ("Wan first chunk", 12, 4680, 0, 128, 1560)],
    64: [("d64 chunk", 12, 4680, 1560, 64, 1560)],
    32: [("ours chunk", 4, 128, 64, 32, 64)],
}


def bench(fn):
    return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median")


def main():
    emit(torch=torch.__version__, triton=triton.__version__, device=torch.cuda.get_device_name(0),
         capability=list(torch.cuda.get_device_capability(0)))
    tuned = {}
    summary = []
    for d in (128, 64, 32):
        scale = 1 / math.sqrt(d)
        # ---- attention configs: correctness on every case, then time
        best = None
        for cfg in ATTN[d]:
            tag = f"attn d{d} {cfg['const']} w{cfg['num_warps']} s{cfg['num_stages']}"
            try:
                ok_all = True
                for (BH, Nc, Nt, dd, Dp, Tn) in CASES[d]:
                    x = make_inputs(BH, Nc, Nt, dd, Dp, seed=BH * 1000 + Nc + Nt)
                    y, k = attention(x, cfg, scale)
                    yr, _, _ = reference(x, Tn, scale)
                    c = closeness(y, yr, 2e-3)
                    ok_all &= c["ok"]
                    emit(check=tag, case=[BH, Nc, Nt, dd, Dp, Tn], y=c)
                try:
                    ptx = k.asm["ptx"]
                except Exception:
                    ptx = ""
                meta = dict(n_regs=getattr(k, "n_regs", None), n_spills=getattr(k, "n_spills", None),
                            shared=getattr(k.metadata, "shared", None), wgmma="wgmma" in ptx, cp_async="cp.async" in ptx)
                times = {}
                for (name, BH, Nc, Nt, Dp, Tn) in TIMING[d]:
                    x = make_inputs(BH, Nc, Nt, d, Dp, seed=7)
                    yo = torch.empty_like(x["q"])
                    ms = bench(lambda: attention(x, cfg, scale, yo))
                    fl = BH * (4.0 * Nc * (Nc + Nt) * d + 2.0 * Nc * Dp * d)
                    times[name] = ms
                    emit(time=tag, shape=name, ms=round(ms, 4), tflops=round(fl / ms / 1e9, 1), **meta)
                main_t = times[TIMING[d][0][0]]
                summary.append(f"{tag}: {'ok' if ok_all else 'WRONG'} " + ", ".join(f"{n} {t:.3f} ms" for n, t in times.items())
                               + f" regs {meta['n_regs']} spills {meta['n_spills']} smem {meta['shared']}")
                if ok_all and (best is None or main_t < best[0]) and cfg["const"]["LIN_SPLIT"] == 1:
                    best = (main_t, cfg)
            except Exception as e:  # a config that fails to compile or run is a result too
                emit(check=tag, error=str(e).splitlines()[0][:300] if str(e) else repr(e))
                summary.append(f"{tag}: ERROR {str(e).splitlines()[0][:160] if str(e) else repr(e)}")
        if best:
            tuned[f"attn_d{d}"] = best[1]
        # ---- state update configs
        best = None
        for cfg in STATE[d]:
            tag = f"state d{d} {cfg['const']} w{cfg['num_warps']} s{cfg['num_stages']}"
            try:
                ok_all = True
                for (BH, Nc, Nt, dd, Dp, Tn) in CASES[d]:
                    x = make_inputs(BH, Nc, Nt, dd, Dp, seed=BH * 1000 + Nc + Nt + 1)
                    S2, z2, k = state_update(x, Tn, cfg)
                    _, Sr, zr = reference(x, Tn, scale)
                    cS, cz = closeness(S2, Sr, 1e-5), closeness(z2, zr, 1e-5)
                    ok_all &= cS["ok"] and cz["ok"]
                    emit(check=tag, case=[BH, Nc, Nt, dd, Dp, Tn], S=cS, z=cz)
                times = {}
                for (name, BH, Nc, Nt, Dp, Tn) in TIMING[d]:
                    x = make_inputs(BH, Nc, Nt, d, Dp, seed=7)
                    so = (torch.empty_like(x["S"]), torch.empty_like(x["z"]))
                    ms = bench(lambda: state_update(x, Tn, cfg, so))
                    times[name] = ms
                    emit(time=tag, shape=name, ms=round(ms, 4), n_regs=getattr(k, "n_regs", None))
                main_t = times[TIMING[d][0][0]]
                summary.append(f"{tag}: {'ok' if ok_all else 'WRONG'} " + ", ".join(f"{n} {t:.4f} ms" for n, t in times.items()))
                if ok_all and (best is None or main_t < best[0]):
                    best = (main_t, cfg)
            except Exception as e:
                emit(check=tag, error=str(e).splitlines()[0][:300] if str(e) else repr(e))
                summary.append(f"{tag}: ERROR {str(e).splitlines()[0][:160] if str(e) else repr(e)}")
        if best:
            tuned[f"state_d{d}"] = best[1]
    (OUT / "tuned.json").write_text(json.dumps(tuned, indent=1))

    # ---- PyTorch SDPA on the same card: the window work alone, and full attention over 149,760 tokens
    q = torch.randn(1, 12, 4680, 128, device="cuda").half()
    kv = torch.randn(1, 12, 6240, 128, device="cuda").half()
    ms = bench(lambda: F.scaled_dot_product_attention(q, kv, kv))
    fl = 12 * 4.0 * 4680 * 6240 * 128
    emit(time="PyTorch SDPA, one Wan window (4680 queries x 6240 keys, no linear branch)", ms=round(ms, 4),
         tflops=round(fl / ms / 1e9, 1))
    summary.append(f"SDPA Wan window: {ms:.3f} ms, {fl / ms / 1e9:.0f} TFLOP/s")
    del q, kv
    if not QUICK:
        n = 149760
        q, k, v = (torch.randn(1, 12, n, 128, device="cuda").half() for _ in range(3))
        F.scaled_dot_product_attention(q, k, v)
        ts = []
        for _ in range(3):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            F.scaled_dot_product_attention(q, k, v)
            b.record()
            torch.cuda.synchronize()
            ts.append(a.elapsed_time(b))
        ms = sorted(ts)[1]
        emit(time="PyTorch SDPA, full attention, 149,760 tokens (Wan2.1)", ms=round(ms, 2),
             tflops=round(4.0 * n * n * 128 * 12 / ms / 1e9, 1))
        summary.append(f"SDPA full 149,760: {ms:.1f} ms")
        del q, k, v

    # ---- whole video with the tuned Triton kernels alone: 32 chunks, state carried, tails copied
    ca, cs = tuned.get("attn_d128"), tuned.get("state_d128")
    if ca and cs:
        H, Nc, d, Dp, Tn = 12, 4680, 128, 128, 1560
        chunks = [make_inputs(H, Nc, 0, d, Dp, seed=100 + i) for i in range(2)]
        S = torch.zeros(H, Dp, d, device="cuda")
        z = torch.zeros(H, Dp, device="cuda")

        def video():
            nonlocal S, z
            st = dict(S=torch.zeros_like(S), z=torch.zeros_like(z),
                      kt=chunks[0]["k"][:, :0], vt=chunks[0]["v"][:, :0], fkt=chunks[0]["fk"][:, :0])
            for c in range(32):
                x = dict(chunks[c % 2])
                x.update(st)
                y, _ = attention(x, ca, 1 / math.sqrt(d))
                S2, z2, _ = state_update(x, Tn, cs)
                Nw = x["kt"].shape[1] + Nc
                lo = Nw - Tn - x["kt"].shape[1]  # the new tail lies in the chunk (Nc >= Tn)
                st = dict(S=S2, z=z2, kt=x["k"][:, lo:].contiguous(), vt=x["v"][:, lo:].contiguous(),
                          fkt=x["fk"][:, lo:].contiguous())
            return y

        video()
        ts = []
        for _ in range(5):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            video()
            b.record()
            torch.cuda.synchronize()
            ts.append(a.elapsed_time(b))
        ms = sorted(ts)[2]
        emit(time="Triton kernels alone, Wan2.1 video of 149,760 tokens (32 chunks, launched from Python)",
             ms=round(ms, 2))
        summary.append(f"Triton video (32 chunks, python launches): {ms:.2f} ms")

    print("\n== summary")
    for s in summary:
        print(s)
    print("tuned:", json.dumps({k: [v["const"], v["num_warps"], v["num_stages"]] for k, v in tuned.items()}))


if __name__ == "__main__":
    main()
