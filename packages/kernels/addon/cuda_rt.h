// The few CUDA runtime calls the addon needs (device<->host copies of DeviceTensors, memory
// info), taken with dlopen from the libcudart.so.13 that ONNX Runtime's CUDA execution provider
// has already loaded: the addon itself links no CUDA and loads on machines without it.
#pragma once
#include <dlfcn.h>

#include <string>

namespace rehyat {

struct CudaRt {
  int (*setDevice)(int) = nullptr;
  int (*memcpy)(void*, const void*, size_t, int) = nullptr;
  int (*memGetInfo)(size_t*, size_t*) = nullptr;
  int (*deviceSynchronize)() = nullptr;
  const char* (*errorString)(int) = nullptr;
  std::string error;
};

inline const CudaRt& Cuda() {
  static CudaRt rt = [] {
    CudaRt r;
    void* h = nullptr;
    for (const char* n : {"libcudart.so.13", "libcudart.so.12", "libcudart.so"}) {
      h = dlopen(n, RTLD_NOW | RTLD_NOLOAD);
      if (!h) h = dlopen(n, RTLD_NOW);
      if (h) break;
    }
    if (!h) {
      r.error = "CUDA runtime (libcudart.so.13) not found; is the CUDA execution provider installed?";
      return r;
    }
    r.setDevice = reinterpret_cast<int (*)(int)>(dlsym(h, "cudaSetDevice"));
    r.memcpy = reinterpret_cast<int (*)(void*, const void*, size_t, int)>(dlsym(h, "cudaMemcpy"));
    r.memGetInfo = reinterpret_cast<int (*)(size_t*, size_t*)>(dlsym(h, "cudaMemGetInfo"));
    r.errorString = reinterpret_cast<const char* (*)(int)>(dlsym(h, "cudaGetErrorString"));
    r.deviceSynchronize = reinterpret_cast<int (*)()>(dlsym(h, "cudaDeviceSynchronize"));
    if (!r.setDevice || !r.memcpy || !r.memGetInfo || !r.errorString || !r.deviceSynchronize)
      r.error = "libcudart lacks cudaMemcpy/cudaSetDevice/cudaDeviceSynchronize";
    return r;
  }();
  return rt;
}

inline std::string CudaCopy(void* dst, const void* src, size_t bytes, int device, bool to_host) {
  const CudaRt& rt = Cuda();
  if (!rt.error.empty()) return rt.error;
  if (bytes == 0) return "";
  int e = rt.setDevice(device);
  // ORT's CUDA stream does not synchronise with the legacy default stream that cudaMemcpy uses, and
  // pipelined runs (sync:false) may still be writing: wait for all of the device's work first
  if (!e) e = rt.deviceSynchronize();
  if (!e) e = rt.memcpy(dst, src, bytes, to_host ? 2 /*cudaMemcpyDeviceToHost*/ : 1 /*HostToDevice*/);
  return e ? std::string("cudaMemcpy: ") + rt.errorString(e) : "";
}

inline std::string CudaMemGetInfo(int device, size_t& free_b, size_t& total_b) {
  const CudaRt& rt = Cuda();
  if (!rt.error.empty()) return rt.error;
  int e = rt.setDevice(device);
  if (!e) e = rt.memGetInfo(&free_b, &total_b);
  return e ? std::string("cudaMemGetInfo: ") + rt.errorString(e) : "";
}

}  // namespace rehyat
