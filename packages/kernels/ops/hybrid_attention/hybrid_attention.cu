// CUDA kernels of ai.rehyat::HybridAttention (math: ../../../../shared/REHYAT.md, layout:
// hybrid_attention_op.h). All work is queued on the stream ONNX Runtime hands the kernel.
//
//  ha_flash_f16<D,MT,BN>  float16, d in {32, 64, 128}: flash-style tiles (64*MT queries x BN keys
//                   per step, 4 warps, mma.sync m16n8k16 with float32 accumulators, cp.async double
//                   buffering of K/V); online softmax over the window [tail; chunk] with c = row
//                   max; epilogue fuses the linear branch (phi_q(q).S, phi_q(q).z, float32) into
//                   the one normaliser.
//  ha_generic<T>    float32 (and float16 of other d): the same math on CUDA cores, 16 queries x
//                   32 keys per step.
//  ha_state_update  S' = S + sum fk_j v_j^T, z' = z + sum fk_j over the tokens leaving the window
//                   (tokens split over blocks, float atomics into S', z' copied from S, z).
//  ha_tails         the last Tn window tokens -> k_tail', v_tail', fk_tail' (16-byte elements when
//                   every row allows).
// For float16 on compute capability 9.0 (d in {32, 64, 128}, D' % 16 == 0) the attention and the
// state update run as Triton kernels instead (hybrid_attention_triton.cc); these are the fallback.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "hybrid_attention_op.h"

