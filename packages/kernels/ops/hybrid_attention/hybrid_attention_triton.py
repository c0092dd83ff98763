"""Triton source of the float16 Hopper fast path of ai.rehyat::HybridAttention.

Math: ../../../../shared/REHYAT.md (binding); layout: hybrid_attention_op.h. Tensors are contiguous
[B*H, rows, cols]: q, k, v [BH, Nc, D]; fq, fk [BH, Nc, Dp]; k_tail, v_tail [BH, Nt, D];
fk_tail [BH, Nt, Dp]; S [BH, Dp, D] and z [BH, Dp] float32.

These kernels are compiled AHEAD OF TIME to PTX by scripts/gen-triton-ptx.py (the PTX is committed in
hybrid_attention_triton_ptx.h) and launched from C++ (hybrid_attention_triton.cc) through the CUDA
driver API; the argument order below is that ABI: change it only together with the C++ launcher.
bench/triton_check.py runs them from Python (JIT) against a float64 reference.

ha_window_attention  one program = BLOCK_M query rows of one head. Online softmax (exp2 units) over
                     the window [tail; chunk] (two key loops, only the last block of each masked),
                     c = the final row max; the epilogue adds the linear branch fq.S (float32 S on
                     tensor cores as tf32 hi + lo, i.e. about float32 accuracy) and fq.z, then divides
                     by the one normaliser nS + nL. The linear branch is NOT rescaled by exp(-c).
ha_state_update      S' = S + fk_leave^T v_leave, z' = z + sum fk_leave over the first `leave` window
                     tokens (the ones leaving the window), float16 products on tensor cores with float32
                     accumulators; one program = a BLOCK_P x BLOCK_D tile of S' of one head, looping
                     over all leaving tokens (deterministic, no atomics).
"""
import triton
import triton.language as tl


@triton.jit
def _window_step(acc, m_i, l_i, q, k_ptrs, v_ptrs, key_ok, qk_scale, MASKED: tl.constexpr):
    if MASKED:
        k = tl.load(k_ptrs, mask=key_ok[:, None], other=0.0)
        v = tl.load(v_ptrs, mask=key_ok[:, None], other=0.0)
    else:
        k = tl.load(k_ptrs)
        v = tl.load(v_ptrs)
    qk = tl.dot(q, tl.trans(k))
    if MASKED:
        qk = tl.where(key_ok[None, :], qk, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
    p = tl.math.exp2(qk * qk_scale - m_new[:, None])
    alpha = tl.math.exp2(m_i - m_new)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    acc = tl.dot(p.to(tl.float16), v, acc)
    return acc, m_new, l_i


@triton.jit
def _window_segment(acc, m_i, l_i, q, k_base, v_base, n_keys, qk_scale, offs_n, offs_d,
                    D: tl.constexpr, BLOCK_N: tl.constexpr):
    # the keys [0, n_keys) of one segment (tail or chunk) of the window
    n_full = (n_keys // BLOCK_N) * BLOCK_N
    for start in range(0, n_full, BLOCK_N):
        rows = start + offs_n
        off = rows[:, None] * D + offs_d[None, :]
        acc, m_i, l_i = _window_step(acc, m_i, l_i, q, k_base + off, v_base + off, rows < n_keys, qk_scale, False)
    if n_full < n_keys:
        rows = n_full + offs_n
        off = rows[:, None] * D + offs_d[None, :]
        acc, m_i, l_i = _window_step(acc, m_i, l_i, q, k_base + off, v_base + off, rows < n_keys, qk_scale, True)
    return acc, m_i, l_i


@triton.jit(do_not_specialize=["Nc", "Nt"])
def ha_window_attention(Q, K, V, KT, VT, FQ, S, Z, Y, Nc, Nt, Dp, qk_scale,
                        D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                        BLOCK_P: tl.constexpr, LIN_SPLIT: tl.constexpr):
    """y for BLOCK_M query rows of head program_id(1); qk_scale = scale * log2(e)."""
    pid_m = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D)
    row_ok = offs_m < Nc
    q = tl.load(Q + bh * Nc * D + offs_m[:, None] * D + offs_d[None, :], mask=row_ok[:, None], other=0.0)

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, D], tl.float32)
    acc, m_i, l_i = _window_segment(acc, m_i, l_i, q, KT + bh * Nt * D, VT + bh * Nt * D, Nt, qk_scale,
                                    offs_n, offs_d, D, BLOCK_N)
    acc, m_i, l_i = _window_segment(acc, m_i, l_i, q, K + bh * Nc * D, V + bh * Nc * D, Nc, qk_scale,
                                    offs_n, offs_d, D, BLOCK_N)

    # linear branch with the incoming state: acc += fq.S, nL = fq.z (float32 S and z)
    n_l = tl.zeros([BLOCK_M], tl.float32)
    fq_base = FQ + bh * Nc * Dp
    s_base = S + bh * Dp * D
    z_base = Z + bh * Dp
    for p0 in range(0, Dp, BLOCK_P):
        offs_p = p0 + tl.arange(0, BLOCK_P)
        p_ok = offs_p < Dp
        fq = tl.load(fq_base + offs_m[:, None] * Dp + offs_p[None, :], mask=row_ok[:, None] & p_ok[None, :],
                     other=0.0).to(tl.float32)
        s = tl.load(s_base + offs_p[:, None] * D + offs_d[None, :], mask=p_ok[:, None], other=0.0)
        zz = tl.load(z_base + offs_p, mask=p_ok, other=0.0)
        n_l += tl.sum(fq * zz[None, :], 1)
        if LIN_SPLIT:
            # fq (float16) is exact in tf32; S = hi + lo with hi = S truncated to tf32's 10 mantissa
            # bits, so two tf32 products give S to about 2^-21 relative
            s_hi = (s.to(tl.int32, bitcast=True) & -8192).to(tl.float32, bitcast=True)
            acc = tl.dot(fq, s_hi, acc, input_precision="tf32")
            acc = tl.dot(fq, s - s_hi, acc, input_precision="tf32")
        else:
            acc = tl.dot(fq, s, acc, input_precision="tf32")
    y = acc / (l_i + n_l)[:, None]
    tl.store(Y + bh * Nc * D + offs_m[:, None] * D + offs_d[None, :], y.to(tl.float16), mask=row_ok[:, None])


