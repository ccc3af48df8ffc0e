// AES-256-GCM into caller-provided memory, through the OpenSSL that Node itself links (EVP API, symbols resolved
// from the node binary at load) or, where it has VAES kernels, intel-ipsec-mb (gcm-imb.cc). No N-API types here.
// Per-thread state only (a cipher context, a key expansion), so the addon is safe in worker threads without locks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace hsmgcm {

constexpr size_t KEY_BYTES = 32;    // AES-256
constexpr size_t NONCE_BYTES = 12;  // 96-bit IV, NIST SP 800-38D §8.2
constexpr size_t TAG_BYTES = 16;    // full tag, NIST SP 800-38D §5.2.1.2

constexpr size_t NONCE_PREFIX_BYTES = 7;

// Which implementation seals and opens. The default is the fastest this build and CPU have; set_kernel (tests,
// benchmarks) switches the whole process and is refused for one that is not available. Both give the same bytes.
enum class Kernel { OpenSsl, IpsecMb };
bool kernel_available(Kernel k);
Kernel kernel();
bool set_kernel(Kernel k);

// An object segment's nonce: the object's 7-byte prefix, the segment index (u32 BE), 1 for the object's last segment.
inline void segment_nonce(const uint8_t* prefix, uint32_t index, bool last, uint8_t* nonce) {
  for (size_t i = 0; i < NONCE_PREFIX_BYTES; i++) nonce[i] = prefix[i];
  nonce[7] = static_cast<uint8_t>(index >> 24);
  nonce[8] = static_cast<uint8_t>(index >> 16);
  nonce[9] = static_cast<uint8_t>(index >> 8);
  nonce[10] = static_cast<uint8_t>(index);
  nonce[11] = last ? 1 : 0;
}

// ciphertext of src[0..len) into dst (may equal src), tag into tag. False if OpenSSL fails.
bool seal(const uint8_t* key, const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* src, size_t len,
          uint8_t* dst, uint8_t* tag);

// Plaintext of src[0..len) into dst (may equal src) if `tag` verifies; otherwise dst is zeroed and false returned.
bool open(const uint8_t* key, const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* src, size_t len,
          uint8_t* dst, const uint8_t* tag);

// A piece of a gathered input.
struct Span {
  const uint8_t* data;
  size_t len;
};

// seal/open over input gathered from consecutive spans (a segment that straddles the caller's chunks is read
// where it lies). dst must not overlap any span. open_v zeroes dst[0..total) and returns false on a bad tag.
bool seal_v(const uint8_t* key, const uint8_t* nonce, const Span* src, size_t count, uint8_t* dst, uint8_t* tag);
bool open_v(const uint8_t* key, const uint8_t* nonce, const Span* src, size_t count, uint8_t* dst, const uint8_t* tag);

// A piece of a scattered output.
struct OutSpan {
  uint8_t* data;
  size_t len;
};

// Walks n bytes of output across the spans from dst[i].data + off on, calling put(from, to, piece) for each piece
// (from = bytes already placed); false if the spans run out or put fails.
template <class Put>
bool scatter_walk(size_t n, const OutSpan* dst, size_t count, size_t& i, size_t& off, Put put) {
  for (size_t t = 0; t < n;) {
    if (i >= count) return false;
    const size_t piece = dst[i].len - off < n - t ? dst[i].len - off : n - t;
    if (!put(t, dst[i].data + off, piece)) return false;
    t += piece;
    off += piece;
    if (off == dst[i].len) i++, off = 0;
  }
  return true;
}

// Copies n bytes across the spans (a tag after its ciphertext).
inline bool scatter_bytes(const uint8_t* bytes, size_t n, const OutSpan* dst, size_t count, size_t& i, size_t& off) {
  return scatter_walk(n, dst, count, i, off, [bytes](size_t from, uint8_t* to, size_t piece) {
    std::memcpy(to, bytes + from, piece);
    return true;
  });
}

// seal of src[0..len) with the ciphertext and then the tag written across the consecutive spans of dst (which
// cover len + TAG_BYTES bytes): a segment that straddles chunks is written where each piece belongs, not copied.
bool seal_scatter(const uint8_t* key, const uint8_t* nonce, const uint8_t* src, size_t len, const OutSpan* dst,
                  size_t count);

// GMAC: the GCM tag of `data` as AAD with no plaintext (NIST SP 800-38D §3).
bool gmac(const uint8_t* key, const uint8_t* nonce, const uint8_t* data, size_t len, uint8_t* tag);

// HMAC-SHA256 (RFC 2104) of the concatenated parts into out (32 bytes); keys of at most 64 bytes (false otherwise).
bool hmac_sha256(const uint8_t* key, size_t key_len, const Span* parts, size_t count, uint8_t* out);

// HKDF-SHA256 (RFC 5869) with one extract and two one-block expands:
//   PRK = HMAC(salt, ikm); outX = HMAC(PRK, labelX ‖ core ‖ context ‖ 0x01), 32 bytes each. PRK is wiped.
bool hkdf_two(const uint8_t* ikm, size_t ikm_len, const uint8_t* salt, size_t salt_len, const uint8_t* label_a,
              size_t label_a_len, const uint8_t* label_b, size_t label_b_len, const uint8_t* core, size_t core_len,
              const uint8_t* context, size_t context_len, uint8_t* out_a, uint8_t* out_b);

}  // namespace hsmgcm
