// N-API glue for AES-256-GCM into caller memory (gcm.h): checks every argument again after JS's, then calls in.
//   seal(key, nonce, aad, src, dst)  dst.length = src.length + 16: ciphertext ‖ tag; dst may start at src
//   open(key, nonce, aad, src, dst)  src = ciphertext ‖ tag, dst.length = src.length - 16; false (dst zeroed) on a bad tag
//   gmac(key, nonce, data, tag)      tag.length = 16
//   hkdfTwo(ikm, salt, labelA, labelB, core, context, outA, outB)   two HKDF-SHA256 outputs of 32 bytes
//   hmacSha256(key, parts, out)      out (32 bytes) = HMAC-SHA256(key, parts concatenated); key ≤ 64 bytes, ≤ 8 parts
//   kernels                          the AES-GCM implementations this build and CPU have ('openssl', 'ipsec-mb')
//   ipsecMbLinked                    whether this build has intel-ipsec-mb in it (softhsm/prepare.sh rebuilds if not)
//   kernel() / setKernel(name)       the one in use (for the whole process) / switch (tests, benches); false if absent
#include <napi.h>

#include <string>

#include "gcm.h"

void RegisterBatch(Napi::Env env, Napi::Object exports);   // gcm-batch.cc
void RegisterStripe(Napi::Env env, Napi::Object exports);  // stripe-seal.cc

namespace {

bool Bytes(const Napi::CallbackInfo& info, size_t i, const char* name, uint8_t** data, size_t* len) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(env, std::string(name) + " must be a Uint8Array").ThrowAsJavaScriptException();
    return false;
  }
  auto a = info[i].As<Napi::Uint8Array>();
  *data = a.Data();
  *len = a.ElementLength();
  return true;
}

bool Expect(Napi::Env env, bool ok, const std::string& msg) {
  if (!ok) Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
  return ok;
}

// Same start (in place) or disjoint: EVP supports both, not a partial overlap.
bool SafeOverlap(const uint8_t* a, size_t alen, const uint8_t* b, size_t blen) {
  return a == b || a + alen <= b || b + blen <= a;
}

struct Common {
  uint8_t *key, *nonce, *aad, *src, *dst;
  size_t key_len, nonce_len, aad_len, src_len, dst_len;
};

bool GetCommon(const Napi::CallbackInfo& info, Common* c) {
  Napi::Env env = info.Env();
  return Bytes(info, 0, "key", &c->key, &c->key_len) && Bytes(info, 1, "nonce", &c->nonce, &c->nonce_len) &&
         Bytes(info, 2, "aad", &c->aad, &c->aad_len) && Bytes(info, 3, "src", &c->src, &c->src_len) &&
         Bytes(info, 4, "dst", &c->dst, &c->dst_len) &&
         Expect(env, c->key_len == hsmgcm::KEY_BYTES, "key must be 32 bytes") &&
         Expect(env, c->nonce_len == hsmgcm::NONCE_BYTES, "nonce must be 12 bytes");
}

Napi::Value Seal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Common c;
  if (!GetCommon(info, &c)) return env.Undefined();
  if (!Expect(env, c.dst_len == c.src_len + hsmgcm::TAG_BYTES, "dst must be src.length + 16 bytes") ||
      !Expect(env, SafeOverlap(c.src, c.src_len, c.dst, c.dst_len), "src and dst must be the same start or not overlap"))
    return env.Undefined();
  if (!hsmgcm::seal(c.key, c.nonce, c.aad, c.aad_len, c.src, c.src_len, c.dst, c.dst + c.src_len))
    Napi::Error::New(env, "AES-GCM seal failed").ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Common c;
  if (!GetCommon(info, &c)) return env.Undefined();
  if (!Expect(env, c.src_len >= hsmgcm::TAG_BYTES && c.dst_len == c.src_len - hsmgcm::TAG_BYTES, "dst must be src.length - 16 bytes") ||
      !Expect(env, SafeOverlap(c.src, c.src_len, c.dst, c.dst_len), "src and dst must be the same start or not overlap"))
    return env.Undefined();
  const bool ok = hsmgcm::open(c.key, c.nonce, c.aad, c.aad_len, c.src, c.dst_len, c.dst, c.src + c.dst_len);
  return Napi::Boolean::New(env, ok);
}

