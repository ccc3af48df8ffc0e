// AES-256-GCM through Intel's multi-buffer crypto library (intel-ipsec-mb, Debian's libipsec-mb-dev, linked
// statically), used only where it has its VAES + VPCLMULQDQ kernels (AVX-512 arch with both features): there it
// seals and opens 2.7–3× faster than OpenSSL 3.0's AES-NI path on the same core (measured here, `node
// bench/gcm-kernels.mjs`; OpenSSL 3.0 does not pick its AVX-512 GCM on this CPU). On any other CPU, or when the
// library was not there at build time, available() is false and gcm.cc stays on OpenSSL. Same bytes either way
// (known-answer tests run through both).
//
// Each thread keeps the expansion of the last key it used (as OpenSSL's per-thread context keeps its schedule):
// a batch's segments share one key, and expanding it costs about as much as sealing 4 KiB. The cache is wiped when
// the thread ends. Contexts live on the stack and are wiped after every call.
#include "gcm-imb.h"

#ifdef HSM_HAVE_IPSEC_MB
#include <intel-ipsec-mb.h>
#include <openssl/crypto.h>  // CRYPTO_memcmp, from the node binary

#include <cstring>

namespace hsmgcm {
namespace imb {
namespace {

IMB_MGR* make_manager() {
  IMB_MGR* m = alloc_mb_mgr(0);
  if (!m) return nullptr;
  IMB_ARCH arch = IMB_ARCH_NONE;
  init_mb_mgr_auto(m, &arch);
  const uint64_t need = IMB_FEATURE_VAES | IMB_FEATURE_VPCLMULQDQ;
  if (arch != IMB_ARCH_AVX512 || (m->features & need) != need || imb_get_errno(m) != 0) {
    free_mb_mgr(m);
    return nullptr;
  }
  return m;
}

// Read-only after this first call (its function table only: the direct GCM calls keep all state in the caller's
// context), so every thread shares it.
IMB_MGR* manager() {
  static IMB_MGR* m = make_manager();
  return m;
}

struct alignas(64) KeyCache {
  struct gcm_key_data data;
  uint8_t key[KEY_BYTES];
  bool set = false;
  ~KeyCache() { imb_clear_mem(this, sizeof *this); }
};

const struct gcm_key_data* expand(const uint8_t* key) {
  thread_local KeyCache cache;
  if (!cache.set || CRYPTO_memcmp(cache.key, key, KEY_BYTES) != 0) {
    IMB_AES256_GCM_PRE(manager(), key, &cache.data);
    std::memcpy(cache.key, key, KEY_BYTES);
    cache.set = true;
  }
  return &cache.data;
}

// The library checks its arguments and silently does nothing for a null pointer, even with a zero length.
const uint8_t NOTHING[1] = {0};
const uint8_t* nonnull(const uint8_t* p) { return p ? p : NOTHING; }

class Gcm {
 public:
  Gcm(const uint8_t* key, const uint8_t* nonce, const uint8_t* aad, size_t aad_len) : m_(manager()), key_(expand(key)) {
    IMB_AES256_GCM_INIT(m_, key_, &ctx_, nonce, nonnull(aad), aad_len);
  }
  ~Gcm() { imb_clear_mem(&ctx_, sizeof ctx_); }
  void encrypt(const uint8_t* src, size_t len, uint8_t* dst) {
    if (len) IMB_AES256_GCM_ENC_UPDATE(m_, key_, &ctx_, dst, src, len);
  }
  void decrypt(const uint8_t* src, size_t len, uint8_t* dst) {
    if (len) IMB_AES256_GCM_DEC_UPDATE(m_, key_, &ctx_, dst, src, len);
  }
  void seal_tag(uint8_t* tag) { IMB_AES256_GCM_ENC_FINALIZE(m_, key_, &ctx_, tag, TAG_BYTES); }
  // Constant-time comparison with the expected tag.
  bool check_tag(const uint8_t* expected) {
    uint8_t tag[TAG_BYTES];
    IMB_AES256_GCM_DEC_FINALIZE(m_, key_, &ctx_, tag, TAG_BYTES);
    const bool ok = CRYPTO_memcmp(tag, expected, TAG_BYTES) == 0;
    imb_clear_mem(tag, sizeof tag);
    return ok;
  }

