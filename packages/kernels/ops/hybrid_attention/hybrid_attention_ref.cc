// CPU reference kernel of ai.rehyat::HybridAttention (see hybrid_attention_op.h and
// ../../../../shared/REHYAT.md). Float32 accumulation for float and float16 inputs; parallel
// over (batch*head, blocks of query rows) on ONNX Runtime's intra-op thread pool.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "hybrid_attention_op.h"

namespace rehyat {
namespace {

constexpr int64_t kRowsPerTask = 16;

inline float Load(const void* p, int64_t i, bool half) {
  if (half) return static_cast<float>(Ort::Float16_t::FromBits(static_cast<const uint16_t*>(p)[i]));
  return static_cast<const float*>(p)[i];
}
inline void Store(void* p, int64_t i, float v, bool half) {
  if (half) static_cast<Ort::Float16_t*>(p)[i] = Ort::Float16_t(v);
  else static_cast<float*>(p)[i] = v;
}

// Window token j of head bh: tail row j when j < Nt, chunk row j - Nt otherwise.
inline int64_t WinOffset(const HaDims& D, int64_t bh, int64_t j, int64_t width, bool& from_tail) {
  from_tail = j < D.Nt;
  return from_tail ? (bh * D.Nt + j) * width : (bh * D.Nc + (j - D.Nt)) * width;
}

struct Job {
  const HaDims* D;
  const HaBuffers* b;
  int64_t row_blocks;
};

// y for rows [r0, r1) of head bh.
void AttentionRows(const HaDims& D, const HaBuffers& b, int64_t bh, int64_t r0, int64_t r1) {
  const int64_t d = D.d, Dp = D.Dp, Nw = D.Nt + D.Nc;
  const bool h = D.half;
  // the window's K and V of this head, as float
  std::vector<float> K(Nw * d), V(Nw * d), q(d), logits(Nw), acc(d), fq(Dp);
  for (int64_t j = 0; j < Nw; ++j) {
    bool tail;
    const int64_t off = WinOffset(D, bh, j, d, tail);
    const void* ks = tail ? b.k_tail : b.k;
    const void* vs = tail ? b.v_tail : b.v;
    for (int64_t c = 0; c < d; ++c) {
      K[j * d + c] = Load(ks, off + c, h);
      V[j * d + c] = Load(vs, off + c, h);
    }
  }
  const float* S = b.S + bh * Dp * d;
  const float* z = b.z + bh * Dp;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t qoff = (bh * D.Nc + r) * d;
    for (int64_t c = 0; c < d; ++c) q[c] = Load(b.q, qoff + c, h);
    float cmax = -INFINITY;
    for (int64_t j = 0; j < Nw; ++j) {
      float s = 0.f;
      const float* kj = &K[j * d];
      for (int64_t c = 0; c < d; ++c) s += q[c] * kj[c];
      logits[j] = s * D.scale;
      cmax = std::max(cmax, logits[j]);
    }
    std::fill(acc.begin(), acc.end(), 0.f);
    float nS = 0.f;
    for (int64_t j = 0; j < Nw; ++j) {
      const float p = std::exp(logits[j] - cmax);
      nS += p;
      const float* vj = &V[j * d];
      for (int64_t c = 0; c < d; ++c) acc[c] += p * vj[c];
    }
    // linear branch with the incoming state, not rescaled by exp(-c)
    const int64_t foff = (bh * D.Nc + r) * Dp;
    for (int64_t p = 0; p < Dp; ++p) fq[p] = Load(b.fq, foff + p, h);
    float nL = 0.f;
    for (int64_t p = 0; p < Dp; ++p) {
      const float f = fq[p];
      nL += f * z[p];
      const float* Sp = S + p * d;
      for (int64_t c = 0; c < d; ++c) acc[c] += f * Sp[c];
    }
    const float inv = 1.0f / (nS + nL);
    for (int64_t c = 0; c < d; ++c) Store(b.y, qoff + c, acc[c] * inv, h);
  }
}

// S', z' and the new tails of head bh.
void StateUpdate(const HaDims& D, const HaBuffers& b, int64_t bh) {
  const int64_t d = D.d, Dp = D.Dp, Tn = D.tail_out;
  const bool h = D.half;
  float* So = b.S_out + bh * Dp * d;
  float* zo = b.z_out + bh * Dp;
  std::memcpy(So, b.S + bh * Dp * d, sizeof(float) * Dp * d);
  std::memcpy(zo, b.z + bh * Dp, sizeof(float) * Dp);
  std::vector<float> fk(Dp), v(d);
  for (int64_t j = 0; j < D.leave; ++j) {  // tokens leaving the window
    bool tail;
    const int64_t foff = WinOffset(D, bh, j, Dp, tail);
    const int64_t voff = WinOffset(D, bh, j, d, tail);
    const void* fs = tail ? b.fk_tail : b.fk;
    const void* vs = tail ? b.v_tail : b.v;
    for (int64_t p = 0; p < Dp; ++p) fk[p] = Load(fs, foff + p, h);
    for (int64_t c = 0; c < d; ++c) v[c] = Load(vs, voff + c, h);
    for (int64_t p = 0; p < Dp; ++p) {
      zo[p] += fk[p];
      float* row = So + p * d;
      for (int64_t c = 0; c < d; ++c) row[c] += fk[p] * v[c];
    }
  }
  const size_t es = h ? 2 : 4;
  for (int64_t t = 0; t < Tn; ++t) {  // the last Tn window tokens become the new tail
    const int64_t j = D.leave + t;
    bool tail;
    const int64_t off = WinOffset(D, bh, j, d, tail);
    const int64_t foff = WinOffset(D, bh, j, Dp, tail);
    const char* ks = static_cast<const char*>(tail ? b.k_tail : b.k);
    const char* vs = static_cast<const char*>(tail ? b.v_tail : b.v);
    const char* fs = static_cast<const char*>(tail ? b.fk_tail : b.fk);
    std::memcpy(static_cast<char*>(b.k_tail_out) + (bh * Tn + t) * d * es, ks + off * es, d * es);
    std::memcpy(static_cast<char*>(b.v_tail_out) + (bh * Tn + t) * d * es, vs + off * es, d * es);
    std::memcpy(static_cast<char*>(b.fk_tail_out) + (bh * Tn + t) * Dp * es, fs + foff * es, Dp * es);
  }
}

}  // namespace

void ComputeCpu(Ort::KernelContext& ctx, const HaDims& D, const HaBuffers& b) {
  const int64_t BH = D.B * D.H;
  if (BH == 0) return;
  Job job{&D, &b, (D.Nc + kRowsPerTask - 1) / kRowsPerTask};
  const size_t attn_tasks = static_cast<size_t>(BH * job.row_blocks);
  if (attn_tasks > 0) {
    ctx.ParallelFor(
        [](void* u, size_t i) {
          auto* j = static_cast<Job*>(u);
          const int64_t bh = static_cast<int64_t>(i) / j->row_blocks;
          const int64_t r0 = (static_cast<int64_t>(i) % j->row_blocks) * kRowsPerTask;
          AttentionRows(*j->D, *j->b, bh, r0, std::min(r0 + kRowsPerTask, j->D->Nc));
        },
        attn_tasks, 0, &job);
  }
  ctx.ParallelFor([](void* u, size_t i) {
        auto* j = static_cast<Job*>(u);
        StateUpdate(*j->D, *j->b, static_cast<int64_t>(i));
      },
      static_cast<size_t>(BH), 0, &job);
}

}  // namespace rehyat
