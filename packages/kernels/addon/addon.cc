// rehyat_addon.node: ONNX Runtime sessions with the ai.rehyat custom ops, from Node.
// It links no ONNX Runtime: init() dlopens the libonnxruntime.so.1 shipped inside
// onnxruntime-node (the same file that package's binding loads, so the process holds ONE
// runtime) and takes its OrtEnv through CreateEnv, which returns the process-wide env.
#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

#include <dlfcn.h>
#include <napi.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_rt.h"
#include "tensors.h"

namespace rehyat {
namespace {

const OrtApi* g_api = nullptr;
OrtEnv* g_env = nullptr;
bool g_env_shared = false;
std::string g_ort_version;

Napi::Error OrtError(Napi::Env env, const Ort::Exception& e) {
  auto err = Napi::Error::New(env, e.what());
  static const char* names[] = {"ORT_OK", "ORT_FAIL", "ORT_INVALID_ARGUMENT", "ORT_NO_SUCHFILE", "ORT_NO_MODEL",
                                "ORT_ENGINE_ERROR", "ORT_RUNTIME_EXCEPTION", "ORT_INVALID_PROTOBUF",
                                "ORT_MODEL_LOADED", "ORT_NOT_IMPLEMENTED", "ORT_INVALID_GRAPH", "ORT_EP_FAIL"};
  int c = static_cast<int>(e.GetOrtErrorCode());
  err.Set("code", Napi::String::New(env, c >= 0 && c < 12 ? names[c] : "ORT_FAIL"));
  return err;
}

void RequireInit(Napi::Env env) {
  if (!g_api) throw BadInput(env, "rehyat addon: init() was not called");
}

// init(libonnxruntimePath) -> { ortVersion, envShared }
Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw BadInput(env, "init(path): path to libonnxruntime.so.1 expected");
  const std::string path = info[0].As<Napi::String>();
  if (!g_api) {
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!h) throw Napi::Error::New(env, std::string("cannot load ONNX Runtime: ") + dlerror());
    using GetApiBase = const OrtApiBase* (*)();
    auto get = reinterpret_cast<GetApiBase>(dlsym(h, "OrtGetApiBase"));
    if (!get) throw Napi::Error::New(env, "OrtGetApiBase not found in " + path);
    const OrtApiBase* base = get();
    const OrtApi* api = base->GetApi(ORT_API_VERSION);
    if (!api) throw Napi::Error::New(env, std::string("ONNX Runtime ") + base->GetVersionString() +
                                              " is older than the headers this addon was built with");
    g_ort_version = base->GetVersionString();
    Ort::InitApi(api);
    try {
      // CreateEnv returns the process-wide env when one exists (onnxruntime-node's, if it made
      // one first); two calls returning one pointer is the check that it is a singleton.
      OrtEnv* a = nullptr;
      OrtEnv* b = nullptr;
      Ort::ThrowOnError(api->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "rehyat", &a));
      Ort::ThrowOnError(api->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "rehyat", &b));
      g_env_shared = a == b;
      if (b != a) api->ReleaseEnv(b);
      g_env = a;  // held for the life of the process
    } catch (const Ort::Exception& e) {
      throw OrtError(env, e);
    }
    g_api = api;
  }
  auto out = Napi::Object::New(env);
  out.Set("ortVersion", g_ort_version);
  out.Set("envShared", g_env_shared);
  out.Set("env", Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(g_env))));
  return out;
}

class Session;

// A tensor that lives in device memory (an OrtValue allocated by ONNX Runtime's CUDA allocator).
class DeviceTensor : public Napi::ObjectWrap<DeviceTensor> {
 public:
  static Napi::FunctionReference ctor;
  static void Define(Napi::Env env, Napi::Object exports) {
    auto cls = DefineClass(env, "DeviceTensor",
                           {InstanceAccessor<&DeviceTensor::Type>("type"), InstanceAccessor<&DeviceTensor::Dims>("dims"),
                            InstanceAccessor<&DeviceTensor::Location>("location"),
                            InstanceMethod<&DeviceTensor::ToHost>("toHost"),
                            InstanceMethod<&DeviceTensor::Dispose>("dispose")});
    ctor = Napi::Persistent(cls);
    exports.Set("DeviceTensor", cls);
  }
  explicit DeviceTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceTensor>(info) {}