Napi::Value Gmac(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t *key, *nonce, *data, *tag;
  size_t key_len, nonce_len, data_len, tag_len;
  if (!Bytes(info, 0, "key", &key, &key_len) || !Bytes(info, 1, "nonce", &nonce, &nonce_len) ||
      !Bytes(info, 2, "data", &data, &data_len) || !Bytes(info, 3, "tag", &tag, &tag_len) ||
      !Expect(env, key_len == hsmgcm::KEY_BYTES, "key must be 32 bytes") ||
      !Expect(env, nonce_len == hsmgcm::NONCE_BYTES, "nonce must be 12 bytes") ||
      !Expect(env, tag_len == hsmgcm::TAG_BYTES, "tag must be 16 bytes"))
    return env.Undefined();
  if (!hsmgcm::gmac(key, nonce, data, data_len, tag)) Napi::Error::New(env, "GMAC failed").ThrowAsJavaScriptException();
  return env.Undefined();
}

// hkdfTwo(ikm, salt, labelA, labelB, core, context, outA, outB): outs are 32 bytes each.
Napi::Value HkdfTwo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* p[8];
  size_t n[8];
  const char* names[8] = {"ikm", "salt", "labelA", "labelB", "core", "context", "outA", "outB"};
  for (size_t i = 0; i < 8; i++)
    if (!Bytes(info, i, names[i], &p[i], &n[i])) return env.Undefined();
  if (!Expect(env, n[6] == 32 && n[7] == 32, "outA and outB must be 32 bytes")) return env.Undefined();
  if (!hsmgcm::hkdf_two(p[0], n[0], p[1], n[1], p[2], n[2], p[3], n[3], p[4], n[4], p[5], n[5], p[6], p[7]))
    Napi::Error::New(env, "HKDF failed").ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value HmacSha256(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  constexpr uint32_t MAX_PARTS = 8;
  uint8_t *key, *out;
  size_t key_len, out_len;
  if (!Bytes(info, 0, "key", &key, &key_len) || !Bytes(info, 2, "out", &out, &out_len) ||
      !Expect(env, key_len <= 64, "key must be at most 64 bytes") || !Expect(env, out_len == 32, "out must be 32 bytes"))
    return env.Undefined();
  if (!info[1].IsArray()) return Napi::TypeError::New(env, "parts must be an array of Uint8Array").ThrowAsJavaScriptException(), env.Undefined();
  auto arr = info[1].As<Napi::Array>();
  const uint32_t count = arr.Length();
  if (!Expect(env, count <= MAX_PARTS, "parts must have at most 8 entries")) return env.Undefined();
  hsmgcm::Span parts[MAX_PARTS];
  for (uint32_t i = 0; i < count; i++) {
    const Napi::Value v = arr.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      return Napi::TypeError::New(env, "parts must be an array of Uint8Array").ThrowAsJavaScriptException(), env.Undefined();
    auto a = v.As<Napi::Uint8Array>();
    parts[i] = {a.Data(), a.ElementLength()};
  }
  if (!hsmgcm::hmac_sha256(key, key_len, parts, count, out)) Napi::Error::New(env, "HMAC failed").ThrowAsJavaScriptException();
  return env.Undefined();
}

const char* KernelName(hsmgcm::Kernel k) { return k == hsmgcm::Kernel::IpsecMb ? "ipsec-mb" : "openssl"; }

Napi::Value GetKernel(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), KernelName(hsmgcm::kernel())); }

Napi::Value SetKernel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (name != "openssl" && name != "ipsec-mb")
    return Napi::TypeError::New(env, "kernel must be 'openssl' or 'ipsec-mb'").ThrowAsJavaScriptException(), env.Undefined();
  return Napi::Boolean::New(env, hsmgcm::set_kernel(name == "ipsec-mb" ? hsmgcm::Kernel::IpsecMb : hsmgcm::Kernel::OpenSsl));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Array kernels = Napi::Array::New(env);
  for (hsmgcm::Kernel k : {hsmgcm::Kernel::OpenSsl, hsmgcm::Kernel::IpsecMb})
    if (hsmgcm::kernel_available(k)) kernels.Set(kernels.Length(), Napi::String::New(env, KernelName(k)));
  exports.Set("kernels", kernels);
#ifdef HSM_HAVE_IPSEC_MB
  exports.Set("ipsecMbLinked", Napi::Boolean::New(env, true));
#else
  exports.Set("ipsecMbLinked", Napi::Boolean::New(env, false));
#endif
  exports.Set("kernel", Napi::Function::New(env, GetKernel));
  exports.Set("setKernel", Napi::Function::New(env, SetKernel));
  exports.Set("hkdfTwo", Napi::Function::New(env, HkdfTwo));
  exports.Set("hmacSha256", Napi::Function::New(env, HmacSha256));
  exports.Set("seal", Napi::Function::New(env, Seal));
  exports.Set("open", Napi::Function::New(env, Open));
  exports.Set("gmac", Napi::Function::New(env, Gmac));
  RegisterBatch(env, exports);
  RegisterStripe(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(hsm_gcm, Init)
