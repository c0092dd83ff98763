// Times the CUDA kernels of HybridAttention without ONNX Runtime (one chunk, float16, random
// data), to split a chunk's time between the attention kernel and the state update.
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

int main() {
  const Case cases[] = {{"Wan2.1 chunk (12x128, Nc 4680, Nt 1560, D' 128)", 12, 4680, 1560, 128, 128, 1560},
                        {"Wan2.1 first chunk (Nt 0)", 12, 4680, 0, 128, 128, 1560},
                        {"ours chunk (4x32, Nc 128, Nt 64, D' 32)", 4, 128, 64, 32, 32, 64}};
  cudaStream_t s;
  CK(cudaStreamCreate(&s));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s, %d SMs\n", prop.name, prop.multiProcessorCount);
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
    auto f32 = [&](int64_t n) {
      float* p;
      CK(cudaMalloc(&p, std::max<int64_t>(n, 1) * 4));
      CK(cudaMemsetAsync(p, 0, n * 4, s));
      return p;
    };
    HaBuffers b;
    b.q = hal(BH * c.Nc * c.d, -1, 1, 1); b.k = hal(BH * c.Nc * c.d, -1, 1, 2); b.v = hal(BH * c.Nc * c.d, -1, 1, 3);
    b.fq = hal(BH * c.Nc * c.Dp, 0.01f, 0.1f, 4); b.fk = hal(BH * c.Nc * c.Dp, 0.01f, 0.1f, 5);
    b.k_tail = hal(BH * c.Nt * c.d, -1, 1, 6); b.v_tail = hal(BH * c.Nt * c.d, -1, 1, 7);
    b.fk_tail = hal(BH * c.Nt * c.Dp, 0.01f, 0.1f, 8);
    b.S = f32(BH * c.Dp * c.d); b.z = f32(BH * c.Dp);
    b.y = hal(BH * c.Nc * c.d, 0, 0, 9); b.S_out = f32(BH * c.Dp * c.d); b.z_out = f32(BH * c.Dp);
    b.k_tail_out = hal(BH * D.tail_out * c.d, 0, 0, 10); b.v_tail_out = hal(BH * D.tail_out * c.d, 0, 0, 11);
    b.fk_tail_out = hal(BH * D.tail_out * c.Dp, 0, 0, 12);
    Geo g{(int)D.Nc, (int)D.Nt, (int)(D.Nt + D.Nc), (int)D.d, (int)D.Dp, (int)D.tail_out, (int)D.leave, D.scale};
    const int reps = 20;
    auto attn = [&](bool wide) {
      if (c.d == 128) return wide ? LaunchFlashCfg<128, 2, 32>(b, g, BH, s) : LaunchFlashCfg<128, 1, 64>(b, g, BH, s);
      if (c.d == 64) return wide ? LaunchFlashCfg<64, 2, 32>(b, g, BH, s) : LaunchFlashCfg<64, 1, 64>(b, g, BH, s);
      return wide ? LaunchFlashCfg<32, 2, 32>(b, g, BH, s) : LaunchFlashCfg<32, 1, 64>(b, g, BH, s);
    };
    const size_t ny = BH * c.Nc * c.d;
    std::vector<__half> y64(ny), y128(ny);
    CK(attn(false));
    CK(cudaMemcpyAsync(y64.data(), b.y, ny * 2, cudaMemcpyDeviceToHost, s));
    CK(cudaMemsetAsync(b.y, 0xff, ny * 2, s));
    CK(attn(true));
    CK(cudaMemcpyAsync(y128.data(), b.y, ny * 2, cudaMemcpyDeviceToHost, s));
    CK(cudaStreamSynchronize(s));
    double num = 0, den = 0, mx = 0;
    bool nan = false;
    for (size_t i = 0; i < ny; ++i) {
      const double a = __half2float(y128[i]), e = __half2float(y64[i]);
      if (a != a || e != e) nan = true;
      num += (a - e) * (a - e);
      den += e * e;
      mx = std::max(mx, std::fabs(a - e));
    }
    std::printf("  tiles 128x32 vs 64x64: y relRms %.2e maxAbs %.2e%s\n", std::sqrt(num / den), mx, nan ? " NaN!" : "");
    const float t_attn = time_ms([&] { CK(attn(false)); }, s, reps);
    const float t_attn_w = time_ms([&] { CK(attn(true)); }, s, reps);
    const float t_state = time_ms([&] { CK(LaunchStateUpdate<__half>(b, g, BH, s)); }, s, reps);
    const float t_all = time_ms([&] { CK((cudaError_t)LaunchCuda(D, b, s)); }, s, reps);
    const double Nw = c.Nt + c.Nc;
    const double f_attn = BH * (4.0 * c.Nc * Nw * c.d + 2.0 * c.Nc * c.Dp * c.d);
    const double f_state = BH * 2.0 * D.leave * c.Dp * c.d;
    std::printf("%-50s attention 64x64 %8.3f ms %6.1f TFLOP/s | 128x32 %8.3f ms %6.1f TFLOP/s | state update %7.3f ms | whole op %8.3f ms %6.1f TFLOP/s\n",
                c.name, t_attn, f_attn / t_attn / 1e9, t_attn_w, f_attn / t_attn_w / 1e9, t_state, t_all,
                (f_attn + f_state) / t_all / 1e9);
    CK(cudaStreamSynchronize(s));
  }
  return 0;
}
