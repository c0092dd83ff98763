#!/usr/bin/env python3
"""Compile the Triton kernels of HybridAttention's float16 Hopper fast path ahead of time to PTX and
write them, with the launch metadata, into a C++ header that the CUDA op library embeds.

    python3 packages/kernels/scripts/gen-triton-ptx.py [--out HEADER] [--configs JSON] [--jobs N]

Needs Triton (the device machine's python3 has it; no GPU is needed to compile). Source:
ops/hybrid_attention/hybrid_attention_triton.py; output (committed):
ops/hybrid_attention/hybrid_attention_triton_ptx.h. The target is sm_90a (H100/H200): the C++
launcher uses these kernels only on compute capability 9.0 and falls back to the hand-written CUDA
kernels everywhere else. --configs overrides entries of CONFIGS by name (bench/triton_check.py
writes such a file from its timing sweep).

The header records, per kernel, the .entry parameter types read from the PTX. The C++ launcher
checks them against the argument list it passes (the kernel's non-constexpr arguments in order,
then Triton's trailing scratch pointers, passed as null: this script refuses kernels that need
global or profile scratch memory, clusters or cooperative launch).
"""
import argparse
import concurrent.futures as cf
import importlib.util
import json
import multiprocessing as mp
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
SRC = HERE / "ops" / "hybrid_attention" / "hybrid_attention_triton.py"
OUT = HERE / "ops" / "hybrid_attention" / "hybrid_attention_triton_ptx.h"

# name -> kernel, head dim, constexprs, num_warps, num_stages. Chosen on an H100 by
# bench/triton_check.py (bench/RESULTS.md); d = 64 and 32 are not tuned.
CONFIGS = {
    "attn_d128": dict(kernel="ha_window_attention", D=128, const=dict(BLOCK_M=128, BLOCK_N=64, BLOCK_P=32, LIN_SPLIT=1),
                      num_warps=8, num_stages=3),
    "attn_d64": dict(kernel="ha_window_attention", D=64, const=dict(BLOCK_M=128, BLOCK_N=64, BLOCK_P=32, LIN_SPLIT=1),
                     num_warps=8, num_stages=3),
    "attn_d32": dict(kernel="ha_window_attention", D=32, const=dict(BLOCK_M=64, BLOCK_N=64, BLOCK_P=32, LIN_SPLIT=1),
                     num_warps=4, num_stages=3),
    "state_d128": dict(kernel="ha_state_update", D=128, const=dict(BLOCK_P=32, BLOCK_D=64, BLOCK_K=128),
                       num_warps=4, num_stages=3),
    "state_d64": dict(kernel="ha_state_update", D=64, const=dict(BLOCK_P=64, BLOCK_D=64, BLOCK_K=64),
                      num_warps=4, num_stages=3),
    "state_d32": dict(kernel="ha_state_update", D=32, const=dict(BLOCK_P=64, BLOCK_D=32, BLOCK_K=64),
                      num_warps=4, num_stages=3),
}


def load_source():
    spec = importlib.util.spec_from_file_location("hybrid_attention_triton", SRC)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def compile_one(name, cfg):
    """-> dict(name, entry, ptx, num_warps, shared, params, ...); runs in a worker process."""
    import triton
    from triton.backends.compiler import GPUTarget

    mod = load_source()
    fn = getattr(mod, cfg["kernel"])
    attn = cfg["kernel"] == "ha_window_attention"
    sig = dict(mod.ATTN_SIGNATURE if attn else mod.STATE_SIGNATURE)
    div16 = mod.ATTN_DIV16 if attn else mod.STATE_DIV16
    constexprs = {"D": cfg["D"], **cfg["const"]}
    for k in constexprs:
        sig[k] = "constexpr"
    signature = {a: sig[a] for a in fn.arg_names}
    attrs = {(fn.arg_names.index(a),): [["tt.divisibility", 16]] for a in div16}
    src = triton.compiler.ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    target = GPUTarget("cuda", 90, 32)
    backend = triton.compiler.make_backend(target)
    options = backend.parse_options({"num_warps": cfg["num_warps"], "num_stages": cfg["num_stages"]})
    k = triton.compile(src, target=target, options=options.__dict__)
    md = k.metadata
    mdd = md._asdict() if hasattr(md, "_asdict") else dict(vars(md))
    for key in ("global_scratch_size", "profile_scratch_size"):
        if int(mdd.get(key, 0) or 0) > 0:
            raise RuntimeError(f"{name}: needs {key}={mdd[key]}: not supported by the C++ launcher")
    if int(mdd.get("num_ctas", 1) or 1) != 1 or tuple(mdd.get("cluster_dims", (1, 1, 1)) or (1, 1, 1)) not in ((1, 1, 1), (1,), ()):
        raise RuntimeError(f"{name}: clusters ({mdd.get('num_ctas')}, {mdd.get('cluster_dims')}) not supported")
    if mdd.get("launch_cooperative_grid") or mdd.get("launch_pdl"):
        raise RuntimeError(f"{name}: cooperative/PDL launch not supported")
    ptx = k.asm["ptx"]
    m = re.search(r"\.(?:visible\s+)?\.entry\s+(\w+)\s*\(([^)]*)\)", ptx)
    if not m:
        raise RuntimeError(f"{name}: no .entry in the PTX")
    entry = m.group(1)
    params = re.findall(r"\.param\s+\.(\w+)", m.group(2))
    n_args = sum(1 for a in fn.arg_names if sig[a] != "constexpr")
    want = ["u64" if sig[a].startswith("*") else ("f32" if sig[a] == "fp32" else "u32")
            for a in fn.arg_names if sig[a] != "constexpr"]
    width = {"u32": 32, "s32": 32, "b32": 32, "f32": 32, "u64": 64, "s64": 64, "b64": 64}
    if (len(params) < n_args or any(width.get(p) != width[w] for p, w in zip(params, want))
            or any(width.get(p) != 64 for p in params[n_args:])):
        raise RuntimeError(f"{name}: unexpected .entry parameters {params} (want {want} + pointers)")
    norm = want + ["u64"] * (len(params) - n_args)  # the launcher's names: widths checked above
    if ")ptx\"" in ptx:
        raise RuntimeError("PTX contains the raw-string delimiter")
    meta = {key: (list(v) if isinstance(v, tuple) else v) for key, v in mdd.items()
            if isinstance(v, (int, float, str, bool, tuple, list)) and key not in ("target",)}
    return dict(name=name, entry=entry, ptx=ptx, num_warps=int(mdd["num_warps"]), shared=int(mdd["shared"]),
                params=",".join(norm), kernel=cfg["kernel"], D=cfg["D"], const=cfg["const"],
                num_stages=cfg["num_stages"], meta=meta)


