// ORT glue of ai.rehyat::HybridAttention: the OrtCustomOp tables, attribute reading, input
// validation and output allocation shared by the CPU and CUDA kernels.
#include "hybrid_attention_op.h"

#include <cmath>
#include <cstddef>
#include <sstream>
#include <vector>

namespace rehyat {
namespace {

const char* const kInputNames[kNumInputs] = {"q", "k", "v", "fq", "fk", "S", "z", "k_tail", "v_tail", "fk_tail"};

[[noreturn]] void Fail(const std::string& msg) {
  throw Ort::Exception("HybridAttention: " + msg, ORT_INVALID_ARGUMENT);
}

std::string ShapeStr(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << '[';
  for (size_t i = 0; i < s.size(); ++i) o << (i ? "," : "") << s[i];
  o << ']';
  return o.str();
}

void Expect(const std::vector<int64_t>& got, const std::vector<int64_t>& want, size_t idx) {
  if (got != want)
    Fail(std::string("input '") + kInputNames[idx] + "' has shape " + ShapeStr(got) + ", expected " + ShapeStr(want));
}

ONNXTensorElementDataType TypeOf(size_t input_or_output, bool is_input, ONNXTensorElementDataType t) {
  // S and z (inputs 5, 6) and S', z' (outputs 1, 2) are always float32.
  if (is_input && (input_or_output == 5 || input_or_output == 6)) return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  if (!is_input && (input_or_output == 1 || input_or_output == 2)) return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  return t;
}

const OpEntry& Entry(const OrtCustomOp* op) { return *reinterpret_cast<const OpEntry*>(op); }

OrtStatusPtr StatusFrom(const OrtApi* api, const std::exception& e) {
  if (auto* oe = dynamic_cast<const Ort::Exception*>(&e)) return api->CreateStatus(oe->GetOrtErrorCode(), oe->what());
  return api->CreateStatus(ORT_FAIL, e.what());
}

OrtStatusPtr ORT_API_CALL CreateKernelV2(const OrtCustomOp* op, const OrtApi* api, const OrtKernelInfo* info,
                                         void** kernel) noexcept {
  try {
    Ort::ConstKernelInfo ki(info);
    auto* k = new HaKernel();
    k->cuda = Entry(op).cuda;
    int64_t tail = 0;
    OrtStatus* st = api->KernelInfoGetAttribute_int64(info, "tail_tokens", &tail);
    if (st) {
      api->ReleaseStatus(st);
      delete k;
      return api->CreateStatus(ORT_INVALID_ARGUMENT, "HybridAttention: attribute 'tail_tokens' (int) is required");
    }
    if (tail < 0) {
      delete k;
      return api->CreateStatus(ORT_INVALID_ARGUMENT, "HybridAttention: attribute 'tail_tokens' must be >= 0");
    }
    float scale = 0.f;
    st = api->KernelInfoGetAttribute_float(info, "scale", &scale);
    if (st) {
      api->ReleaseStatus(st);
      scale = 0.f;
    }
    k->tail_tokens = tail;
    k->scale = scale;
    *kernel = k;
    return nullptr;
  } catch (const std::exception& e) {
    return StatusFrom(api, e);
  }
}

OrtStatusPtr ORT_API_CALL KernelComputeV2(void* kernel, OrtKernelContext* context) noexcept {
  const OrtApi* api = &Ort::GetApi();
  try {
    auto* k = static_cast<HaKernel*>(kernel);
    Ort::KernelContext ctx(context);
    HaDims dims;
    HaBuffers buf;
    PrepareCall(ctx, k->tail_tokens, k->scale, dims, buf);
    if (!k->cuda) {
      ComputeCpu(ctx, dims, buf);
      return nullptr;
    }
#ifdef REHYAT_WITH_CUDA
    void* stream = ctx.GetGPUComputeStream();
    int err = LaunchCuda(dims, buf, stream);
    if (err != 0) return api->CreateStatus(ORT_EP_FAIL, (std::string("HybridAttention CUDA: ") + CudaErrorString(err)).c_str());
    return nullptr;
#else
    return api->CreateStatus(ORT_NOT_IMPLEMENTED, "HybridAttention: library built without CUDA");
#endif
  } catch (const std::exception& e) {
    return StatusFrom(api, e);
  }
}

void ORT_API_CALL KernelDestroy(void* kernel) noexcept { delete static_cast<HaKernel*>(kernel); }

}  // namespace

void PrepareCall(Ort::KernelContext& ctx, int64_t tail_tokens, float scale_attr, HaDims& dims, HaBuffers& buf) {
  if (ctx.GetInputCount() != kNumInputs) Fail("expects 10 inputs");
  Ort::ConstValue in[kNumInputs];
  std::vector<int64_t> shp[kNumInputs];
  ONNXTensorElementDataType typ[kNumInputs];
  for (size_t i = 0; i < kNumInputs; ++i) {
    in[i] = ctx.GetInput(i);
    if (!in[i]) Fail(std::string("input '") + kInputNames[i] + "' is missing");
    auto info = in[i].GetTensorTypeAndShapeInfo();
    shp[i] = info.GetShape();
    typ[i] = info.GetElementType();
  }
  if (shp[0].size() != 4) Fail("input 'q' must have rank 4 [B,H,Nc,d], got " + ShapeStr(shp[0]));
  if (shp[3].size() != 4) Fail("input 'fq' must have rank 4 [B,H,Nc,D'], got " + ShapeStr(shp[3]));
  if (shp[7].size() != 4) Fail("input 'k_tail' must have rank 4 [B,H,Nt,d], got " + ShapeStr(shp[7]));
  const int64_t B = shp[0][0], H = shp[0][1], Nc = shp[0][2], d = shp[0][3], Dp = shp[3][3], Nt = shp[7][2];
  if (d < 1) Fail("head dim d must be >= 1");
  if (Dp < 1) Fail("feature dim D' must be >= 1");
  Expect(shp[1], {B, H, Nc, d}, 1);
  Expect(shp[2], {B, H, Nc, d}, 2);
  Expect(shp[3], {B, H, Nc, Dp}, 3);
  Expect(shp[4], {B, H, Nc, Dp}, 4);
  Expect(shp[5], {B, H, Dp, d}, 5);
  Expect(shp[6], {B, H, Dp}, 6);
  Expect(shp[7], {B, H, Nt, d}, 7);
  Expect(shp[8], {B, H, Nt, d}, 8);
  Expect(shp[9], {B, H, Nt, Dp}, 9);
  const auto T = typ[0];
  if (T != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && T != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16)
    Fail("input 'q' must be float or float16");
  for (size_t i : {1, 2, 3, 4, 7, 8, 9})
    if (typ[i] != T) Fail(std::string("input '") + kInputNames[i] + "' must have the element type of 'q'");
  for (size_t i : {5, 6})
    if (typ[i] != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) Fail(std::string("input '") + kInputNames[i] + "' must be float32");

  dims.B = B; dims.H = H; dims.Nc = Nc; dims.d = d; dims.Dp = Dp; dims.Nt = Nt;
  dims.tail_out = std::min<int64_t>(tail_tokens, Nt + Nc);
  dims.leave = Nt + Nc - dims.tail_out;
  dims.scale = scale_attr > 0.f ? scale_attr : 1.0f / std::sqrt(static_cast<float>(d));
  dims.half = T == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;

  buf.q = in[0].GetTensorRawData();
  buf.k = in[1].GetTensorRawData();
  buf.v = in[2].GetTensorRawData();
  buf.fq = in[3].GetTensorRawData();
  buf.fk = in[4].GetTensorRawData();
  buf.S = static_cast<const float*>(in[5].GetTensorRawData());
  buf.z = static_cast<const float*>(in[6].GetTensorRawData());
  buf.k_tail = in[7].GetTensorRawData();
  buf.v_tail = in[8].GetTensorRawData();
  buf.fk_tail = in[9].GetTensorRawData();
  const int64_t Tn = dims.tail_out;
  buf.y = ctx.GetOutput(0, {B, H, Nc, d}).GetTensorMutableRawData();
  buf.S_out = ctx.GetOutput(1, {B, H, Dp, d}).GetTensorMutableData<float>();
  buf.z_out = ctx.GetOutput(2, {B, H, Dp}).GetTensorMutableData<float>();
  buf.k_tail_out = ctx.GetOutput(3, {B, H, Tn, d}).GetTensorMutableRawData();
  buf.v_tail_out = ctx.GetOutput(4, {B, H, Tn, d}).GetTensorMutableRawData();
  buf.fk_tail_out = ctx.GetOutput(5, {B, H, Tn, Dp}).GetTensorMutableRawData();
}

void InitOp(OpEntry& e, ONNXTensorElementDataType t, bool cuda) {
  static_assert(offsetof(OpEntry, op) == 0, "OrtCustomOp must come first");
  e.type = t;
  e.cuda = cuda;
  OrtCustomOp& op = e.op;
  op = OrtCustomOp{};
  op.version = ORT_API_VERSION;
  op.GetName = [](const OrtCustomOp*) noexcept { return kOpName; };
  op.GetExecutionProviderType = [](const OrtCustomOp* o) noexcept -> const char* {
    return Entry(o).cuda ? "CUDAExecutionProvider" : "CPUExecutionProvider";
  };
  op.GetInputTypeCount = [](const OrtCustomOp*) noexcept { return kNumInputs; };
  op.GetOutputTypeCount = [](const OrtCustomOp*) noexcept { return kNumOutputs; };
  op.GetInputType = [](const OrtCustomOp* o, size_t i) noexcept { return TypeOf(i, true, Entry(o).type); };
  op.GetOutputType = [](const OrtCustomOp* o, size_t i) noexcept { return TypeOf(i, false, Entry(o).type); };
  op.GetInputCharacteristic = [](const OrtCustomOp*, size_t) noexcept { return INPUT_OUTPUT_REQUIRED; };
  op.GetOutputCharacteristic = [](const OrtCustomOp*, size_t) noexcept { return INPUT_OUTPUT_REQUIRED; };
  op.GetInputMemoryType = [](const OrtCustomOp*, size_t) noexcept { return OrtMemTypeDefault; };
  op.GetVariadicInputMinArity = [](const OrtCustomOp*) noexcept { return 1; };
  op.GetVariadicInputHomogeneity = [](const OrtCustomOp*) noexcept { return 1; };
  op.GetVariadicOutputMinArity = [](const OrtCustomOp*) noexcept { return 1; };
  op.GetVariadicOutputHomogeneity = [](const OrtCustomOp*) noexcept { return 1; };
  op.CreateKernelV2 = CreateKernelV2;
  op.KernelComputeV2 = KernelComputeV2;
  op.KernelDestroy = KernelDestroy;
  op.GetStartVersion = [](const OrtCustomOp*) noexcept { return 1; };
  op.GetEndVersion = [](const OrtCustomOp*) noexcept { return 1; };
}

}  // namespace rehyat
