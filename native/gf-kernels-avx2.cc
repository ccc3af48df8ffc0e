// AVX2 kernel: 32 bytes at a time, products by PSHUFB lookups of the low and high nibble (the method of
// ISA-L's gf_vect_dot_prod_avx2 and klauspost/reedsolomon), 6 output rows per pass.
#include "gf-core.h"
#if HSMEC_X86
#include <immintrin.h>
namespace hsmec {
#define HSMEC_TARGET "avx2"
#define HSMEC_VEC __m256i
#define HSMEC_VBYTES 32
#define HSMEC_UNROLL 1
#define HSMEC_GROUP_MAX 6
#define HSMEC_GROUPS GroupTable<1, 2, 3, 4, 5, 6>
#define HSMEC_CONSTS const __m256i mask = _mm256_set1_epi8(0x0f)
#define HSMEC_LOAD(p) _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
#define HSMEC_STORE(p, v) _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v)
#define HSMEC_ZERO() _mm256_setzero_si256()
#define HSMEC_XOR(a, b) _mm256_xor_si256(a, b)
#define HSMEC_SPLIT(x)                          \
  const __m256i lo = _mm256_and_si256(x, mask); \
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi64(x, 4), mask)
#define HSMEC_MUL(tr, x)                                                                                     \
  _mm256_xor_si256(                                                                                          \
      _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tr))), lo), \
      _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>((tr) + 16))), hi))
#define HSMEC_ENTRY mul_avx2
#include "gf-kernels-simd.inc"
}  // namespace hsmec
#endif