namespace rehyat {
namespace {

// ------------------------------------------------------------------------------------------------
// shared helpers

template <typename T> __device__ __forceinline__ float ld(const T* p, int64_t i);
template <> __device__ __forceinline__ float ld<float>(const float* p, int64_t i) { return p[i]; }
template <> __device__ __forceinline__ float ld<__half>(const __half* p, int64_t i) { return __half2float(p[i]); }
template <typename T> __device__ __forceinline__ void st(T* p, int64_t i, float v);
template <> __device__ __forceinline__ void st<float>(float* p, int64_t i, float v) { p[i] = v; }
template <> __device__ __forceinline__ void st<__half>(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }

struct Geo {
  int Nc, Nt, Nw, d, Dp, Tn, leave;
  float scale;
};

// window row j of head bh: tail row j (j < Nt) or chunk row j - Nt
template <typename T>
__device__ __forceinline__ const T* win_row(const T* tail, const T* chunk, const Geo& g, int64_t bh, int j, int w) {
  return j < g.Nt ? tail + (bh * g.Nt + j) * (int64_t)w : chunk + (bh * g.Nc + (j - g.Nt)) * (int64_t)w;
}

// ------------------------------------------------------------------------------------------------
// float16 tensor-core kernel

constexpr int kFThreads = 128;
constexpr int kLinP = 16;  // features per step of the fused linear branch

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const int n = valid ? 16 : 0;  // 0: zero-fill
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_u32(p)));
}
// D = A(16x16, row) * B(16x8, col) + D, float16 inputs, float32 accumulators
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ float fast_exp2(float x) {  // ex2.approx: 2 ulp, exp2(-inf) = 0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// MT: 16-row m-tiles per warp (each K/V fragment read from shared memory feeds MT mma's);
// BN: keys per step. Block = 4 warps = 64*MT queries.
template <int D, int MT, int BN>
struct FlashCfg {
  static constexpr int kM = 64 * MT;
  static constexpr int kStride = D + 8;  // halves per smem row: 16-byte rows, conflict-free ldmatrix
  static constexpr int kTile = BN * kStride;
  static constexpr size_t kKV = sizeof(__half) * 4 * kTile;  // K and V, double buffered
  static constexpr size_t kEpi = sizeof(float) * (kLinP * D + kM * (kLinP + 1) + kLinP);  // reused after
  static constexpr size_t kBytes = kKV > kEpi ? kKV : kEpi;
};

template <int D, int BN>
__device__ __forceinline__ void load_kv_tile(__half* Ks, __half* Vs, const __half* k, const __half* v,
                                             const __half* kt, const __half* vt, const Geo& g, int64_t bh,
                                             int key0) {
  constexpr int kSeg = D / 8;  // 16-byte segments per row
  constexpr int kStride = D + 8;
  for (int i = threadIdx.x; i < BN * kSeg; i += kFThreads) {
    const int r = i / kSeg, s = i % kSeg, j = key0 + r;
    const bool valid = j < g.Nw;
    const __half* ks = valid ? win_row(kt, k, g, bh, j, D) + s * 8 : k;
    const __half* vs = valid ? win_row(vt, v, g, bh, j, D) + s * 8 : v;
    cp_async16(Ks + r * kStride + s * 8, ks, valid);
    cp_async16(Vs + r * kStride + s * 8, vs, valid);
  }
}

template <int D, int MT, int BN>
__global__ void __launch_bounds__(kFThreads) ha_flash_f16(const __half* __restrict__ q, const __half* __restrict__ k,
                                                          const __half* __restrict__ v, const __half* __restrict__ fq,
                                                          const float* __restrict__ S, const float* __restrict__ z,
                                                          const __half* __restrict__ kt, const __half* __restrict__ vt,
                                                          __half* __restrict__ y, Geo g) {
  using C = FlashCfg<D, MT, BN>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  constexpr int kStride = C::kStride;
  constexpr int kKS = D / 16;  // k-steps over the head dim
  constexpr int kND = D / 8;   // n-tiles over the head dim
  constexpr int kTile = C::kTile;  // buffers: K0 K1 V0 V1
  __half* sm = reinterpret_cast<__half*>(smem_raw);

  const int64_t bh = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int gr = lane / 4, tq = lane % 4;
  const int wrow0 = blockIdx.x * C::kM + warp * 16 * MT;  // this warp's first query row

  const int n_tiles = (g.Nw + BN - 1) / BN;
  load_kv_tile<D, BN>(sm, sm + 2 * kTile, k, v, kt, vt, g, bh, 0);
  cp_async_commit();

  // Q fragments (A operand), straight from global memory; rows ra = row g, rb = row g + 8
  uint32_t qf[MT][kKS][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    const int ra = wrow0 + mt * 16 + gr, rb = ra + 8;
    const uint32_t* qa = reinterpret_cast<const uint32_t*>(q + (bh * g.Nc + ra) * D);
    const uint32_t* qb = reinterpret_cast<const uint32_t*>(q + (bh * g.Nc + rb) * D);
    const bool va = ra < g.Nc, vb = rb < g.Nc;
#pragma unroll
    for (int kk = 0; kk < kKS; ++kk) {
      qf[mt][kk][0] = va ? qa[kk * 8 + tq] : 0u;
      qf[mt][kk][1] = vb ? qb[kk * 8 + tq] : 0u;
      qf[mt][kk][2] = va ? qa[kk * 8 + 4 + tq] : 0u;
      qf[mt][kk][3] = vb ? qb[kk * 8 + 4 + tq] : 0u;
    }
  }

  float o[MT][kND][4];
  float m_a[MT], m_b[MT], l_a[MT], l_b[MT];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    m_a[mt] = m_b[mt] = -INFINITY;
    l_a[mt] = l_b[mt] = 0.f;
#pragma unroll
    for (int n = 0; n < kND; ++n) o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0.f;
  }
  const float sl2 = g.scale * 1.4426950408889634f;  // logits in log2 units

  for (int t = 0; t < n_tiles; ++t) {
    const int cur = t & 1;
    if (t + 1 < n_tiles) {
      load_kv_tile<D, BN>(sm + (cur ^ 1) * kTile, sm + (2 + (cur ^ 1)) * kTile, k, v, kt, vt, g, bh, (t + 1) * BN);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const __half* Kc = sm + cur * kTile;
    const __half* Vc = sm + (2 + cur) * kTile;

    // scores: 16*MT rows x BN keys per warp
    float s[MT][BN / 8][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int n = 0; n < BN / 8; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < kKS; ++kk) {
#pragma unroll
      for (int np = 0; np < BN / 16; ++np) {
        const int mi = lane / 8, rr = lane % 8;
        const int key = np * 16 + rr + (mi >= 2 ? 8 : 0);
        const int dim = kk * 16 + (mi & 1) * 8;
        uint32_t b[4];
        ldmatrix_x4(b, Kc + key * kStride + dim);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma16816(s[mt][2 * np], qf[mt][kk], b[0], b[1]);
          mma16816(s[mt][2 * np + 1], qf[mt][kk], b[2], b[3]);
        }
      }
    }
    const int key0 = t * BN;
    uint32_t pa[MT][BN / 16][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      // mask keys past the window, scale, row max
      float mx_a = m_a[mt], mx_b = m_b[mt];
#pragma unroll
      for (int n = 0; n < BN / 8; ++n) {
        const int j0 = key0 + n * 8 + 2 * tq;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int j = j0 + (e & 1);
          s[mt][n][e] = j < g.Nw ? s[mt][n][e] * sl2 : -INFINITY;
        }
        mx_a = fmaxf(mx_a, fmaxf(s[mt][n][0], s[mt][n][1]));
        mx_b = fmaxf(mx_b, fmaxf(s[mt][n][2], s[mt][n][3]));
      }
#pragma unroll
      for (int off = 1; off <= 2; off <<= 1) {
        mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, off));
        mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, off));
      }
      const float al_a = fast_exp2(m_a[mt] - mx_a), al_b = fast_exp2(m_b[mt] - mx_b);
      m_a[mt] = mx_a;
      m_b[mt] = mx_b;
      float ps_a = 0.f, ps_b = 0.f;