 private:
  IMB_MGR* m_;
  const struct gcm_key_data* key_;
  struct gcm_context_data ctx_;
};

}  // namespace

bool available() { return manager() != nullptr; }

bool seal(const uint8_t* key, const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* src, size_t len,
          uint8_t* dst, uint8_t* tag) {
  Gcm g(key, nonce, aad, aad_len);
  g.encrypt(src, len, dst);
  g.seal_tag(tag);
  return true;
}

bool open(const uint8_t* key, const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* src, size_t len,
          uint8_t* dst, const uint8_t* tag) {
  uint8_t expected[TAG_BYTES];
  std::memcpy(expected, tag, TAG_BYTES);  // the tag may sit in memory that dst overwrites
  Gcm g(key, nonce, aad, aad_len);
  g.decrypt(src, len, dst);
  const bool ok = g.check_tag(expected);
  if (!ok && len > 0) std::memset(dst, 0, len);  // never leave unauthenticated plaintext behind
  return ok;
}

bool seal_v(const uint8_t* key, const uint8_t* nonce, const Span* src, size_t count, uint8_t* dst, uint8_t* tag) {
  Gcm g(key, nonce, nullptr, 0);
  for (size_t i = 0; i < count; i++) {
    g.encrypt(src[i].data, src[i].len, dst);
    dst += src[i].len;
  }
  g.seal_tag(tag);
  return true;
}

bool open_v(const uint8_t* key, const uint8_t* nonce, const Span* src, size_t count, uint8_t* dst, const uint8_t* tag) {
  uint8_t expected[TAG_BYTES];
  std::memcpy(expected, tag, TAG_BYTES);
  Gcm g(key, nonce, nullptr, 0);
  size_t total = 0;
  for (size_t i = 0; i < count; i++) {
    g.decrypt(src[i].data, src[i].len, dst + total);
    total += src[i].len;
  }
  const bool ok = g.check_tag(expected);
  if (!ok && total > 0) std::memset(dst, 0, total);
  return ok;
}

bool seal_scatter(const uint8_t* key, const uint8_t* nonce, const uint8_t* src, size_t len, const OutSpan* dst,
                  size_t count) {
  Gcm g(key, nonce, nullptr, 0);
  size_t i = 0, off = 0;  // where the next output byte goes: dst[i].data + off
  if (!scatter_walk(len, dst, count, i, off, [&](size_t from, uint8_t* to, size_t n) { return g.encrypt(src + from, n, to), true; }))
    return false;
  uint8_t tag[TAG_BYTES];
  g.seal_tag(tag);
  return scatter_bytes(tag, TAG_BYTES, dst, count, i, off);
}

bool gmac(const uint8_t* key, const uint8_t* nonce, const uint8_t* data, size_t len, uint8_t* tag) {
  IMB_MGR* m = manager();
  const struct gcm_key_data* k = expand(key);
  struct gcm_context_data ctx;
  IMB_AES256_GMAC_INIT(m, k, &ctx, nonce, NONCE_BYTES);
  if (len) IMB_AES256_GMAC_UPDATE(m, k, &ctx, data, len);
  IMB_AES256_GMAC_FINALIZE(m, k, &ctx, tag, TAG_BYTES);
  imb_clear_mem(&ctx, sizeof ctx);
  return true;
}

}  // namespace imb
}  // namespace hsmgcm

#else  // built without the library: never available, so none of the calls below is reached

namespace hsmgcm {
namespace imb {
bool available() { return false; }
bool seal(const uint8_t*, const uint8_t*, const uint8_t*, size_t, const uint8_t*, size_t, uint8_t*, uint8_t*) { return false; }
bool open(const uint8_t*, const uint8_t*, const uint8_t*, size_t, const uint8_t*, size_t, uint8_t*, const uint8_t*) { return false; }
bool seal_v(const uint8_t*, const uint8_t*, const Span*, size_t, uint8_t*, uint8_t*) { return false; }
bool open_v(const uint8_t*, const uint8_t*, const Span*, size_t, uint8_t*, const uint8_t*) { return false; }
bool seal_scatter(const uint8_t*, const uint8_t*, const uint8_t*, size_t, const OutSpan*, size_t) { return false; }
bool gmac(const uint8_t*, const uint8_t*, const uint8_t*, size_t, uint8_t*) { return false; }
}  // namespace imb
}  // namespace hsmgcm

#endif
