// Argument checks shared by the GCM addon's entry points (gcm-batch.cc, stripe-seal.cc): each throws a TypeError
// (wrong type) or RangeError (wrong value) on the JS side and returns false.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace hsmargs {

inline bool Fail(Napi::Env env, bool type, const std::string& msg) {
  if (type) Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  else Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
  return false;
}

inline bool GetU8(Napi::Env env, const Napi::Value& v, const std::string& name, uint8_t** data, size_t* len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    return Fail(env, true, name + " must be a Uint8Array");
  auto a = v.As<Napi::Uint8Array>();
  *data = a.Data();
  *len = a.ElementLength();
  return true;
}

// An integer in [lo, hi].
inline bool GetInt(Napi::Env env, const Napi::Value& v, const char* name, double lo, double hi, double* out) {
  if (!v.IsNumber()) return Fail(env, true, std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || std::floor(d) != d) return Fail(env, false, std::string(name) + " is out of range");
  *out = d;
  return true;
}

}  // namespace hsmargs
