// AES-256-GCM through OpenSSL's EVP interface (see gcm.h). Long inputs are fed in pieces below INT_MAX, the
// limit of EVP's int lengths.
#include "gcm.h"

#include <openssl/evp.h>

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

bool gmac(const uint8_t* key, const uint8_t* nonce, const uint8_t* data, size_t len, uint8_t* tag) {
  EVP_CIPHER_CTX* ctx = thread_ctx();
  if (!ctx || !init(ctx, true, key, nonce) || !feed_aad(ctx, data, len)) return false;
  int out = 0;
  uint8_t final_block[16];
  if (EVP_EncryptFinal_ex(ctx, final_block, &out) != 1) return false;
  return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(TAG_BYTES), tag) == 1;
}

}  // namespace hsmgcm
