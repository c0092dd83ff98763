// Host tensors between JS ({ type, dims, data }) and ONNX Runtime; input validation.
#pragma once
#include <napi.h>
#include <onnxruntime_cxx_api.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace rehyat {

inline Napi::Error BadInput(Napi::Env env, const std::string& msg) {
  auto e = Napi::TypeError::New(env, msg);
  e.Set("code", Napi::String::New(env, "REHYAT_BAD_INPUT"));
  return e;
}

struct HostBuffer {
  ONNXTensorElementDataType type;
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

struct TypeRow {
  const char* name;
  ONNXTensorElementDataType type;
  size_t size;
  napi_typedarray_type js;
};
inline const TypeRow* Types() {
  static const TypeRow rows[] = {
      {"float32", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, 4, napi_float32_array},
      {"float16", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, 2, napi_uint16_array},
      {"int64", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, 8, napi_bigint64_array},
      {"int32", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, 4, napi_int32_array},
      {"float64", ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE, 8, napi_float64_array},
      {"uint8", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, 1, napi_uint8_array},
      {"bool", ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL, 1, napi_uint8_array},
      {nullptr, ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED, 0, napi_uint8_array}};
  return rows;
}
inline const TypeRow* RowOf(ONNXTensorElementDataType t) {
  for (const TypeRow* r = Types(); r->name; ++r)
    if (r->type == t) return r;
  return nullptr;
}
inline const char* TypeName(ONNXTensorElementDataType t) {
  const TypeRow* r = RowOf(t);
  return r ? r->name : "unsupported";
}
inline size_t ElementSize(ONNXTensorElementDataType t) {
  const TypeRow* r = RowOf(t);
  return r ? r->size : 0;
}
inline size_t ElementCount(const std::vector<int64_t>& dims) {
  size_t n = 1;
  for (auto d : dims) n *= static_cast<size_t>(d);
  return n;
}
inline Napi::Array DimsToJs(Napi::Env env, const std::vector<int64_t>& dims) {
  auto a = Napi::Array::New(env, dims.size());
  for (size_t i = 0; i < dims.size(); ++i) a.Set(i, Napi::Number::New(env, static_cast<double>(dims[i])));
  return a;
}

inline HostBuffer HostTensorFromJs(Napi::Env env, const std::string& name, Napi::Value v) {
  if (!v.IsObject()) throw BadInput(env, "input '" + name + "': { type, dims, data } or a DeviceTensor expected");
  auto o = v.As<Napi::Object>();
  auto tv = o.Get("type");
  if (!tv.IsString()) throw BadInput(env, "input '" + name + "': 'type' must be a string");
  const std::string tn = tv.As<Napi::String>();
  const TypeRow* row = nullptr;
  for (const TypeRow* r = Types(); r->name; ++r)
    if (tn == r->name) row = r;
  if (!row) throw BadInput(env, "input '" + name + "': unsupported element type '" + tn + "'");
  auto dv = o.Get("dims");
  if (!dv.IsArray()) throw BadInput(env, "input '" + name + "': 'dims' must be an array of integers");
  auto da = dv.As<Napi::Array>();
  HostBuffer hb;
  hb.type = row->type;
  double count = 1;
  for (uint32_t i = 0; i < da.Length(); ++i) {
    auto x = da.Get(i);
    double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != std::floor(d) || d > 9.0e15)
      throw BadInput(env, "input '" + name + "': dims must be non-negative integers");
    hb.dims.push_back(static_cast<int64_t>(d));
    count *= d;
  }
  auto data = o.Get("data");
  if (!data.IsTypedArray()) throw BadInput(env, "input '" + name + "': 'data' must be a typed array");
  auto ta = data.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != row->js)
    throw BadInput(env, "input '" + name + "': data of a '" + tn + "' tensor must be a " +
                            (row->js == napi_float32_array   ? "Float32Array"
                             : row->js == napi_uint16_array  ? "Uint16Array (float16 bits)"
                             : row->js == napi_bigint64_array ? "BigInt64Array"
                             : row->js == napi_int32_array   ? "Int32Array"
                             : row->js == napi_float64_array ? "Float64Array"
                                                             : "Uint8Array"));
  if (static_cast<double>(ta.ElementLength()) != count)
    throw BadInput(env, "input '" + name + "': data has " + std::to_string(ta.ElementLength()) +
                            " elements, dims need " + std::to_string(static_cast<size_t>(count)));
  const size_t bytes = ta.ByteLength();
  hb.data.resize(bytes ? bytes : 1);
  if (bytes) std::memcpy(hb.data.data(), static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), bytes);
  hb.data.resize(bytes);
  return hb;
}

inline Napi::Object HostTensorToJs(Napi::Env env, ONNXTensorElementDataType t, const std::vector<int64_t>& dims,
                                   Napi::ArrayBuffer ab) {
  const TypeRow* row = RowOf(t);
  auto o = Napi::Object::New(env);
  o.Set("type", Napi::String::New(env, row ? row->name : "unsupported"));
  o.Set("dims", DimsToJs(env, dims));
  const size_t n = ElementCount(dims);
  napi_value arr;
  napi_status st = napi_create_typedarray(env, row ? row->js : napi_uint8_array, row ? n : ab.ByteLength(), ab, 0, &arr);
  NAPI_THROW_IF_FAILED(env, st, o);
  o.Set("data", Napi::Value(env, arr));
  return o;
}

}  // namespace rehyat