def header(results, triton_version):
    order = ["attn_d32", "attn_d64", "attn_d128", "state_d32", "state_d64", "state_d128"]
    res = {r["name"]: r for r in results}
    out = [
        "// GENERATED by packages/kernels/scripts/gen-triton-ptx.py from hybrid_attention_triton.py",
        f"// with Triton {triton_version} for sm_90a. Do not edit; regenerate (packages/kernels/README.md).",
        "// Configs: " + "; ".join(
            f"{n}: {res[n]['const']} warps={res[n]['num_warps']} stages={res[n]['num_stages']} smem={res[n]['shared']}"
            for n in order),
        "#pragma once",
        "",
        "namespace rehyat {",
        "namespace triton_ptx {",
        "",
        "struct Kernel {",
        "  const char* name;    // config name",
        "  const char* entry;   // .entry symbol",
        "  int head_dim;        // D",
        "  int num_warps;       // block = 32 * num_warps threads",
        "  int shared_bytes;    // dynamic shared memory per block",
        "  int block_m;         // attention: query rows per program; state update: D' rows of S' per program",
        "  int block_n;         // state update: columns (of d) of S' per program",
        "  const char* params;  // .entry parameter types",
        "  const char* ptx;",
        "};",
        "",
        f'inline constexpr const char* kTritonVersion = "{triton_version}";',
        "",
    ]
    for n in order:
        out.append(f'static const char kPtx_{n}[] = R"ptx({res[n]["ptx"]})ptx";')
        out.append("")
    out.append("inline constexpr Kernel kKernels[] = {")
    for n in order:
        r = res[n]
        c = r["const"]
        bm = c.get("BLOCK_M", c.get("BLOCK_P", 0))
        bn = c.get("BLOCK_D", 0)
        out.append(f'    {{"{n}", "{r["entry"]}", {r["D"]}, {r["num_warps"]}, {r["shared"]}, {bm}, {bn}, '
                   f'"{r["params"]}", kPtx_{n}}},')
    out += ["};", "", "}  // namespace triton_ptx", "}  // namespace rehyat", ""]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--configs", type=Path, help="JSON {name: {kernel, D, const, num_warps, num_stages}} overrides")
    ap.add_argument("--meta", type=Path, help="also write every kernel's Triton metadata here (JSON)")
    ap.add_argument("--jobs", type=int, default=6)
    args = ap.parse_args()
    import triton

    cfgs = {k: dict(v) for k, v in CONFIGS.items()}
    if args.configs:
        for k, v in json.loads(args.configs.read_text()).items():
            cfgs[k] = v
    with cf.ProcessPoolExecutor(max_workers=args.jobs, mp_context=mp.get_context("spawn")) as ex:
        futs = {ex.submit(compile_one, n, c): n for n, c in cfgs.items()}
        results = []
        for f in cf.as_completed(futs):
            r = f.result()
            print(f"{r['name']}: entry {r['entry']} warps {r['num_warps']} smem {r['shared']} params {r['params']} "
                  f"ptx {len(r['ptx'])} chars", flush=True)
            results.append(r)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(header(results, triton.__version__))
    if args.meta:
        # Triton's own metadata already holds num_stages (and num_warps): ours go in first, its own win
        args.meta.write_text(json.dumps({r["name"]: {"const": r["const"], "num_stages": r["num_stages"], **r["meta"]}
                                         for r in results}, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