#pragma unroll
      for (int n = 0; n < BN / 8; ++n) {
        s[mt][n][0] = fast_exp2(s[mt][n][0] - mx_a);
        s[mt][n][1] = fast_exp2(s[mt][n][1] - mx_a);
        s[mt][n][2] = fast_exp2(s[mt][n][2] - mx_b);
        s[mt][n][3] = fast_exp2(s[mt][n][3] - mx_b);
        ps_a += s[mt][n][0] + s[mt][n][1];
        ps_b += s[mt][n][2] + s[mt][n][3];
      }
      l_a[mt] = l_a[mt] * al_a + ps_a;  // per-thread partial sums; reduced over the quad at the end
      l_b[mt] = l_b[mt] * al_b + ps_b;
#pragma unroll
      for (int n = 0; n < kND; ++n) {
        o[mt][n][0] *= al_a;
        o[mt][n][1] *= al_a;
        o[mt][n][2] *= al_b;
        o[mt][n][3] *= al_b;
      }
#pragma unroll
      for (int kb = 0; kb < BN / 16; ++kb) {
        pa[mt][kb][0] = pack_half2(s[mt][2 * kb][0], s[mt][2 * kb][1]);
        pa[mt][kb][1] = pack_half2(s[mt][2 * kb][2], s[mt][2 * kb][3]);
        pa[mt][kb][2] = pack_half2(s[mt][2 * kb + 1][0], s[mt][2 * kb + 1][1]);
        pa[mt][kb][3] = pack_half2(s[mt][2 * kb + 1][2], s[mt][2 * kb + 1][3]);
      }
    }
    // o += P V
