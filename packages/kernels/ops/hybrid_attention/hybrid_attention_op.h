// ai.rehyat::HybridAttention v1: shared declarations of the CPU (reference) and CUDA kernels.
// Inputs:  0 q [B,H,Nc,d]  1 k  2 v  3 fq [B,H,Nc,D']  4 fk [B,H,Nc,D']  5 S [B,H,D',d] f32
//          6 z [B,H,D'] f32  7 k_tail [B,H,Nt,d]  8 v_tail  9 fk_tail [B,H,Nt,D']
// Outputs: 0 y [B,H,Nc,d]  1 S' f32  2 z' f32  3 k_tail' [B,H,Tn,d]  4 v_tail'  5 fk_tail' [B,H,Tn,D']
//          with Tn = min(tail_tokens, Nt + Nc)
// Attributes: tail_tokens (int, >= 0, required), scale (float, absent or <= 0 -> 1/sqrt(d)).
// T (q, k, v, fq, fk, tails, y) is float or float16; S and z are float32 always.
#pragma once
#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

#include <cstdint>
#include <string>

namespace rehyat {

constexpr const char* kDomain = "ai.rehyat";
constexpr const char* kOpName = "HybridAttention";
constexpr size_t kNumInputs = 10;
constexpr size_t kNumOutputs = 6;

// Validated geometry of one call.
struct HaDims {
  int64_t B = 0, H = 0, Nc = 0, d = 0, Dp = 0, Nt = 0;
  int64_t tail_out = 0;  // Tn
  int64_t leave = 0;     // window tokens absorbed into S', z': Nt + Nc - Tn
  float scale = 0.f;
  bool half = false;     // T == float16
};

// Raw pointers of one call (host or device memory, by EP).
struct HaBuffers {
  const void *q, *k, *v, *fq, *fk, *k_tail, *v_tail, *fk_tail;
  const float *S, *z;
  void *y, *k_tail_out, *v_tail_out, *fk_tail_out;
  float *S_out, *z_out;
};

// Reads, validates and allocates: throws Ort::Exception(ORT_INVALID_ARGUMENT) with a message
// naming the offending input when shapes or element types disagree.
void PrepareCall(Ort::KernelContext& ctx, int64_t tail_tokens, float scale_attr, HaDims& dims,
                 HaBuffers& buf);

struct HaKernel {
  int64_t tail_tokens = 0;
  float scale = 0.f;
  bool cuda = false;
};

// One OrtCustomOp per (EP, T); ORT hands back &op, from which the entry is recovered.
struct OpEntry {
  OrtCustomOp op;
  ONNXTensorElementDataType type;
  bool cuda;
};

// Fills one entry for element type T on the CPU or CUDA EP.
void InitOp(OpEntry& e, ONNXTensorElementDataType t, bool cuda);

// CPU reference compute (hybrid_attention_ref.cc).
void ComputeCpu(Ort::KernelContext& ctx, const HaDims& dims, const HaBuffers& buf);

#ifdef REHYAT_WITH_CUDA
// CUDA compute (hybrid_attention.cu); returns a cudaError_t as int (0 = success).
int LaunchCuda(const HaDims& dims, const HaBuffers& buf, void* stream);
const char* CudaErrorString(int err);

// Float16 Hopper fast path (hybrid_attention_triton.cc: Triton kernels compiled ahead of time to
// PTX, launched through the CUDA driver API). Each returns kTritonNotUsed when it does not apply
// (other dtype or shape, not compute capability 9.0, REHYAT_TRITON=0, PTX not built in or not
// loadable): the caller then runs the CUDA kernels; else 0 or kTritonDriverError + a CUresult.
constexpr int kTritonNotUsed = -1;
constexpr int kTritonDriverError = 100000;
int TritonAttention(const HaDims& dims, const HaBuffers& buf, void* stream);    // y
int TritonStateUpdate(const HaDims& dims, const HaBuffers& buf, void* stream);  // S', z'
const char* TritonErrorString(int err);
bool TritonEnabled();            // REHYAT_TRITON != 0 (or SetTritonEnabled) and built with the PTX
bool TritonBuilt();              // the library embeds the PTX
void SetTritonEnabled(int mode); // benchmarks: 1 on, 0 off, -1 back to REHYAT_TRITON
#endif

}  // namespace rehyat
