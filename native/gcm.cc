// AES-256-GCM (see gcm.h) through OpenSSL's EVP interface, or through intel-ipsec-mb where that has VAES kernels
// (gcm-imb.cc; chosen once per process, HSM_GCM_KERNEL=openssl keeps OpenSSL). Long inputs are fed to EVP in
// pieces below INT_MAX, the limit of its int lengths.
#include "gcm.h"
#include "gcm-imb.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/sha.h>  // SHA256_Init & co.: deprecated in OpenSSL 3 but exported by Node, and what HMAC needs

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace hsmgcm {
namespace {

constexpr size_t PIECE_BYTES = 1u << 30;

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};

EVP_CIPHER_CTX* thread_ctx() {
  thread_local std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
  return ctx.get();
}

// Fetched once: EVP_aes_256_gcm() makes every EVP_CipherInit_ex look the provider's implementation up again (a
// lock and a hash lookup: a large share of sealing a small buffer under OpenSSL 3).
const EVP_CIPHER* aes_256_gcm() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

bool init(EVP_CIPHER_CTX* ctx, bool encrypt, const uint8_t* key, const uint8_t* nonce) {
  // A reused context keeps the cipher (set once per thread); only key, IV and direction change. IV: 12 bytes, the default.
  const EVP_CIPHER* cipher = aes_256_gcm();
  if (!cipher) return false;
  const bool fresh = EVP_CIPHER_CTX_get0_cipher(ctx) != cipher;
  return EVP_CipherInit_ex2(ctx, fresh ? cipher : nullptr, key, nonce, encrypt ? 1 : 0, nullptr) == 1;
}

bool feed_aad(EVP_CIPHER_CTX* ctx, const uint8_t* aad, size_t len) {
  int out = 0;
  for (size_t at = 0; at < len; at += PIECE_BYTES) {
    const size_t n = len - at < PIECE_BYTES ? len - at : PIECE_BYTES;
    if (EVP_CipherUpdate(ctx, nullptr, &out, aad + at, static_cast<int>(n)) != 1) return false;
  }
  return true;
}

bool feed(EVP_CIPHER_CTX* ctx, const uint8_t* src, size_t len, uint8_t* dst) {
  int out = 0;
  for (size_t at = 0; at < len; at += PIECE_BYTES) {
    const size_t n = len - at < PIECE_BYTES ? len - at : PIECE_BYTES;
    if (EVP_CipherUpdate(ctx, dst + at, &out, src + at, static_cast<int>(n)) != 1 || static_cast<size_t>(out) != n) return false;
  }
  return true;
}

bool ossl_seal(const uint8_t* key, const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* src, size_t len,
          uint8_t* dst, uint8_t* tag) {
  EVP_CIPHER_CTX* ctx = thread_ctx();
  if (!ctx || !init(ctx, true, key, nonce) || !feed_aad(ctx, aad, aad_len) || !feed(ctx, src, len, dst)) return false;
  int out = 0;
  uint8_t final_block[16];
  if (EVP_EncryptFinal_ex(ctx, final_block, &out) != 1 || out != 0) return false;
  return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(TAG_BYTES), tag) == 1;
}

bool ossl_open(const uint8_t* key, const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* src, size_t len,
          uint8_t* dst, const uint8_t* tag) {
  EVP_CIPHER_CTX* ctx = thread_ctx();
  uint8_t expected[TAG_BYTES];
  std::memcpy(expected, tag, TAG_BYTES);  // the tag may sit in memory that dst overwrites
  bool ok = ctx && init(ctx, false, key, nonce) &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(TAG_BYTES), expected) == 1 &&
            feed_aad(ctx, aad, aad_len) && feed(ctx, src, len, dst);
  if (ok) {
    int out = 0;
    uint8_t final_block[16];
    ok = EVP_DecryptFinal_ex(ctx, final_block, &out) == 1;  // the tag check
  }
  if (!ok && len > 0) std::memset(dst, 0, len);  // never leave unauthenticated plaintext behind
  return ok;
}