#pragma unroll
    for (int kb = 0; kb < BN / 16; ++kb) {
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        const int mi = lane / 8, rr = lane % 8;
        const int key = kb * 16 + rr + (mi & 1) * 8;
        const int dim = dp * 16 + (mi >> 1) * 8;
        uint32_t b[4];
        ldmatrix_x4_trans(b, Vc + key * kStride + dim);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma16816(o[mt][2 * dp], pa[mt][kb], b[0], b[1]);
          mma16816(o[mt][2 * dp + 1], pa[mt][kb], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // the buffer is refilled by the next step's prefetch
  }
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
      l_a[mt] += __shfl_xor_sync(0xffffffffu, l_a[mt], off);
      l_b[mt] += __shfl_xor_sync(0xffffffffu, l_b[mt], off);
    }

  // fused linear branch: o += fq . S, n += fq . z (float32, not rescaled by exp(-c))
  float* Ssm = reinterpret_cast<float*>(smem_raw);       // [kLinP][D]
  float* Fsm = Ssm + kLinP * D;                           // [kM][kLinP + 1]
  float* Zsm = Fsm + C::kM * (kLinP + 1);                 // [kLinP]
  const float* Sbh = S + bh * (int64_t)g.Dp * D;
  const float* zbh = z + bh * (int64_t)g.Dp;
  float nl_a[MT], nl_b[MT];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) nl_a[mt] = nl_b[mt] = 0.f;
  for (int p0 = 0; p0 < g.Dp; p0 += kLinP) {
    for (int i = threadIdx.x; i < kLinP * D; i += kFThreads) {
      const int p = p0 + i / D;
      Ssm[i] = p < g.Dp ? Sbh[(int64_t)p * D + i % D] : 0.f;
    }
    for (int i = threadIdx.x; i < C::kM * kLinP; i += kFThreads) {
      const int r = i / kLinP, p = p0 + i % kLinP, row = blockIdx.x * C::kM + r;
      Fsm[r * (kLinP + 1) + i % kLinP] =
          (p < g.Dp && row < g.Nc) ? __half2float(fq[(bh * g.Nc + row) * (int64_t)g.Dp + p]) : 0.f;
    }
    if (threadIdx.x < kLinP) Zsm[threadIdx.x] = p0 + threadIdx.x < g.Dp ? zbh[p0 + threadIdx.x] : 0.f;
    __syncthreads();
#pragma unroll 4
    for (int pp = 0; pp < kLinP; ++pp) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const int lr = warp * 16 * MT + mt * 16 + gr;  // local row of ra
        const float fa = Fsm[lr * (kLinP + 1) + pp];
        const float fb = Fsm[(lr + 8) * (kLinP + 1) + pp];
        nl_a[mt] += fa * Zsm[pp];
        nl_b[mt] += fb * Zsm[pp];
#pragma unroll
        for (int n = 0; n < kND; ++n) {
          const float2 sv = *reinterpret_cast<const float2*>(Ssm + pp * D + n * 8 + 2 * tq);
          o[mt][n][0] += fa * sv.x;
          o[mt][n][1] += fa * sv.y;
          o[mt][n][2] += fb * sv.x;
          o[mt][n][3] += fb * sv.y;
        }
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    const int ra = wrow0 + mt * 16 + gr, rb = ra + 8;
    const float inv_a = 1.f / (l_a[mt] + nl_a[mt]), inv_b = 1.f / (l_b[mt] + nl_b[mt]);
#pragma unroll
    for (int n = 0; n < kND; ++n) {
      const int c = n * 8 + 2 * tq;
      if (ra < g.Nc)
        *reinterpret_cast<__half2*>(y + (bh * g.Nc + ra) * D + c) =
            __floats2half2_rn(o[mt][n][0] * inv_a, o[mt][n][1] * inv_a);
      if (rb < g.Nc)
        *reinterpret_cast<__half2*>(y + (bh * g.Nc + rb) * D + c) =
            __floats2half2_rn(o[mt][n][2] * inv_b, o[mt][n][3] * inv_b);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// generic CUDA-core kernel (float32; float16 of other head dims)

constexpr int kGRows = 16;     // queries per block
constexpr int kGLanes = 8;     // threads per query row
constexpr int kGKeys = 32;     // keys per step
constexpr int kGThreads = kGRows * kGLanes;

template <typename T, int MAXD>
__global__ void __launch_bounds__(kGThreads) ha_generic(const T* __restrict__ q, const T* __restrict__ k,
                                                        const T* __restrict__ v, const T* __restrict__ fq,
                                                        const float* __restrict__ S, const float* __restrict__ z,
                                                        const T* __restrict__ kt, const T* __restrict__ vt,
                                                        T* __restrict__ y, Geo g) {
  extern __shared__ __align__(16) float gsm[];
  const int d = g.d, ds = d + 1;  // padded row stride
  float* Qs = gsm;                       // [kGRows][ds]
  float* Ksm = Qs + kGRows * ds;         // [kGKeys][ds]
  float* Vsm = Ksm + kGKeys * ds;        // [kGKeys][ds]
  float* Ps = Vsm + kGKeys * ds;         // [kGRows][kGKeys]
  constexpr int kCols = MAXD / kGLanes;
  const int64_t bh = blockIdx.y;
  const int r = threadIdx.x / kGLanes, l = threadIdx.x % kGLanes;
  const int row = blockIdx.x * kGRows + r;
  const bool live = row < g.Nc;
  for (int i = threadIdx.x; i < kGRows * d; i += kGThreads) {
    const int rr = i / d, c = i % d, qr = blockIdx.x * kGRows + rr;
    Qs[rr * ds + c] = qr < g.Nc ? ld(q, (bh * g.Nc + qr) * (int64_t)d + c) : 0.f;
  }
  float acc[kCols];
#pragma unroll
  for (int i = 0; i < kCols; ++i) acc[i] = 0.f;
  float m = -INFINITY, lsum = 0.f;
  for (int key0 = 0; key0 < g.Nw; key0 += kGKeys) {
    __syncthreads();
    for (int i = threadIdx.x; i < kGKeys * d; i += kGThreads) {
      const int j = key0 + i / d, c = i % d;
      float kv = 0.f, vv = 0.f;
      if (j < g.Nw) {
        kv = ld(win_row(kt, k, g, bh, j, d), c);
        vv = ld(win_row(vt, v, g, bh, j, d), c);
      }
      Ksm[(i / d) * ds + c] = kv;
      Vsm[(i / d) * ds + c] = vv;
    }
    __syncthreads();
    float sc[kGKeys / kGLanes];
    float tmax = -INFINITY;
#pragma unroll
    for (int u = 0; u < kGKeys / kGLanes; ++u) {
      const int jj = l + u * kGLanes;
      float dot = 0.f;
      for (int c = 0; c < d; ++c) dot += Qs[r * ds + c] * Ksm[jj * ds + c];
      sc[u] = key0 + jj < g.Nw ? dot * g.scale : -INFINITY;
      tmax = fmaxf(tmax, sc[u]);
    }
#pragma unroll
    for (int off = 1; off < kGLanes; off <<= 1) tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, off));
    const float mn = fmaxf(m, tmax);
    const float alpha = expf(m - mn);
    float ps = 0.f;
#pragma unroll
    for (int u = 0; u < kGKeys / kGLanes; ++u) {
      const float p = expf(sc[u] - mn);
      Ps[r * kGKeys + l + u * kGLanes] = p;
      ps += p;
    }
#pragma unroll
    for (int off = 1; off < kGLanes; off <<= 1) ps += __shfl_xor_sync(0xffffffffu, ps, off);
    lsum = lsum * alpha + ps;
    m = mn;
    __syncwarp();
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int c = l + i * kGLanes;
      if (c < d) {
        float a = acc[i] * alpha;
        for (int jj = 0; jj < kGKeys; ++jj) a += Ps[r * kGKeys + jj] * Vsm[jj * ds + c];
        acc[i] = a;
      }
    }
  }
  if (!live) return;
  // linear branch with the incoming state
  const float* Sbh = S + bh * (int64_t)g.Dp * d;
  const float* zbh = z + bh * (int64_t)g.Dp;
  const T* fr = fq + (bh * g.Nc + row) * (int64_t)g.Dp;
  float nl = 0.f;
  for (int p = 0; p < g.Dp; ++p) {
    const float f = ld(fr, p);
    nl += f * zbh[p];
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int c = l + i * kGLanes;
      if (c < d) acc[i] += f * Sbh[(int64_t)p * d + c];
    }
  }
  const float inv = 1.f / (lsum + nl);
