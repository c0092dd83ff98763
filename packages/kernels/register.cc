// librehyat_ops.so entry point: registers the ai.rehyat custom-op domain with an ONNX Runtime
// session. This is the only exported symbol (see scripts/build.sh: -fvisibility=hidden and a
// version script). The library links no ONNX Runtime: it uses the OrtApiBase it is handed, so
// it runs inside whichever runtime loads it (onnxruntime-node 1.29.0, Python onnxruntime).
#include "ops/hybrid_attention/hybrid_attention_op.h"

#include <mutex>

namespace {
rehyat::OpEntry g_ops[4];
std::once_flag g_once;
}  // namespace

extern "C" __attribute__((visibility("default"))) OrtStatus* ORT_API_CALL
RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
  if (!api) return nullptr;  // cannot even build a status: runtime older than the headers
  Ort::InitApi(api);
  std::call_once(g_once, [] {
    rehyat::InitOp(g_ops[0], ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, false);
    rehyat::InitOp(g_ops[1], ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, false);
    rehyat::InitOp(g_ops[2], ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, true);
    rehyat::InitOp(g_ops[3], ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, true);
  });
  OrtCustomOpDomain* domain = nullptr;
  if (OrtStatus* st = api->CreateCustomOpDomain(rehyat::kDomain, &domain)) return st;
#ifdef REHYAT_WITH_CUDA
  const int n = 4;
#else
  const int n = 2;
#endif
  for (int i = 0; i < n; ++i)
    if (OrtStatus* st = api->CustomOpDomain_Add(domain, &g_ops[i].op)) return st;
  // The domain must outlive every session using it; ORT does not take ownership, so it is
  // intentionally kept for the life of the process (one small object per registration).
  return api->AddCustomOpDomain(options, domain);
}