  static Napi::Object Wrap(Napi::Env env, Ort::Value v, int device_id, std::shared_ptr<Ort::Session> session,
                           std::shared_ptr<Ort::Allocator> alloc = nullptr) {
    auto obj = ctor.New({});
    auto* t = Unwrap(obj);
    auto ti = v.GetTensorTypeAndShapeInfo();
    t->type_ = ti.GetElementType();
    t->dims_ = ti.GetShape();
    t->keep_ = std::move(session);  // the session whose allocator owns the memory outlives it
    t->alloc_ = std::move(alloc);
    t->value_ = std::move(v);
    t->device_id_ = device_id;
    return obj;
  }
  OrtValue* value(Napi::Env env) {
    if (!value_) throw BadInput(env, "DeviceTensor was disposed");
    return value_;
  }
  int device_id() const { return device_id_; }

 private:
  Napi::Value Type(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), TypeName(type_)); }
  Napi::Value Dims(const Napi::CallbackInfo& info) { return DimsToJs(info.Env(), dims_); }
  Napi::Value Location(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), "cuda"); }
  Napi::Value ToHost(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    OrtValue* v = value(env);
    Ort::UnownedValue uv(v);
    const size_t bytes = ElementCount(dims_) * ElementSize(type_);
    auto ab = Napi::ArrayBuffer::New(env, bytes);
    std::string err = CudaCopy(ab.Data(), uv.GetTensorRawData(), bytes, device_id_, /*to_host=*/true);
    if (!err.empty()) throw Napi::Error::New(env, err);
    return HostTensorToJs(env, type_, dims_, ab);
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    value_ = Ort::Value(nullptr);
    alloc_.reset();
    keep_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<Ort::Session> keep_;  // declared before value_: destroyed after it
  std::shared_ptr<Ort::Allocator> alloc_;  // toDevice tensors: ORT keeps a raw pointer to it
  Ort::Value value_{nullptr};
  ONNXTensorElementDataType type_ = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<int64_t> dims_;
  int device_id_ = 0;
};
Napi::FunctionReference DeviceTensor::ctor;

struct SessionConfig {
  std::string model_path, provider = "cpu", custom_ops_library;
  int device_id = 0, intra_threads = 0, inter_threads = 0, log_severity = 3;
  bool custom_ops = false;
  std::vector<std::pair<std::string, std::string>> cuda_options;  // extra CUDA EP provider options
};

class Session : public Napi::ObjectWrap<Session> {
 public:
  static Napi::FunctionReference ctor;
  static void Define(Napi::Env env, Napi::Object exports) {
    auto cls = DefineClass(env, "Session",
                           {InstanceMethod<&Session::Run>("run"), InstanceMethod<&Session::ToDevice>("toDevice"),
                            InstanceMethod<&Session::Release>("release"),
                            InstanceAccessor<&Session::InputNames>("inputNames"),
                            InstanceAccessor<&Session::OutputNames>("outputNames"),
                            InstanceAccessor<&Session::Provider>("provider")});
    ctor = Napi::Persistent(cls);
    exports.Set("Session", cls);
  }
  explicit Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {}

  // shared with the DeviceTensors it made: release() drops this reference, and ONNX Runtime's
  // session (and the allocator owning their memory) goes when the last of them is freed
  std::shared_ptr<Ort::Session> session;
  std::shared_ptr<Ort::Allocator> device_alloc;  // made by the first toDevice()
  SessionConfig cfg;
  std::vector<std::string> inputs, outputs;
  int pending = 0;

  Ort::MemoryInfo DeviceMemInfo() const {
    return Ort::MemoryInfo("Cuda", OrtDeviceAllocator, cfg.device_id, OrtMemTypeDefault);
  }
  Ort::Session& Get(Napi::Env env) {
    if (!session) throw BadInput(env, "session was released");
    return *session;
  }

 private:
  Napi::Value InputNames(const Napi::CallbackInfo& info) { return Strings(info.Env(), inputs); }
  Napi::Value OutputNames(const Napi::CallbackInfo& info) { return Strings(info.Env(), outputs); }
  Napi::Value Provider(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), cfg.provider); }
  static Napi::Value Strings(Napi::Env env, const std::vector<std::string>& v) {
    auto a = Napi::Array::New(env, v.size());
    for (size_t i = 0; i < v.size(); ++i) a.Set(i, v[i]);
    return a;
  }
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value ToDevice(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info) {
    if (pending > 0) throw BadInput(info.Env(), "session has runs in flight; await them before release()");
    device_alloc.reset();
    session.reset();
    return info.Env().Undefined();
  }
};
Napi::FunctionReference Session::ctor;