#pragma unroll
  for (int i = 0; i < kCols; ++i) {
    const int c = l + i * kGLanes;
    if (c < d) st(y, (bh * g.Nc + row) * (int64_t)d + c, acc[i] * inv);
  }
}

// ------------------------------------------------------------------------------------------------
// state update: S' = S + sum_{j < leave} fk_j v_j^T, z' = z + sum_{j < leave} fk_j

constexpr int kUT = 32;  // S' tile: 32 features x 32 dims, 256 threads x 4 outputs
// The leaving tokens are split over blockIdx.z / BH blocks so that the grid fills the GPU; each
// block adds its partial sums into S', z' (initialised to S, z) with float atomics.
template <typename T>
__global__ void __launch_bounds__(256) ha_state_update(const T* __restrict__ v, const T* __restrict__ fk,
                                                       const T* __restrict__ vt, const T* __restrict__ fkt,
                                                       float* __restrict__ So, float* __restrict__ zo, Geo g,
                                                       int64_t BH, int per_split) {
  __shared__ float F[kUT][kUT + 1];
  __shared__ float V[kUT][kUT + 1];
  const int64_t bh = blockIdx.z % BH;
  const int j_begin = static_cast<int>(blockIdx.z / BH) * per_split;
  const int j_end = min(g.leave, j_begin + per_split);
  const int p0 = blockIdx.x * kUT, c0 = blockIdx.y * kUT;
  const int tc = threadIdx.x % kUT, tp = threadIdx.x / kUT;  // tp in [0, 8): features tp, tp+8, ...
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  float zacc = 0.f;
  const bool zthread = blockIdx.y == 0 && threadIdx.x < kUT;
  for (int j0 = j_begin; j0 < j_end; j0 += kUT) {
    for (int i = threadIdx.x; i < kUT * kUT; i += 256) {
      const int jj = i / kUT, x = i % kUT, j = j0 + jj;
      const bool ok = j < j_end;
      F[jj][x] = ok && p0 + x < g.Dp ? ld(win_row(fkt, fk, g, bh, j, g.Dp), p0 + x) : 0.f;
      V[jj][x] = ok && c0 + x < g.d ? ld(win_row(vt, v, g, bh, j, g.d), c0 + x) : 0.f;
    }
    __syncthreads();
#pragma unroll 8
    for (int jj = 0; jj < kUT; ++jj) {
      const float vv = V[jj][tc];
#pragma unroll
      for (int u = 0; u < 4; ++u) acc[u] += F[jj][tp + 8 * u] * vv;
      if (zthread) zacc += F[jj][threadIdx.x];
    }
    __syncthreads();
  }
  const int c = c0 + tc;
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    const int p = p0 + tp + 8 * u;
    if (p < g.Dp && c < g.d) atomicAdd(So + (bh * g.Dp + p) * (int64_t)g.d + c, acc[u]);
  }
  if (zthread && p0 + (int)threadIdx.x < g.Dp) atomicAdd(zo + bh * g.Dp + p0 + threadIdx.x, zacc);
}

