// Core of the native Reed-Solomon codec, free of any N-API type: GF(2^8) tables, the per-coefficient
// table layout every kernel reads, and the kernel entry points. addon.cc is the only file that knows JS.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hsmec {

// GF(2^8) reduction polynomial x^8+x^4+x^3+x^2+1 (0x11D), generator 2: the field of ISA-L's ec_base.c
// and of Plank's "A Tutorial on Reed-Solomon Coding" (1997).
constexpr unsigned GF_POLY = 0x11D;

struct GfTables {
  uint8_t exp[512];       // doubled so exp[log a + log b] needs no modulo
  uint8_t log[256];       // log[0] unused
  uint8_t mul[256][256];  // full product table for the scalar path (64 KiB, immutable)
};

constexpr GfTables make_gf_tables() {
  GfTables t{};
  unsigned x = 1;
  for (int i = 0; i < 255; i++) {
    t.exp[i] = static_cast<uint8_t>(x);
    t.exp[i + 255] = static_cast<uint8_t>(x);
    t.log[x] = static_cast<uint8_t>(i);
    x <<= 1;
    if (x & 0x100) x ^= GF_POLY;
  }
  t.exp[510] = t.exp[0];
  t.exp[511] = t.exp[1];
  for (int a = 1; a < 256; a++)
    for (int b = 1; b < 256; b++) t.mul[a][b] = t.exp[t.log[a] + t.log[b]];
  return t;
}

// Computed by the compiler: read-only data, nothing to initialise at load, safe in every worker thread.
inline constexpr GfTables GF = make_gf_tables();

// Per-coefficient tables, built once per coding matrix (expand_tables) and read by every kernel:
//   [0..16)  products c*x for x = 0..15           (PSHUFB low-nibble table)
//   [16..32) products c*(x<<4) for x = 0..15      (PSHUFB high-nibble table)
//   [32..40) 8x8 bit matrix of "multiply by c" for GF2P8AFFINEQB (Intel SDM vol. 2, GF2P8AFFINEQB)
//   [40]     c itself (scalar path)
constexpr size_t COEF_TABLE_BYTES = 48;

// The matrix is rows x k, row-major; tables must hold rows*k*COEF_TABLE_BYTES bytes.
void expand_tables(const uint8_t* matrix, int rows, int k, uint8_t* tables);

// outputs[r][0..len) = sum_j matrix[r][j] * inputs[j][0..len) over GF(2^8). Any length, any alignment.
using KernelFn = void (*)(size_t len, int k, int rows, const uint8_t* tables, const uint8_t* const* in,
                          uint8_t* const* out);

// Output rows [0, g) of one group over byte range [off, off+n): the scalar tail used by every SIMD kernel.
void scalar_group(size_t off, size_t n, int k, int g, const uint8_t* tables, const uint8_t* const* in,
                  uint8_t* const* out);

void mul_scalar(size_t len, int k, int rows, const uint8_t* tables, const uint8_t* const* in, uint8_t* const* out);
#if defined(__x86_64__) || defined(_M_X64)
#define HSMEC_X86 1
void mul_ssse3(size_t len, int k, int rows, const uint8_t* tables, const uint8_t* const* in, uint8_t* const* out);
void mul_avx2(size_t len, int k, int rows, const uint8_t* tables, const uint8_t* const* in, uint8_t* const* out);
void mul_gfni(size_t len, int k, int rows, const uint8_t* tables, const uint8_t* const* in, uint8_t* const* out);
#endif

// Length of the byte range each pass covers when rows need more than one group: inputs are re-read once
// per group, so k inputs of CHUNK bytes should stay in L2 (~512 KiB budget; Zen 4 has 1 MiB per core).
constexpr size_t L2_BUDGET_BYTES = 512 * 1024;
inline size_t chunk_bytes(int k, int rows, int group) {
  if (rows <= group) return SIZE_MAX;  // one pass over everything: no re-reading to keep in cache
  size_t c = L2_BUDGET_BYTES / static_cast<size_t>(k);
  if (c < 4096) c = 4096;
  return c & ~static_cast<size_t>(255);  // whole vectors of every width
}

// Kernel registry (dispatch.cc). Index order is preference order.
struct KernelInfo {
  const char* name;
  KernelFn fn;
  bool supported;
};
constexpr int KERNEL_COUNT = 4;
const KernelInfo* kernel_table();       // KERNEL_COUNT entries: gfni, avx2, ssse3, scalar
int default_kernel();                   // HSM_EC_KERNEL if valid and supported, else the best supported
int best_kernel();
const char* requested_kernel();         // raw HSM_EC_KERNEL value read at load ("" when unset)
int kernel_index(const char* name);     // -1 when unknown

}  // namespace hsmec