bool ossl_seal_v(const uint8_t* key, const uint8_t* nonce, const Span* src, size_t count, uint8_t* dst, uint8_t* tag) {
  EVP_CIPHER_CTX* ctx = thread_ctx();
  if (!ctx || !init(ctx, true, key, nonce)) return false;
  for (size_t i = 0; i < count; i++) {
    if (!feed(ctx, src[i].data, src[i].len, dst)) return false;
    dst += src[i].len;
  }
  int out = 0;
  uint8_t final_block[16];
  if (EVP_EncryptFinal_ex(ctx, final_block, &out) != 1 || out != 0) return false;
  return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(TAG_BYTES), tag) == 1;
}

bool ossl_open_v(const uint8_t* key, const uint8_t* nonce, const Span* src, size_t count, uint8_t* dst, const uint8_t* tag) {
  EVP_CIPHER_CTX* ctx = thread_ctx();
  uint8_t expected[TAG_BYTES];
  std::memcpy(expected, tag, TAG_BYTES);
  size_t total = 0;
  bool ok = ctx && init(ctx, false, key, nonce) &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(TAG_BYTES), expected) == 1;
  for (size_t i = 0; ok && i < count; i++) {
    ok = feed(ctx, src[i].data, src[i].len, dst + total);
    total += src[i].len;
  }
  if (ok) {
    int out = 0;
    uint8_t final_block[16];
    ok = EVP_DecryptFinal_ex(ctx, final_block, &out) == 1;
  }
  if (!ok) {
    total = 0;
    for (size_t i = 0; i < count; i++) total += src[i].len;
    if (total > 0) std::memset(dst, 0, total);
  }
  return ok;
}

bool ossl_seal_scatter(const uint8_t* key, const uint8_t* nonce, const uint8_t* src, size_t len, const OutSpan* dst,
                  size_t count) {
  EVP_CIPHER_CTX* ctx = thread_ctx();
  if (!ctx || !init(ctx, true, key, nonce)) return false;
  size_t i = 0, off = 0;  // where the next output byte goes: dst[i].data + off
  // GCM outputs every input byte at once (a stream mode), so updates may split anywhere.
  if (!scatter_walk(len, dst, count, i, off, [&](size_t from, uint8_t* to, size_t n) { return feed(ctx, src + from, n, to); }))
    return false;
  int out = 0;
  uint8_t final_block[16];
  uint8_t tag[TAG_BYTES];
  if (EVP_EncryptFinal_ex(ctx, final_block, &out) != 1 || out != 0 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(TAG_BYTES), tag) != 1)
    return false;
  return scatter_bytes(tag, TAG_BYTES, dst, count, i, off);
}

bool ossl_gmac(const uint8_t* key, const uint8_t* nonce, const uint8_t* data, size_t len, uint8_t* tag) {
  EVP_CIPHER_CTX* ctx = thread_ctx();
  if (!ctx || !init(ctx, true, key, nonce) || !feed_aad(ctx, data, len)) return false;
  int out = 0;
  uint8_t final_block[16];
  if (EVP_EncryptFinal_ex(ctx, final_block, &out) != 1) return false;
  return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(TAG_BYTES), tag) == 1;
}

std::atomic<Kernel> g_kernel{[] {
  const char* forced = std::getenv("HSM_GCM_KERNEL");
  if (forced && std::strcmp(forced, "openssl") == 0) return Kernel::OpenSsl;
  return imb::available() ? Kernel::IpsecMb : Kernel::OpenSsl;
}()};

bool use_imb() { return g_kernel.load(std::memory_order_relaxed) == Kernel::IpsecMb; }

}  // namespace

bool kernel_available(Kernel k) { return k == Kernel::OpenSsl || imb::available(); }

Kernel kernel() { return g_kernel.load(std::memory_order_relaxed); }

bool set_kernel(Kernel k) {
  if (!kernel_available(k)) return false;
  g_kernel.store(k, std::memory_order_relaxed);
  return true;
}

bool seal(const uint8_t* key, const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* src, size_t len,
          uint8_t* dst, uint8_t* tag) {
  return use_imb() ? imb::seal(key, nonce, aad, aad_len, src, len, dst, tag) : ossl_seal(key, nonce, aad, aad_len, src, len, dst, tag);
}

