// SSSE3 kernel: 16 bytes at a time, PSHUFB nibble lookups, 4 output rows per pass (16 XMM registers).
#include "gf-core.h"
#if HSMEC_X86
#include <immintrin.h>
namespace hsmec {
#define HSMEC_TARGET "ssse3"
#define HSMEC_VEC __m128i
#define HSMEC_VBYTES 16
#define HSMEC_UNROLL 1
#define HSMEC_GROUP_MAX 4
#define HSMEC_GROUPS GroupTable<1, 2, 3, 4>
#define HSMEC_CONSTS const __m128i mask = _mm_set1_epi8(0x0f)
#define HSMEC_LOAD(p) _mm_loadu_si128(reinterpret_cast<const __m128i*>(p))
#define HSMEC_STORE(p, v) _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v)
#define HSMEC_ZERO() _mm_setzero_si128()
#define HSMEC_XOR(a, b) _mm_xor_si128(a, b)
#define HSMEC_SPLIT(x)                    \
  const __m128i lo = _mm_and_si128(x, mask); \
  const __m128i hi = _mm_and_si128(_mm_srli_epi64(x, 4), mask)
#define HSMEC_MUL(tr, x)                                                                     \
  _mm_xor_si128(_mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tr)), lo), \
                _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>((tr) + 16)), hi))
#define HSMEC_ENTRY mul_ssse3
#include "gf-kernels-simd.inc"
}  // namespace hsmec
#endif
