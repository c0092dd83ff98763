// The float16 Hopper fast path of HybridAttention: Triton kernels compiled ahead of time to PTX
// (hybrid_attention_triton.py -> scripts/gen-triton-ptx.py -> hybrid_attention_triton_ptx.h),
// loaded with the CUDA driver API into the context of the stream ONNX Runtime hands the op (at first
// use, once per context) and launched on that stream with cuLaunchKernel.
//
// libcuda.so.1 is opened with dlopen (the driver is there wherever the CUDA EP runs; nothing links
// it at build time). Used only for float16, d in {32, 64, 128}, D' % 16 == 0, compute capability
// 9.0 (the PTX targets sm_90a); REHYAT_TRITON=0 turns it off. Anything else, or a failure to load
// the PTX (reported once on stderr), leaves the call to the hand-written CUDA kernels.
#include <cuda.h>
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "hybrid_attention_op.h"

#ifdef REHYAT_TRITON_PTX_HEADER
#include REHYAT_TRITON_PTX_HEADER
#define REHYAT_HAVE_TRITON 1
#else
#define REHYAT_HAVE_TRITON 0
#endif

namespace rehyat {

#if REHYAT_HAVE_TRITON
namespace {

struct Driver {
  CUresult (*moduleLoadDataEx)(CUmodule*, const void*, unsigned, CUjit_option*, void**);
  CUresult (*moduleGetFunction)(CUfunction*, CUmodule, const char*);
  CUresult (*funcSetAttribute)(CUfunction, CUfunction_attribute, int);
  CUresult (*launchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                           CUstream, void**, void**);
  CUresult (*getErrorString)(CUresult, const char**);
  CUresult (*streamGetCtx)(CUstream, CUcontext*);
  CUresult (*ctxGetCurrent)(CUcontext*);
  CUresult (*ctxSetCurrent)(CUcontext);
  CUresult (*ctxGetDevice)(CUdevice*);
  CUresult (*deviceGetAttribute)(int*, CUdevice_attribute, CUdevice);
  bool ok = false;
};

const Driver& Drv() {
  static const Driver d = [] {
    Driver r{};
    void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) return r;
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
      return fn != nullptr;
    };
    r.ok = sym(r.moduleLoadDataEx, "cuModuleLoadDataEx") && sym(r.moduleGetFunction, "cuModuleGetFunction") &&
           sym(r.funcSetAttribute, "cuFuncSetAttribute") && sym(r.launchKernel, "cuLaunchKernel") &&
           sym(r.getErrorString, "cuGetErrorString") && sym(r.streamGetCtx, "cuStreamGetCtx") &&
           sym(r.ctxGetCurrent, "cuCtxGetCurrent") && sym(r.ctxSetCurrent, "cuCtxSetCurrent") &&
           sym(r.ctxGetDevice, "cuCtxGetDevice") && sym(r.deviceGetAttribute, "cuDeviceGetAttribute");
    return r;
  }();
  return d;
}

constexpr int kNumKernels = sizeof(triton_ptx::kKernels) / sizeof(triton_ptx::kKernels[0]);

// The kernels of one CUDA context, each loaded at its first use.
struct Loaded {
  CUcontext ctx = nullptr;
  bool hopper = false;               // compute capability 9.0 (the PTX targets sm_90a)
  int state[kNumKernels] = {};       // 0 not tried, 1 loaded, -1 failed
  CUfunction fn[kNumKernels] = {};
};

std::mutex g_mu;
std::vector<Loaded*> g_loaded;  // never freed: the library is never unloaded (-z nodelete)

// Expected .entry parameters: the kernel's own arguments, then Triton's scratch pointers.
bool ParamsMatch(const char* have, const char* want_prefix) {
  const size_t n = std::strlen(want_prefix);
  if (std::strncmp(have, want_prefix, n) != 0) return false;
  for (const char* p = have + n; *p;) {  // what follows: ",u64" only
    if (std::strncmp(p, ",u64", 4) != 0) return false;
    p += 4;
  }
  return true;
}
constexpr const char* kAttnParams = "u64,u64,u64,u64,u64,u64,u64,u64,u64,u32,u32,u32,f32";
constexpr const char* kStateParams = "u64,u64,u64,u64,u64,u64,u64,u64,u32,u32,u32,u32";

int NumExtraParams(const triton_ptx::Kernel& k, const char* prefix) {
  int n = 0;
  for (const char* p = k.params + std::strlen(prefix); *p; p += 4) ++n;
  return n;
}

void Warn(const std::string& what) {
  static std::once_flag once;
  std::call_once(once, [&] { std::fprintf(stderr, "rehyat: Triton kernels not used (%s); using the CUDA kernels\n", what.c_str()); });
}