// Takes ownership of an OrtSession made by the C API (Ort::Session has no such constructor).
struct AdoptedSession : Ort::Session {
  explicit AdoptedSession(OrtSession* p) : Ort::Session(nullptr) { p_ = p; }
};
inline Ort::Session Adopt(OrtSession* p) {
  AdoptedSession a(p);
  return Ort::Session(std::move(static_cast<Ort::Session&>(a)));
}

// ---- createSession(config) -> Promise<Session> ----------------------------------------------
class CreateWorker : public Napi::AsyncWorker {
 public:
  CreateWorker(Napi::Env env, SessionConfig cfg)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), cfg_(std::move(cfg)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      Ort::SessionOptions so;
      if (cfg_.intra_threads > 0) so.SetIntraOpNumThreads(cfg_.intra_threads);
      if (cfg_.inter_threads > 0) so.SetInterOpNumThreads(cfg_.inter_threads);
      so.SetLogSeverityLevel(cfg_.log_severity);
      if (cfg_.custom_ops) Ort::ThrowOnError(Ort::GetApi().RegisterCustomOpsLibrary_V2(so, cfg_.custom_ops_library.c_str()));
      if (cfg_.provider == "cuda") {
        OrtCUDAProviderOptionsV2* opts = nullptr;
        Ort::ThrowOnError(Ort::GetApi().CreateCUDAProviderOptions(&opts));
        std::unique_ptr<OrtCUDAProviderOptionsV2, void (*)(OrtCUDAProviderOptionsV2*)> guard(
            opts, [](OrtCUDAProviderOptionsV2* o) { Ort::GetApi().ReleaseCUDAProviderOptions(o); });
        const std::string dev = std::to_string(cfg_.device_id);
        std::vector<const char*> keys{"device_id"}, vals{dev.c_str()};
        for (auto& kv : cfg_.cuda_options) {
          keys.push_back(kv.first.c_str());
          vals.push_back(kv.second.c_str());
        }
        Ort::ThrowOnError(Ort::GetApi().UpdateCUDAProviderOptions(opts, keys.data(), vals.data(), keys.size()));
        Ort::ThrowOnError(Ort::GetApi().SessionOptionsAppendExecutionProvider_CUDA_V2(so, opts));
      }
      // the C call, not Ort::Session(Ort::Env&, ...): an Ort::Env wrapper around the shared env
      // would release it when an exception unwinds, dropping the process-wide OrtEnv's refcount
      OrtSession* raw = nullptr;
      Ort::ThrowOnError(Ort::GetApi().CreateSession(g_env, cfg_.model_path.c_str(), so, &raw));
      session_ = std::make_unique<Ort::Session>(Adopt(raw));
      Ort::AllocatorWithDefaultOptions alloc;
      for (size_t i = 0; i < session_->GetInputCount(); ++i)
        inputs_.emplace_back(session_->GetInputNameAllocated(i, alloc).get());
      for (size_t i = 0; i < session_->GetOutputCount(); ++i)
        outputs_.emplace_back(session_->GetOutputNameAllocated(i, alloc).get());
    } catch (const Ort::Exception& e) {
      code_ = e.GetOrtErrorCode();
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = ORT_FAIL;
      SetError(e.what());
    }
  }
  void OnOK() override {
    auto obj = Session::ctor.New({});
    auto* s = Session::Unwrap(obj);
    s->session = std::shared_ptr<Ort::Session>(std::move(session_));
    s->cfg = cfg_;
    s->inputs = inputs_;
    s->outputs = outputs_;
    deferred_.Resolve(obj);
  }
  void OnError(const Napi::Error& e) override {
    deferred_.Reject(OrtError(Env(), Ort::Exception(std::string(e.Message()), code_)).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  SessionConfig cfg_;
  std::unique_ptr<Ort::Session> session_;
  std::vector<std::string> inputs_, outputs_;
  OrtErrorCode code_ = ORT_FAIL;
};

Napi::Value CreateSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireInit(env);
  if (!info[0].IsObject()) throw BadInput(env, "createSession(config): config object expected");
  auto o = info[0].As<Napi::Object>();
  SessionConfig cfg;
  auto str = [&](const char* k, std::string& out) {
    auto v = o.Get(k);
    if (v.IsUndefined()) return;
    if (!v.IsString()) throw BadInput(env, std::string("createSession: '") + k + "' must be a string");
    out = v.As<Napi::String>();
  };
  auto num = [&](const char* k, int& out, int lo, int hi) {
    auto v = o.Get(k);
    if (v.IsUndefined()) return;
    if (!v.IsNumber()) throw BadInput(env, std::string("createSession: '") + k + "' must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (d != static_cast<int>(d) || d < lo || d > hi)
      throw BadInput(env, std::string("createSession: '") + k + "' must be an integer in [" + std::to_string(lo) +
                              ", " + std::to_string(hi) + "]");
    out = static_cast<int>(d);
  };
  str("modelPath", cfg.model_path);
  str("provider", cfg.provider);
  str("customOpsLibrary", cfg.custom_ops_library);
  num("deviceId", cfg.device_id, 0, 1024);
  num("intraOpThreads", cfg.intra_threads, 0, 4096);
  num("interOpThreads", cfg.inter_threads, 0, 4096);
  num("logSeverity", cfg.log_severity, 0, 4);
  auto co = o.Get("cudaOptions");
  if (!co.IsUndefined()) {
    if (!co.IsObject()) throw BadInput(env, "createSession: 'cudaOptions' must be an object of strings");
    auto obj = co.As<Napi::Object>();
    auto names = obj.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); ++i) {
      std::string key = names.Get(i).As<Napi::String>();
      auto val = obj.Get(key);
      if (!val.IsString()) throw BadInput(env, "createSession: cudaOptions." + key + " must be a string");
      cfg.cuda_options.emplace_back(key, val.As<Napi::String>());
    }
  }
  // CUDA sessions run every run of the session on one stream of their EP instance (unless the caller
  // says otherwise): ORT's default takes a stream per run from a pool, so a pipelined run (sync:false)
  // would race the previous run's kernels (measured on the H100: S off by 2% after 64 chunks)
  bool has_unified = false;
  for (auto& kv : cfg.cuda_options)
    if (kv.first == "use_ep_level_unified_stream") has_unified = true;
  if (!has_unified) cfg.cuda_options.emplace_back("use_ep_level_unified_stream", "1");
  if (cfg.model_path.empty()) throw BadInput(env, "createSession: 'modelPath' is required");
  if (cfg.provider != "cpu" && cfg.provider != "cuda")
    throw BadInput(env, "createSession: 'provider' must be 'cpu' or 'cuda', got '" + cfg.provider + "'");
  cfg.custom_ops = !cfg.custom_ops_library.empty();
  auto* w = new CreateWorker(env, std::move(cfg));
  auto p = w->Promise();
  w->Queue();
  return p;
}

