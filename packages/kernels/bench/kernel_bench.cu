// Times the CUDA kernels of HybridAttention without ONNX Runtime (one chunk, float16, random
// data), to split a chunk's time between the attention kernel and the state update, for both
// float16 paths: the hand-written CUDA kernels and the Triton kernels (hybrid_attention_triton.cc,
// used where they apply), and checks that the two paths agree on y, S', z' and the tails (every
// output poisoned with NaN first).
// Build: nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -I<ort headers> -I. \
//          -DREHYAT_WITH_CUDA bench/kernel_bench.cu -o build/kernel_bench      (scripts/build.sh does it)
// Run:   build/kernel_bench
#include "../ops/hybrid_attention/hybrid_attention.cu"

#include <cstdio>
#include <vector>

using namespace rehyat;

#define CK(x)                                                                       \
  do {                                                                              \
    cudaError_t e_ = (x);                                                           \
    if (e_) {                                                                       \
      std::printf("%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

__global__ void fill_half(__half* p, size_t n, uint32_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t x = (uint32_t)i * 2654435761u ^ seed;
    x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
    p[i] = __float2half(lo + (hi - lo) * (x & 0xffffff) / 16777216.f);
  }
}

struct Case {
  const char* name;
  int H, Nc, Nt, d, Dp, tail;
};

template <typename F>
float time_ms(F f, cudaStream_t s, int reps) {
  for (int i = 0; i < 3; ++i) f();
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  CK(cudaEventRecord(a, s));
  for (int i = 0; i < reps; ++i) f();
  CK(cudaEventRecord(b, s));
  CK(cudaEventSynchronize(b));
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, a, b));
  return ms / reps;
}

__global__ void fill_float(float* p, size_t n, uint32_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t x = (uint32_t)i * 2654435761u ^ seed;
    x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
    p[i] = lo + (hi - lo) * (x & 0xffffff) / 16777216.f;
  }
}

// relRms and maxAbs of a against e (host copies), NaN flagged
template <typename T>
void compare(const char* what, const std::vector<T>& a, const std::vector<T>& e) {
  auto f = [](T x) -> double {
    if constexpr (sizeof(T) == 2) return __half2float(x); else return x;
  };
  double num = 0, den = 0, mx = 0;
  size_t nan = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = f(a[i]), y = f(e[i]);
    if (x != x || y != y) { ++nan; continue; }
    num += (x - y) * (x - y);
    den += y * y;
    mx = std::max(mx, std::fabs(x - y));
  }
  std::printf("    %-6s triton vs CUDA kernels: relRms %.2e maxAbs %.2e%s\n", what, den > 0 ? std::sqrt(num / den) : std::sqrt(num),
              mx, nan ? " NaN!" : "");
}

