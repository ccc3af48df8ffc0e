// The intel-ipsec-mb backend of gcm.h (gcm-imb.cc): the same calls, the same bytes. available() says whether this
// build has it and this CPU runs its VAES kernels; the other calls are only made when it is.
#pragma once
#include "gcm.h"

namespace hsmgcm {
namespace imb {

bool available();
bool seal(const uint8_t* key, const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* src, size_t len,
          uint8_t* dst, uint8_t* tag);
bool open(const uint8_t* key, const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* src, size_t len,
          uint8_t* dst, const uint8_t* tag);
bool seal_v(const uint8_t* key, const uint8_t* nonce, const Span* src, size_t count, uint8_t* dst, uint8_t* tag);
bool open_v(const uint8_t* key, const uint8_t* nonce, const Span* src, size_t count, uint8_t* dst, const uint8_t* tag);
bool seal_scatter(const uint8_t* key, const uint8_t* nonce, const uint8_t* src, size_t len, const OutSpan* dst,
                  size_t count);
bool gmac(const uint8_t* key, const uint8_t* nonce, const uint8_t* data, size_t len, uint8_t* tag);

}  // namespace imb
}  // namespace hsmgcm