// ---- session.run(feeds, outputLocations) -> Promise<Record<string, tensor>> ------------------
class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, Session* s, Napi::Object self)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), s_(s), sess_(s->session) {
    self_ = Napi::Persistent(self);
    ++s_->pending;
  }
  ~RunWorker() override { --s_->pending; }
  Napi::Promise Promise() { return deferred_.Promise(); }

  std::vector<HostBuffer> host_inputs;   // owned copies of the JS arrays
  std::vector<std::string> names;        // input names, parallel to values
  std::vector<Ort::Value> values;        // host inputs wrap host_inputs
  std::vector<OrtValue*> device_inputs;  // borrowed from DeviceTensor objects (kept alive by refs)
  std::vector<std::string> device_names;
  std::vector<Napi::ObjectReference> keep;
  std::vector<std::string> out_names;
  std::vector<bool> out_on_device;
  bool sync = true;  // false: return once enqueued (every output on the device; see RunOptions.sync)

  void Execute() override {
    try {
      Ort::Session& sess = *sess_;
      Ort::IoBinding binding(sess);
      for (size_t i = 0; i < values.size(); ++i) binding.BindInput(names[i].c_str(), values[i]);
      // the C call: an Ort::Value around the borrowed OrtValue would free it when destroyed
      for (size_t i = 0; i < device_inputs.size(); ++i)
        Ort::ThrowOnError(Ort::GetApi().BindInput(binding, device_names[i].c_str(), device_inputs[i]));
      Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtDeviceAllocator, OrtMemTypeDefault);
      Ort::MemoryInfo dev = s_->DeviceMemInfo();
      for (size_t i = 0; i < out_names.size(); ++i) binding.BindOutput(out_names[i].c_str(), out_on_device[i] ? dev : cpu);
      Ort::RunOptions ro;
      // pipelined run: ORT skips its end-of-run stream synchronisation, so this thread (and JS) can
      // queue the next run while the GPU works; later runs of the session share its stream, and
      // DeviceTensor.toHost() synchronises the device before it copies
      if (!sync) ro.AddConfigEntry("disable_synchronize_execution_providers", "1");
      sess.Run(ro, binding);
      if (sync) binding.SynchronizeOutputs();
      results_ = binding.GetOutputValues();
      result_names_ = binding.GetOutputNames();
    } catch (const Ort::Exception& e) {
      code_ = e.GetOrtErrorCode();
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    auto out = Napi::Object::New(env);
    for (size_t i = 0; i < results_.size(); ++i) {
      Ort::Value& v = results_[i];
      auto mi = v.GetTensorMemoryInfo();
      if (mi.GetDeviceType() == OrtMemoryInfoDeviceType_GPU) {
        out.Set(result_names_[i], DeviceTensor::Wrap(env, std::move(v), s_->cfg.device_id, sess_));
      } else {
        auto ti = v.GetTensorTypeAndShapeInfo();
        const size_t bytes = ti.GetElementCount() * ElementSize(ti.GetElementType());
        auto ab = Napi::ArrayBuffer::New(env, bytes);
        if (bytes) std::memcpy(ab.Data(), v.GetTensorRawData(), bytes);
        out.Set(result_names_[i], HostTensorToJs(env, ti.GetElementType(), ti.GetShape(), ab));
      }
    }
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override {
    deferred_.Reject(OrtError(Env(), Ort::Exception(std::string(e.Message()), code_)).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Session* s_;
  std::shared_ptr<Ort::Session> sess_;
  Napi::ObjectReference self_;
  std::vector<Ort::Value> results_;
  std::vector<std::string> result_names_;
  OrtErrorCode code_ = ORT_FAIL;
};

Napi::Value Session::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Get(env);
  if (!info[0].IsObject()) throw BadInput(env, "run(feeds): feeds object expected");
  auto feeds = info[0].As<Napi::Object>();
  auto* w = new RunWorker(env, this, Value());
  std::unique_ptr<RunWorker> guard(w);  // deleted on a throw below; released when queued
  auto has = [](const std::vector<std::string>& v, const std::string& n) {
    for (auto& x : v) if (x == n) return true;
    return false;
  };
  auto keys = feeds.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string name = keys.Get(i).As<Napi::String>();
    if (!has(inputs, name)) throw BadInput(env, "run: '" + name + "' is not an input of this model");
    auto val = feeds.Get(name);
    if (val.IsObject() && val.As<Napi::Object>().InstanceOf(DeviceTensor::ctor.Value())) {
      auto* dt = DeviceTensor::Unwrap(val.As<Napi::Object>());
      if (cfg.provider != "cuda") throw BadInput(env, "run: '" + name + "' is a device tensor but the session runs on cpu");
      if (dt->device_id() != cfg.device_id) throw BadInput(env, "run: '" + name + "' lives on another device");
      w->device_inputs.push_back(dt->value(env));
      w->device_names.push_back(name);
      w->keep.push_back(Napi::Persistent(val.As<Napi::Object>()));
    } else {
      w->host_inputs.push_back(HostTensorFromJs(env, name, val));
      HostBuffer& hb = w->host_inputs.back();
      w->names.push_back(name);
      w->values.push_back(Ort::Value::CreateTensor(Ort::MemoryInfo::CreateCpu(OrtDeviceAllocator, OrtMemTypeDefault),
                                                   hb.data.data(), hb.data.size(), hb.dims.data(), hb.dims.size(),
                                                   hb.type));
    }
  }
  for (auto& n : inputs)
    if (!has(w->names, n) && !has(w->device_names, n)) throw BadInput(env, "run: input '" + n + "' is missing");
  // where each output goes: { name: 'cpu' | 'cuda' }, default cpu
  Napi::Object locs = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  auto lk = locs.GetPropertyNames();
  for (uint32_t i = 0; i < lk.Length(); ++i) {
    std::string n = lk.Get(i).As<Napi::String>();
    if (!has(outputs, n)) throw BadInput(env, "run: '" + n + "' is not an output of this model");
  }
  for (auto& n : outputs) {
    bool dev = false;
    auto l = locs.Get(n);
    if (!l.IsUndefined()) {
      std::string s = l.IsString() ? std::string(l.As<Napi::String>()) : "";
      if (s != "cpu" && s != "cuda") throw BadInput(env, "run: location of output '" + n + "' must be 'cpu' or 'cuda'");
      dev = s == "cuda";
      if (dev && cfg.provider != "cuda") throw BadInput(env, "run: output '" + n + "' asked on cuda but the session runs on cpu");
    }
    w->out_names.push_back(n);
    w->out_on_device.push_back(dev);
  }
  // run options: { sync: boolean } (default true); sync:false needs every output on the device
  if (info.Length() > 2 && info[2].IsObject()) {
    auto sv = info[2].As<Napi::Object>().Get("sync");
    if (!sv.IsUndefined()) {
      if (!sv.IsBoolean()) throw BadInput(env, "run: 'sync' must be a boolean");
      w->sync = sv.As<Napi::Boolean>();
    }
  }
  if (!w->sync) {
    if (cfg.provider != "cuda") throw BadInput(env, "run: sync:false needs a cuda session");
    for (auto& kv : cfg.cuda_options)
      if (kv.first == "use_ep_level_unified_stream" && kv.second != "1")
        throw BadInput(env, "run: sync:false needs the session's runs on one stream (cudaOptions.use_ep_level_unified_stream '1', the default)");
    for (size_t i = 0; i < w->out_names.size(); ++i)
      if (!w->out_on_device[i])
        throw BadInput(env, "run: sync:false needs every output on 'cuda'; '" + w->out_names[i] + "' would be copied to the host");
  }
  auto p = w->Promise();
  guard.release()->Queue();
  return p;
}