// Kernel i in the stream's context (loaded at first use), or nullptr when unusable.
CUfunction ForStream(CUstream stream, int i) {
  const Driver& d = Drv();
  if (!d.ok) {
    Warn("libcuda.so.1 or one of its entry points not found");
    return nullptr;
  }
  CUcontext ctx = nullptr;
  if (d.streamGetCtx(stream, &ctx) != CUDA_SUCCESS || !ctx) return nullptr;
  std::lock_guard<std::mutex> lock(g_mu);
  Loaded* l = nullptr;
  for (Loaded* x : g_loaded)
    if (x->ctx == ctx) l = x;
  CUcontext prev = nullptr;
  bool switched = false;
  if (!l) {
    l = new Loaded;
    l->ctx = ctx;
    g_loaded.push_back(l);
    d.ctxGetCurrent(&prev);
    if (prev != ctx) switched = d.ctxSetCurrent(ctx) == CUDA_SUCCESS;
    CUdevice dev = 0;
    int major = 0, minor = 0;
    l->hopper = d.ctxGetDevice(&dev) == CUDA_SUCCESS &&
                d.deviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev) == CUDA_SUCCESS &&
                d.deviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev) == CUDA_SUCCESS &&
                major == 9 && minor == 0;
  }
  if (l->hopper && l->state[i] == 0) {
    if (!switched) {
      d.ctxGetCurrent(&prev);
      if (prev != ctx) switched = d.ctxSetCurrent(ctx) == CUDA_SUCCESS;
    }
    const triton_ptx::Kernel& k = triton_ptx::kKernels[i];
    const bool attn = std::strncmp(k.name, "attn", 4) == 0;
    l->state[i] = -1;
    if (!ParamsMatch(k.params, attn ? kAttnParams : kStateParams)) {
      Warn(std::string(k.name) + ": unexpected kernel parameters " + k.params);
    } else {
      char log[4096] = {0};
      CUjit_option opt[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
      void* val[2] = {log, reinterpret_cast<void*>(static_cast<uintptr_t>(sizeof(log) - 1))};
      CUmodule mod = nullptr;
      CUresult e = d.moduleLoadDataEx(&mod, k.ptx, 2, opt, val);
      if (e == CUDA_SUCCESS) e = d.moduleGetFunction(&l->fn[i], mod, k.entry);
      if (e == CUDA_SUCCESS && k.shared_bytes > 48 * 1024)
        e = d.funcSetAttribute(l->fn[i], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, k.shared_bytes);
      if (e == CUDA_SUCCESS) {
        l->state[i] = 1;
      } else {
        const char* es = nullptr;
        d.getErrorString(e, &es);
        Warn(std::string(k.name) + ": " + (es ? es : "CUDA error") + (log[0] ? std::string(": ") + log : ""));
      }
    }
  }
  if (switched) d.ctxSetCurrent(prev);
  return l->hopper && l->state[i] == 1 ? l->fn[i] : nullptr;
}

int Find(const char* kind, int64_t d) {
  for (int i = 0; i < kNumKernels; ++i) {
    const triton_ptx::Kernel& k = triton_ptx::kKernels[i];
    if (std::strncmp(k.name, kind, std::strlen(kind)) == 0 && k.head_dim == d) return i;
  }
  return -1;
}

bool Aligned16(std::initializer_list<const void*> ps) {
  for (const void* p : ps)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

// The kernels are compiled for these shapes, with every pointer and D' assumed multiples of 16.
bool Applies(const HaDims& D, const HaBuffers& b) {
  return TritonEnabled() && D.half && (D.d == 32 || D.d == 64 || D.d == 128) && D.Dp >= 16 && D.Dp % 16 == 0 &&
         D.B * D.H <= 65535 && D.Nc < (int64_t{1} << 24) && D.Nt < (int64_t{1} << 24) &&
         Aligned16({b.q, b.k, b.v, b.fq, b.fk, b.k_tail, b.v_tail, b.fk_tail, b.S, b.z, b.y, b.S_out, b.z_out});
}

int Launch(CUfunction f, int i, unsigned gx, unsigned gy, unsigned gz, CUstream s, void** args) {
  const triton_ptx::Kernel& k = triton_ptx::kKernels[i];
  const CUresult e = Drv().launchKernel(f, gx, gy, gz, 32u * k.num_warps, 1, 1, k.shared_bytes, s, args, nullptr);
  return e == CUDA_SUCCESS ? 0 : kTritonDriverError + static_cast<int>(e);
}

int g_override = -1;  // SetTritonEnabled: -1 = REHYAT_TRITON decides

}  // namespace

