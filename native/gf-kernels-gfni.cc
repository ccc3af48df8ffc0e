// AVX-512 + GFNI kernel: 64 bytes at a time, one VGF2P8AFFINEQB per product. The affine form (an 8x8 bit
// matrix per coefficient) is used rather than VGF2P8MULB because MULB is fixed to the AES polynomial 0x11B,
// while this codec's field is 0x11D. 8 output rows per pass (32 ZMM registers).
#include <cstdint>
#include <cstring>
#include "gf-core.h"
#if HSMEC_X86
#include <immintrin.h>
namespace hsmec {
#define HSMEC_TARGET "avx512f,avx512bw,avx512vl,gfni"
#define HSMEC_VEC __m512i
#define HSMEC_VBYTES 64
#define HSMEC_UNROLL 2
#define HSMEC_GROUP_MAX 8
#define HSMEC_GROUPS GroupTable<1, 2, 3, 4, 5, 6, 7, 8>
#define HSMEC_CONSTS (void)0
#define HSMEC_LOAD(p) _mm512_loadu_si512(p)
#define HSMEC_STORE(p, v) _mm512_storeu_si512(p, v)
#define HSMEC_ZERO() _mm512_setzero_si512()
#define HSMEC_XOR(a, b) _mm512_xor_si512(a, b)
#define HSMEC_SPLIT(x) (void)0
#define HSMEC_MASKED 1
#define HSMEC_LOAD_MASKED(m, p) _mm512_maskz_loadu_epi8(m, p)
#define HSMEC_STORE_MASKED(p, m, v) _mm512_mask_storeu_epi8(p, m, v)
#define HSMEC_MUL(tr, x) _mm512_gf2p8affine_epi64_epi8(x, _mm512_set1_epi64(load_affine(tr)), 0)
namespace {
inline long long load_affine(const uint8_t* tr) {
  long long a;
  std::memcpy(&a, tr + 32, sizeof a);
  return a;
}
}  // namespace
#define HSMEC_ENTRY mul_gfni
#include "gf-kernels-simd.inc"
}  // namespace hsmec
#endif