int main() {
  const Case cases[] = {{"Wan2.1 chunk (12x128, Nc 4680, Nt 1560, D' 128)", 12, 4680, 1560, 128, 128, 1560},
                        {"Wan2.1 first chunk (Nt 0)", 12, 4680, 0, 128, 128, 1560},
                        {"d=64 chunk (12x64, Nc 4680, Nt 1560, D' 64)", 12, 4680, 1560, 64, 64, 1560},
                        {"ours chunk (4x32, Nc 128, Nt 64, D' 32)", 4, 128, 64, 32, 32, 64}};
  cudaStream_t s;
  CK(cudaStreamCreate(&s));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s, %d SMs, Triton PTX built in: %s\n", prop.name, prop.multiProcessorCount, TritonBuilt() ? "yes" : "no");
  double video_old = 0, video_new = 0;
  for (const Case& c : cases) {
    const int64_t BH = c.H;
    HaDims D;
    D.B = 1; D.H = c.H; D.Nc = c.Nc; D.d = c.d; D.Dp = c.Dp; D.Nt = c.Nt;
    D.tail_out = std::min<int64_t>(c.tail, c.Nt + c.Nc);
    D.leave = c.Nt + c.Nc - D.tail_out;
    D.scale = 1.f / std::sqrt((float)c.d);
    D.half = true;
    auto hal = [&](int64_t n, float lo, float hi, uint32_t seed) {
      __half* p;
      CK(cudaMalloc(&p, std::max<int64_t>(n, 1) * 2));
      fill_half<<<1024, 256, 0, s>>>(p, n, seed, lo, hi);
      return p;
    };
    auto f32 = [&](int64_t n, float lo, float hi, uint32_t seed) {
      float* p;
      CK(cudaMalloc(&p, std::max<int64_t>(n, 1) * 4));
      fill_float<<<1024, 256, 0, s>>>(p, n, seed, lo, hi);
      return p;
    };
    HaBuffers b;
    b.q = hal(BH * c.Nc * c.d, -1, 1, 1); b.k = hal(BH * c.Nc * c.d, -1, 1, 2); b.v = hal(BH * c.Nc * c.d, -1, 1, 3);
    b.fq = hal(BH * c.Nc * c.Dp, 0.01f, 0.1f, 4); b.fk = hal(BH * c.Nc * c.Dp, 0.01f, 0.1f, 5);
    b.k_tail = hal(BH * c.Nt * c.d, -1, 1, 6); b.v_tail = hal(BH * c.Nt * c.d, -1, 1, 7);
    b.fk_tail = hal(BH * c.Nt * c.Dp, 0.01f, 0.1f, 8);
    // a state as after ~100 chunks: S entries of +-30, z up to 2000
    b.S = f32(BH * c.Dp * c.d, -30, 30, 13); b.z = f32(BH * c.Dp, 500, 2000, 14);
    b.y = hal(BH * c.Nc * c.d, 0, 0, 9); b.S_out = f32(BH * c.Dp * c.d, 0, 0, 15); b.z_out = f32(BH * c.Dp, 0, 0, 16);
    b.k_tail_out = hal(BH * D.tail_out * c.d, 0, 0, 10); b.v_tail_out = hal(BH * D.tail_out * c.d, 0, 0, 11);
    b.fk_tail_out = hal(BH * D.tail_out * c.Dp, 0, 0, 12);
    Geo g{(int)D.Nc, (int)D.Nt, (int)(D.Nt + D.Nc), (int)D.d, (int)D.Dp, (int)D.tail_out, (int)D.leave, D.scale};
    const int reps = 20;
    auto attn = [&](bool wide) {
      if (c.d == 128) return wide ? LaunchFlashCfg<128, 2, 32>(b, g, BH, s) : LaunchFlashCfg<128, 1, 64>(b, g, BH, s);
      if (c.d == 64) return wide ? LaunchFlashCfg<64, 2, 32>(b, g, BH, s) : LaunchFlashCfg<64, 1, 64>(b, g, BH, s);
      return wide ? LaunchFlashCfg<32, 2, 32>(b, g, BH, s) : LaunchFlashCfg<32, 1, 64>(b, g, BH, s);
    };
    const size_t ny = BH * c.Nc * c.d, nS = BH * c.Dp * c.d, nz = BH * c.Dp, nt = BH * D.tail_out * (2 * c.d + c.Dp);
    struct Out { std::vector<__half> y, kt, vt, fkt; std::vector<float> S, z; };
    auto run_path = [&](int mode, Out& o) {
      SetTritonEnabled(mode);
      CK(cudaMemsetAsync(b.y, 0xff, ny * 2, s));
      CK(cudaMemsetAsync(b.S_out, 0xff, nS * 4, s));
      CK(cudaMemsetAsync(b.z_out, 0xff, nz * 4, s));
      CK(cudaMemsetAsync(b.k_tail_out, 0xff, BH * D.tail_out * c.d * 2, s));
      CK(cudaMemsetAsync(b.v_tail_out, 0xff, BH * D.tail_out * c.d * 2, s));
      CK(cudaMemsetAsync(b.fk_tail_out, 0xff, BH * D.tail_out * c.Dp * 2, s));
      CK((cudaError_t)LaunchCuda(D, b, s));
      o.y.resize(ny); o.S.resize(nS); o.z.resize(nz);
      o.kt.resize(BH * D.tail_out * c.d); o.vt.resize(BH * D.tail_out * c.d); o.fkt.resize(BH * D.tail_out * c.Dp);
      CK(cudaMemcpyAsync(o.y.data(), b.y, ny * 2, cudaMemcpyDeviceToHost, s));
      CK(cudaMemcpyAsync(o.S.data(), b.S_out, nS * 4, cudaMemcpyDeviceToHost, s));
      CK(cudaMemcpyAsync(o.z.data(), b.z_out, nz * 4, cudaMemcpyDeviceToHost, s));
      CK(cudaMemcpyAsync(o.kt.data(), b.k_tail_out, o.kt.size() * 2, cudaMemcpyDeviceToHost, s));
      CK(cudaMemcpyAsync(o.vt.data(), b.v_tail_out, o.vt.size() * 2, cudaMemcpyDeviceToHost, s));
      CK(cudaMemcpyAsync(o.fkt.data(), b.fk_tail_out, o.fkt.size() * 2, cudaMemcpyDeviceToHost, s));
      CK(cudaStreamSynchronize(s));
    };
    std::printf("%s\n", c.name);
    Out o_old, o_new;
    run_path(0, o_old);
    run_path(1, o_new);
    const bool tr_used = TritonAttention(D, b, s) != kTritonNotUsed;
    CK(cudaStreamSynchronize(s));
    std::printf("    Triton path used: %s\n", tr_used ? "yes" : "no");
    compare("y", o_new.y, o_old.y);
    compare("S'", o_new.S, o_old.S);
    compare("z'", o_new.z, o_old.z);
    compare("k_tail'", o_new.kt, o_old.kt);
    compare("v_tail'", o_new.vt, o_old.vt);
    compare("fk_tail'", o_new.fkt, o_old.fkt);
    (void)nt;
    SetTritonEnabled(1);
    const float t_attn = time_ms([&] { CK(attn(false)); }, s, reps);
    const float t_attn_w = time_ms([&] { CK(attn(true)); }, s, reps);
    const float t_attn_t = tr_used ? time_ms([&] { CK((cudaError_t)TritonAttention(D, b, s)); }, s, reps) : 0.f;
    const float t_state = time_ms([&] { CK(LaunchStateUpdate<__half>(b, g, BH, s)); }, s, reps);
    const float t_state_t = tr_used ? time_ms([&] { CK((cudaError_t)TritonStateUpdate(D, b, s)); }, s, reps) : 0.f;
    SetTritonEnabled(0);
    const float t_all = time_ms([&] { CK((cudaError_t)LaunchCuda(D, b, s)); }, s, reps);
    SetTritonEnabled(1);
    const float t_all_t = time_ms([&] { CK((cudaError_t)LaunchCuda(D, b, s)); }, s, reps);
    SetTritonEnabled(-1);
    const double Nw = c.Nt + c.Nc;
    const double f_attn = BH * (4.0 * c.Nc * Nw * c.d + 2.0 * c.Nc * c.Dp * c.d);
    const double f_state = BH * 2.0 * D.leave * c.Dp * c.d;
    std::printf("    CUDA kernels:   attention 64x64 %8.3f ms %6.1f TFLOP/s | 128x32 %8.3f ms %6.1f TFLOP/s | state update %7.3f ms | whole op %8.3f ms %6.1f TFLOP/s\n",
                t_attn, f_attn / t_attn / 1e9, t_attn_w, f_attn / t_attn_w / 1e9, t_state, t_all, (f_attn + f_state) / t_all / 1e9);
    std::printf("    Triton kernels: attention       %8.3f ms %6.1f TFLOP/s | state update %7.3f ms | whole op %8.3f ms %6.1f TFLOP/s\n",
                t_attn_t, t_attn_t > 0 ? f_attn / t_attn_t / 1e9 : 0.0, t_state_t, t_all_t, (f_attn + f_state) / t_all_t / 1e9);
    if (c.Nt == 1560 && c.d == 128) { video_old += 31 * t_all; video_new += 31 * t_all_t; }
    if (c.Nt == 0) { video_old += t_all; video_new += t_all_t; }
    CK(cudaStreamSynchronize(s));
    for (const void* p : {b.q, b.k, b.v, b.fq, b.fk, b.k_tail, b.v_tail, b.fk_tail, (const void*)b.S, (const void*)b.z,
                          (const void*)b.y, (const void*)b.S_out, (const void*)b.z_out, (const void*)b.k_tail_out,
                          (const void*)b.v_tail_out, (const void*)b.fk_tail_out})
      CK(cudaFree(const_cast<void*>(p)));
  }
  std::printf("Wan2.1 149,760-token video (1 first + 31 chunks), kernels only: CUDA kernels %.2f ms, Triton path %.2f ms\n",
              video_old, video_new);
  return 0;
}