bool TritonEnabled() {
  if (g_override >= 0) return g_override == 1;
  static const bool on = [] {
    const char* v = std::getenv("REHYAT_TRITON");
    return !(v && std::string(v) == "0");
  }();
  return on;
}
void SetTritonEnabled(int mode) { g_override = mode; }
bool TritonBuilt() { return true; }

int TritonAttention(const HaDims& D, const HaBuffers& b, void* stream) {
  if (!Applies(D, b) || D.Nc == 0) return kTritonNotUsed;
  const int i = Find("attn", D.d);
  if (i < 0) return kTritonNotUsed;
  CUstream s = static_cast<CUstream>(stream);
  CUfunction f = ForStream(s, i);
  if (!f) return kTritonNotUsed;
  const triton_ptx::Kernel& k = triton_ptx::kKernels[i];
  uint64_t p[9] = {(uint64_t)(uintptr_t)b.q,      (uint64_t)(uintptr_t)b.k,      (uint64_t)(uintptr_t)b.v,
                   (uint64_t)(uintptr_t)b.k_tail, (uint64_t)(uintptr_t)b.v_tail, (uint64_t)(uintptr_t)b.fq,
                   (uint64_t)(uintptr_t)b.S,      (uint64_t)(uintptr_t)b.z,      (uint64_t)(uintptr_t)b.y};
  int32_t Nc = (int32_t)D.Nc, Nt = (int32_t)D.Nt, Dp = (int32_t)D.Dp;
  float qk_scale = D.scale * 1.4426950408889634f;  // exp2 units
  uint64_t null_ptr = 0;
  void* args[24];
  int n = 0;
  for (auto& x : p) args[n++] = &x;
  args[n++] = &Nc;
  args[n++] = &Nt;
  args[n++] = &Dp;
  args[n++] = &qk_scale;
  for (int e = NumExtraParams(k, kAttnParams); e > 0 && n < 24; --e) args[n++] = &null_ptr;
  const unsigned gx = (unsigned)((D.Nc + k.block_m - 1) / k.block_m);
  return Launch(f, i, gx, (unsigned)(D.B * D.H), 1, s, args);
}

int TritonStateUpdate(const HaDims& D, const HaBuffers& b, void* stream) {
  if (!Applies(D, b)) return kTritonNotUsed;
  const int i = Find("state", D.d);
  if (i < 0) return kTritonNotUsed;
  CUstream s = static_cast<CUstream>(stream);
  CUfunction f = ForStream(s, i);
  if (!f) return kTritonNotUsed;
  const triton_ptx::Kernel& k = triton_ptx::kKernels[i];
  uint64_t p[8] = {(uint64_t)(uintptr_t)b.v, (uint64_t)(uintptr_t)b.fk, (uint64_t)(uintptr_t)b.v_tail,
                   (uint64_t)(uintptr_t)b.fk_tail, (uint64_t)(uintptr_t)b.S, (uint64_t)(uintptr_t)b.z,
                   (uint64_t)(uintptr_t)b.S_out, (uint64_t)(uintptr_t)b.z_out};
  int32_t Nc = (int32_t)D.Nc, Nt = (int32_t)D.Nt, Dp = (int32_t)D.Dp, leave = (int32_t)D.leave;
  uint64_t null_ptr = 0;
  void* args[24];
  int n = 0;
  for (auto& x : p) args[n++] = &x;
  args[n++] = &Nc;
  args[n++] = &Nt;
  args[n++] = &Dp;
  args[n++] = &leave;
  for (int e = NumExtraParams(k, kStateParams); e > 0 && n < 24; --e) args[n++] = &null_ptr;
  const unsigned gx = (unsigned)((D.Dp + k.block_m - 1) / k.block_m);
  const unsigned gy = (unsigned)((D.d + k.block_n - 1) / k.block_n);
  return Launch(f, i, gx, gy, (unsigned)(D.B * D.H), s, args);
}

const char* TritonErrorString(int err) {
  const char* s = nullptr;
  if (Drv().ok) Drv().getErrorString(static_cast<CUresult>(err - kTritonDriverError), &s);
  return s ? s : "CUDA driver error";
}

#else  // built without the generated PTX header: the CUDA kernels only

bool TritonEnabled() { return false; }
void SetTritonEnabled(int) {}
bool TritonBuilt() { return false; }
int TritonAttention(const HaDims&, const HaBuffers&, void*) { return kTritonNotUsed; }
int TritonStateUpdate(const HaDims&, const HaBuffers&, void*) { return kTritonNotUsed; }
const char* TritonErrorString(int) { return "Triton kernels not built"; }

#endif

}  // namespace rehyat
