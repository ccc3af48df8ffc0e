// AES-256-GCM through OpenSSL's EVP interface (see gcm.h). Long inputs are fed in pieces below INT_MAX, the
// limit of EVP's int lengths.
#include "gcm.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include <climits>
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

bool init(EVP_CIPHER_CTX* ctx, bool encrypt, const uint8_t* key, const uint8_t* nonce) {
  // A reused context keeps the cipher; only key and IV change. The IV length is set before the IV (default 12).
  if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr, encrypt ? 1 : 0) != 1) return false;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(NONCE_BYTES), nullptr) != 1) return false;
  return EVP_CipherInit_ex(ctx, nullptr, nullptr, key, nonce, encrypt ? 1 : 0) == 1;
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

}  // namespace

bool seal(const uint8_t* key, const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* src, size_t len,
          uint8_t* dst, uint8_t* tag) {
  EVP_CIPHER_CTX* ctx = thread_ctx();
  if (!ctx || !init(ctx, true, key, nonce) || !feed_aad(ctx, aad, aad_len) || !feed(ctx, src, len, dst)) return false;
  int out = 0;
  uint8_t final_block[16];
  if (EVP_EncryptFinal_ex(ctx, final_block, &out) != 1 || out != 0) return false;
  return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(TAG_BYTES), tag) == 1;
}

bool open(const uint8_t* key, const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* src, size_t len,
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

bool seal_v(const uint8_t* key, const uint8_t* nonce, const Span* src, size_t count, uint8_t* dst, uint8_t* tag) {
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

bool open_v(const uint8_t* key, const uint8_t* nonce, const Span* src, size_t count, uint8_t* dst, const uint8_t* tag) {
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

bool gmac(const uint8_t* key, const uint8_t* nonce, const uint8_t* data, size_t len, uint8_t* tag) {
  EVP_CIPHER_CTX* ctx = thread_ctx();
  if (!ctx || !init(ctx, true, key, nonce) || !feed_aad(ctx, data, len)) return false;
  int out = 0;
  uint8_t final_block[16];
  if (EVP_EncryptFinal_ex(ctx, final_block, &out) != 1) return false;
  return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(TAG_BYTES), tag) == 1;
}

namespace {

// One HMAC-SHA256 context per thread, fetched once: OpenSSL 3's one-shot HMAC() fetches the algorithm on every
// call, which costs more than the hashing of these short inputs.
struct MacFree {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};

EVP_MAC_CTX* thread_hmac() {
  thread_local std::unique_ptr<EVP_MAC_CTX, MacFree> ctx([] {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (!mac) return static_cast<EVP_MAC_CTX*>(nullptr);
    EVP_MAC_CTX* c = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);  // the context keeps its own reference
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end()};
    if (c && EVP_MAC_CTX_set_params(c, params) != 1) {
      EVP_MAC_CTX_free(c);
      c = nullptr;
    }
    return c;
  }());
  return ctx.get();
}

struct Part {
  const uint8_t* data;
  size_t len;
};

bool hmac_sha256(const uint8_t* key, size_t key_len, const Part* parts, size_t count, uint8_t* out) {
  EVP_MAC_CTX* ctx = thread_hmac();
  if (!ctx || EVP_MAC_init(ctx, key, key_len, nullptr) != 1) return false;
  for (size_t i = 0; i < count; i++)
    if (parts[i].len && EVP_MAC_update(ctx, parts[i].data, parts[i].len) != 1) return false;
  size_t n = 0;
  return EVP_MAC_final(ctx, out, &n, 32) == 1 && n == 32;
}

}  // namespace

bool hkdf_two(const uint8_t* ikm, size_t ikm_len, const uint8_t* salt, size_t salt_len, const uint8_t* label_a,
              size_t label_a_len, const uint8_t* label_b, size_t label_b_len, const uint8_t* core, size_t core_len,
              const uint8_t* context, size_t context_len, uint8_t* out_a, uint8_t* out_b) {
  static const uint8_t ONE = 0x01;
  uint8_t prk[32];
  const Part extract[] = {{ikm, ikm_len}};
  bool ok = hmac_sha256(salt, salt_len, extract, 1, prk);
  const Part info_a[] = {{label_a, label_a_len}, {core, core_len}, {context, context_len}, {&ONE, 1}};
  const Part info_b[] = {{label_b, label_b_len}, {core, core_len}, {context, context_len}, {&ONE, 1}};
  ok = ok && hmac_sha256(prk, sizeof prk, info_a, 4, out_a) && hmac_sha256(prk, sizeof prk, info_b, 4, out_b);
  OPENSSL_cleanse(prk, sizeof prk);
  return ok;
}

}  // namespace hsmgcm