// session.toDevice({type, dims, data}) -> DeviceTensor (a synchronous host-to-device copy)
Napi::Value Session::ToDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ort::Session& sess = Get(env);
  if (cfg.provider != "cuda") throw BadInput(env, "toDevice: the session runs on cpu");
  HostBuffer hb = HostTensorFromJs(env, "tensor", info[0]);
  try {
    Ort::MemoryInfo mi = DeviceMemInfo();
    if (!device_alloc) device_alloc = std::make_shared<Ort::Allocator>(sess, mi);
    Ort::Value v = Ort::Value::CreateTensor(*device_alloc, hb.dims.data(), hb.dims.size(), hb.type);
    std::string err = CudaCopy(v.GetTensorMutableRawData(), hb.data.data(), hb.data.size(), cfg.device_id, false);
    if (!err.empty()) throw Napi::Error::New(env, err);
    return DeviceTensor::Wrap(env, std::move(v), cfg.device_id, session, device_alloc);
  } catch (const Ort::Exception& e) {
    throw OrtError(env, e);
  }
}

// cudaMemInfo(deviceId) -> { free, total } bytes (for benchmarks); needs the CUDA runtime loaded
Napi::Value CudaMemInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dev = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  size_t free_b = 0, total_b = 0;
  std::string err = CudaMemGetInfo(dev, free_b, total_b);
  if (!err.empty()) throw Napi::Error::New(env, err);
  auto o = Napi::Object::New(env);
  o.Set("free", static_cast<double>(free_b));
  o.Set("total", static_cast<double>(total_b));
  return o;
}

Napi::Object Module(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("createSession", Napi::Function::New(env, CreateSession));
  exports.Set("cudaMemInfo", Napi::Function::New(env, CudaMemInfo));
  Session::Define(env, exports);
  DeviceTensor::Define(env, exports);
  return exports;
}

}  // namespace
}  // namespace rehyat

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return rehyat::Module(env, exports); }
NODE_API_MODULE(rehyat_addon, InitModule)