template <typename T>
cudaError_t LaunchStateUpdate(const HaBuffers& b, const Geo& g, int64_t BH, cudaStream_t s) {
  cudaError_t e = cudaMemcpyAsync(b.S_out, b.S, sizeof(float) * BH * g.Dp * g.d, cudaMemcpyDeviceToDevice, s);
  if (!e) e = cudaMemcpyAsync(b.z_out, b.z, sizeof(float) * BH * g.Dp, cudaMemcpyDeviceToDevice, s);
  if (e || g.leave == 0) return e;
  int dev = 0, sms = 132;
  if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  const int64_t tiles = ((g.Dp + kUT - 1) / kUT) * ((g.d + kUT - 1) / kUT) * BH;
  int64_t splits = (2 * sms + tiles - 1) / tiles;                        // about two waves of blocks
  splits = std::max<int64_t>(1, std::min<int64_t>(splits, (g.leave + 127) / 128));  // >= 128 tokens each
  if (BH * splits > 65535) splits = std::max<int64_t>(1, 65535 / BH);
  const int per_split = static_cast<int>((g.leave + splits - 1) / splits);
  splits = (g.leave + per_split - 1) / per_split;
  dim3 grid((unsigned)((g.Dp + kUT - 1) / kUT), (unsigned)((g.d + kUT - 1) / kUT), (unsigned)(BH * splits));
  ha_state_update<T><<<grid, 256, 0, s>>>((const T*)b.v, (const T*)b.fk, (const T*)b.v_tail, (const T*)b.fk_tail,
                                          b.S_out, b.z_out, g, BH, per_split);
  return cudaGetLastError();
}

// the last Tn window tokens become the new tails
template <typename T>
__global__ void ha_tails(const T* __restrict__ k, const T* __restrict__ v, const T* __restrict__ fk,
                         const T* __restrict__ kt, const T* __restrict__ vt, const T* __restrict__ fkt,
                         T* __restrict__ ko, T* __restrict__ vo, T* __restrict__ fko, Geo g, int64_t BH) {
  const int w = 2 * g.d + g.Dp;
  const int64_t total = BH * g.Tn * (int64_t)w;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int e = static_cast<int>(i % w);
    const int64_t tok = i / w;  // bh * Tn + t
    const int64_t bh = tok / g.Tn;
    const int t = static_cast<int>(tok % g.Tn), j = g.leave + t;
    if (e < g.d) ko[tok * g.d + e] = win_row(kt, k, g, bh, j, g.d)[e];
    else if (e < 2 * g.d) vo[tok * g.d + e - g.d] = win_row(vt, v, g, bh, j, g.d)[e - g.d];
    else fko[tok * g.Dp + e - 2 * g.d] = win_row(fkt, fk, g, bh, j, g.Dp)[e - 2 * g.d];
  }
}