@triton.jit
def _state_segment(acc, zacc, fk_base, v_base, n_tok, Dp, offs_k, offs_p, p_ok, offs_d,
                   D: tl.constexpr, BLOCK_K: tl.constexpr):
    for j0 in range(0, n_tok, BLOCK_K):
        rows = j0 + offs_k
        ok = rows < n_tok
        f = tl.load(fk_base + rows[:, None] * Dp + offs_p[None, :], mask=ok[:, None] & p_ok[None, :], other=0.0)
        v = tl.load(v_base + rows[:, None] * D + offs_d[None, :], mask=ok[:, None], other=0.0)
        acc = tl.dot(tl.trans(f), v, acc)
        zacc += tl.sum(f.to(tl.float32), 0)
    return acc, zacc


@triton.jit(do_not_specialize=["Nc", "Nt", "leave"])
def ha_state_update(V, FK, VT, FKT, S, Z, SO, ZO, Nc, Nt, Dp, leave,
                    D: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_K: tl.constexpr):
    """S'[p, c] = S[p, c] + sum_{j < leave} fk_j[p] v_j[c] for one BLOCK_P x BLOCK_D tile of head
    program_id(2); the programs with program_id(1) == 0 also write z'."""
    pid_p = tl.program_id(0)
    pid_d = tl.program_id(1)
    bh = tl.program_id(2).to(tl.int64)
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_k = tl.arange(0, BLOCK_K)
    p_ok = offs_p < Dp
    acc = tl.zeros([BLOCK_P, BLOCK_D], tl.float32)
    zacc = tl.zeros([BLOCK_P], tl.float32)
    n_tail = tl.minimum(Nt, leave)  # window tokens [0, Nt) are the tail, [Nt, Nt + Nc) the chunk
    acc, zacc = _state_segment(acc, zacc, FKT + bh * Nt * Dp, VT + bh * Nt * D, n_tail, Dp, offs_k, offs_p, p_ok,
                               offs_d, D, BLOCK_K)
    acc, zacc = _state_segment(acc, zacc, FK + bh * Nc * Dp, V + bh * Nc * D, leave - n_tail, Dp, offs_k, offs_p,
                               p_ok, offs_d, D, BLOCK_K)
    s_off = bh * Dp * D + offs_p[:, None] * D + offs_d[None, :]
    s = tl.load(S + s_off, mask=p_ok[:, None], other=0.0)
    tl.store(SO + s_off, s + acc, mask=p_ok[:, None])
    if pid_d == 0:
        z = tl.load(Z + bh * Dp + offs_p, mask=p_ok, other=0.0)
        tl.store(ZO + bh * Dp + offs_p, z + zacc, mask=p_ok)


# Signatures for ahead-of-time compilation (argument name -> Triton type); every pointer and Dp are
# compiled as multiples of 16 (the C++ launcher checks Dp % 16 == 0; ORT's buffers are 256-aligned).
ATTN_SIGNATURE = {
    "Q": "*fp16", "K": "*fp16", "V": "*fp16", "KT": "*fp16", "VT": "*fp16", "FQ": "*fp16",
    "S": "*fp32", "Z": "*fp32", "Y": "*fp16", "Nc": "i32", "Nt": "i32", "Dp": "i32", "qk_scale": "fp32",
}
ATTN_DIV16 = ["Q", "K", "V", "KT", "VT", "FQ", "S", "Z", "Y", "Dp"]
STATE_SIGNATURE = {
    "V": "*fp16", "FK": "*fp16", "VT": "*fp16", "FKT": "*fp16", "S": "*fp32", "Z": "*fp32",
    "SO": "*fp32", "ZO": "*fp32", "Nc": "i32", "Nt": "i32", "Dp": "i32", "leave": "i32",
}
STATE_DIV16 = ["V", "FK", "VT", "FKT", "S", "Z", "SO", "ZO", "Dp"]