bool open(const uint8_t* key, const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* src, size_t len,
          uint8_t* dst, const uint8_t* tag) {
  return use_imb() ? imb::open(key, nonce, aad, aad_len, src, len, dst, tag) : ossl_open(key, nonce, aad, aad_len, src, len, dst, tag);
}

bool seal_v(const uint8_t* key, const uint8_t* nonce, const Span* src, size_t count, uint8_t* dst, uint8_t* tag) {
  return use_imb() ? imb::seal_v(key, nonce, src, count, dst, tag) : ossl_seal_v(key, nonce, src, count, dst, tag);
}

bool open_v(const uint8_t* key, const uint8_t* nonce, const Span* src, size_t count, uint8_t* dst, const uint8_t* tag) {
  return use_imb() ? imb::open_v(key, nonce, src, count, dst, tag) : ossl_open_v(key, nonce, src, count, dst, tag);
}

bool seal_scatter(const uint8_t* key, const uint8_t* nonce, const uint8_t* src, size_t len, const OutSpan* dst,
                  size_t count) {
  return use_imb() ? imb::seal_scatter(key, nonce, src, len, dst, count) : ossl_seal_scatter(key, nonce, src, len, dst, count);
}

bool gmac(const uint8_t* key, const uint8_t* nonce, const uint8_t* data, size_t len, uint8_t* tag) {
  return use_imb() ? imb::gmac(key, nonce, data, len, tag) : ossl_gmac(key, nonce, data, len, tag);
}

// HMAC-SHA256 (RFC 2104) on OpenSSL's SHA-256 block functions: EVP_MAC (and node:crypto's createHmac) cost several
// times the hashing of these short inputs (parameter lookups on every init).
bool hmac_sha256(const uint8_t* key, size_t key_len, const Span* parts, size_t count, uint8_t* out) {
  constexpr size_t BLOCK = 64;
  if (key_len > BLOCK) return false;
  uint8_t pad[BLOCK];
  SHA256_CTX inner, outer;
  std::memset(pad, 0x36, BLOCK);
  for (size_t i = 0; i < key_len; i++) pad[i] ^= key[i];
  SHA256_Init(&inner);
  SHA256_Update(&inner, pad, BLOCK);
  for (size_t i = 0; i < count; i++)
    if (parts[i].len) SHA256_Update(&inner, parts[i].data, parts[i].len);
  uint8_t digest[32];
  SHA256_Final(digest, &inner);
  for (size_t i = 0; i < BLOCK; i++) pad[i] ^= 0x36 ^ 0x5c;
  SHA256_Init(&outer);
  SHA256_Update(&outer, pad, BLOCK);
  SHA256_Update(&outer, digest, sizeof digest);
  SHA256_Final(out, &outer);
  OPENSSL_cleanse(pad, sizeof pad);
  OPENSSL_cleanse(digest, sizeof digest);
  OPENSSL_cleanse(&inner, sizeof inner);
  OPENSSL_cleanse(&outer, sizeof outer);
  return true;
}

bool hkdf_two(const uint8_t* ikm, size_t ikm_len, const uint8_t* salt, size_t salt_len, const uint8_t* label_a,
              size_t label_a_len, const uint8_t* label_b, size_t label_b_len, const uint8_t* core, size_t core_len,
              const uint8_t* context, size_t context_len, uint8_t* out_a, uint8_t* out_b) {
  static const uint8_t ONE = 0x01;
  uint8_t prk[32];
  const Span extract[] = {{ikm, ikm_len}};
  bool ok = hmac_sha256(salt, salt_len, extract, 1, prk);
  const Span info_a[] = {{label_a, label_a_len}, {core, core_len}, {context, context_len}, {&ONE, 1}};
  const Span info_b[] = {{label_b, label_b_len}, {core, core_len}, {context, context_len}, {&ONE, 1}};
  ok = ok && hmac_sha256(prk, sizeof prk, info_a, 4, out_a) && hmac_sha256(prk, sizeof prk, info_b, 4, out_b);
  OPENSSL_cleanse(prk, sizeof prk);
  return ok;
}

}  // namespace hsmgcm