// ------------------------------------------------------------------------------------------------

template <int D, int MT, int BN>
cudaError_t LaunchFlashCfg(const HaBuffers& b, const Geo& g, int64_t BH, cudaStream_t s) {
  using C = FlashCfg<D, MT, BN>;
  const size_t smem = C::kBytes;
  cudaError_t e = cudaFuncSetAttribute(ha_flash_f16<D, MT, BN>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (e) return e;
  dim3 grid((g.Nc + C::kM - 1) / C::kM, (unsigned)BH);
  ha_flash_f16<D, MT, BN><<<grid, kFThreads, smem, s>>>(
      (const __half*)b.q, (const __half*)b.k, (const __half*)b.v, (const __half*)b.fq, b.S, b.z,
      (const __half*)b.k_tail, (const __half*)b.v_tail, (__half*)b.y, g);
  return cudaGetLastError();
}

// Tile shape of the float16 kernel. 128x32: 32 query rows per warp (each K/V fragment read from
// shared memory feeds two mma's), 32 keys per step; 64x64: 16 rows per warp, 64 keys per step.
// Default: 128x32 for d = 128 (9% faster on the H100, bench/RESULTS.md), 64x64 below (the small
// chunks of d = 32 ran faster with it). REHYAT_FLASH_TILE=128x32|64x64 forces one.
inline int TileOverride() {  // 0: default, 1: 64x64, 2: 128x32
  static const int v = [] {
    const char* t = std::getenv("REHYAT_FLASH_TILE");
    if (!t) return 0;
    return std::string(t) == "128x32" ? 2 : std::string(t) == "64x64" ? 1 : 0;
  }();
  return v;
}

template <int D>
cudaError_t LaunchFlash(const HaBuffers& b, const Geo& g, int64_t BH, cudaStream_t s) {
  const int o = TileOverride();
  const bool wide = o == 2 || (o == 0 && D == 128);
  return wide ? LaunchFlashCfg<D, 2, 32>(b, g, BH, s) : LaunchFlashCfg<D, 1, 64>(b, g, BH, s);
}

template <typename T, int MAXD>
cudaError_t LaunchGeneric(const HaBuffers& b, const Geo& g, int64_t BH, cudaStream_t s) {
  const size_t smem = sizeof(float) * ((kGRows + 2 * kGKeys) * (g.d + 1) + kGRows * kGKeys);
  cudaError_t e = cudaFuncSetAttribute(ha_generic<T, MAXD>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (e) return e;
  dim3 grid((g.Nc + kGRows - 1) / kGRows, (unsigned)BH);
  ha_generic<T, MAXD><<<grid, kGThreads, smem, s>>>((const T*)b.q, (const T*)b.k, (const T*)b.v, (const T*)b.fq, b.S,
                                                     b.z, (const T*)b.k_tail, (const T*)b.v_tail, (T*)b.y, g);
  return cudaGetLastError();
}

template <typename T>
cudaError_t LaunchAll(const HaDims& D, const HaBuffers& b, cudaStream_t s) {
  const int64_t BH = D.B * D.H;
  Geo g{(int)D.Nc, (int)D.Nt, (int)(D.Nt + D.Nc), (int)D.d, (int)D.Dp, (int)D.tail_out, (int)D.leave, D.scale};
  cudaError_t e = cudaSuccess;
  constexpr bool half = sizeof(T) == 2;
  // float16 on an H100/H200: the Triton kernels (hybrid_attention_triton.cc) when they apply
  int tr = half ? TritonAttention(D, b, s) : kTritonNotUsed;
  if (tr > 0) return static_cast<cudaError_t>(tr);
  if (D.Nc > 0 && tr == kTritonNotUsed) {
    if (half && D.d == 128) e = LaunchFlash<128>(b, g, BH, s);
    else if (half && D.d == 64) e = LaunchFlash<64>(b, g, BH, s);
    else if (half && D.d == 32) e = LaunchFlash<32>(b, g, BH, s);
    else if (D.d <= 64) e = LaunchGeneric<T, 64>(b, g, BH, s);
    else if (D.d <= 128) e = LaunchGeneric<T, 128>(b, g, BH, s);
    else if (D.d <= 256) e = LaunchGeneric<T, 256>(b, g, BH, s);
    else return cudaErrorInvalidValue;
    if (e) return e;
  }
  tr = half ? TritonStateUpdate(D, b, s) : kTritonNotUsed;
  if (tr > 0) return static_cast<cudaError_t>(tr);
  if (tr == kTritonNotUsed && (e = LaunchStateUpdate<T>(b, g, BH, s))) return e;
  auto a16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (D.tail_out > 0 && half && D.d % 8 == 0 && D.Dp % 8 == 0 && a16(b.k) && a16(b.v) && a16(b.fk) &&
      a16(b.k_tail) && a16(b.v_tail) && a16(b.fk_tail) && a16(b.k_tail_out) && a16(b.v_tail_out) &&
      a16(b.fk_tail_out)) {
    // 16-byte copies (the rows of every tensor are multiples of 16 bytes)
    Geo gv = g;
    gv.d /= 8;
    gv.Dp /= 8;
    const int64_t total = BH * D.tail_out * (2 * gv.d + gv.Dp);
    const unsigned blocks = (unsigned)std::min<int64_t>((total + 255) / 256, 4096);
    ha_tails<uint4><<<blocks, 256, 0, s>>>((const uint4*)b.k, (const uint4*)b.v, (const uint4*)b.fk,
                                           (const uint4*)b.k_tail, (const uint4*)b.v_tail, (const uint4*)b.fk_tail,
                                           (uint4*)b.k_tail_out, (uint4*)b.v_tail_out, (uint4*)b.fk_tail_out, gv, BH);
    if ((e = cudaGetLastError())) return e;
  } else if (D.tail_out > 0) {
    const int64_t total = BH * D.tail_out * (2 * D.d + D.Dp);
    const unsigned blocks = (unsigned)std::min<int64_t>((total + 255) / 256, 4096);
    ha_tails<T><<<blocks, 256, 0, s>>>((const T*)b.k, (const T*)b.v, (const T*)b.fk, (const T*)b.k_tail,
                                       (const T*)b.v_tail, (const T*)b.fk_tail, (T*)b.k_tail_out, (T*)b.v_tail_out,
                                       (T*)b.fk_tail_out, g, BH);
    if ((e = cudaGetLastError())) return e;
  }
  return cudaSuccess;
}

}  // namespace

int LaunchCuda(const HaDims& D, const HaBuffers& b, void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const int64_t BH = D.B * D.H;
  if (BH == 0) return 0;
  if (BH > 65535) return cudaErrorInvalidConfiguration;  // grid.y / grid.z limit
  static const bool poison = std::getenv("REHYAT_CUDA_POISON") != nullptr;
  if (poison) {  // test aid: every output starts as NaN, so unwritten elements show
    const size_t es = D.half ? 2 : 4;
    auto fill = [&](void* p, size_t bytes) {
      if (bytes > 0) cudaMemsetAsync(p, 0xff, bytes, s);
    };
    fill(b.y, BH * D.Nc * D.d * es);
    fill(b.S_out, BH * D.Dp * D.d * 4);
    fill(b.z_out, BH * D.Dp * 4);
    fill(b.k_tail_out, BH * D.tail_out * D.d * es);
    fill(b.v_tail_out, BH * D.tail_out * D.d * es);
    fill(b.fk_tail_out, BH * D.tail_out * D.Dp * es);
    if (cudaError_t e = cudaGetLastError()) return static_cast<int>(e);
  }
  return static_cast<int>(D.half ? LaunchAll<__half>(D, b, s) : LaunchAll<float>(D, b, s));
}

const char* CudaErrorString(int err) {
  return err >= kTritonDriverError ? TritonErrorString(err) : cudaGetErrorString(static_cast<cudaError_t>(err));
}

}  // namespace rehyat
