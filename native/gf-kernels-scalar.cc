// Portable GF(2^8) matrix multiply: the fallback on every CPU and the tail of each SIMD kernel.
#include "gf-core.h"

namespace hsmec {

void expand_tables(const uint8_t* matrix, int rows, int k, uint8_t* tables) {
  for (int i = 0; i < rows * k; i++) {
    const uint8_t c = matrix[i];
    uint8_t* t = tables + static_cast<size_t>(i) * COEF_TABLE_BYTES;
    for (int x = 0; x < 16; x++) {
      t[x] = GF.mul[c][x];
      t[16 + x] = GF.mul[c][x << 4];
    }
    // GF2P8AFFINEQB: result bit i = parity(matrix byte (7-i) AND x), so byte (7-i) holds, for each input
    // bit j, bit i of c*2^j (the image of basis vector j under "multiply by c").
    uint64_t affine = 0;
    for (int i2 = 0; i2 < 8; i2++) {
      unsigned row = 0;
      for (int j = 0; j < 8; j++) row |= ((GF.mul[c][1u << j] >> i2) & 1u) << j;
      affine |= static_cast<uint64_t>(row) << (8 * (7 - i2));
    }
    for (int b = 0; b < 8; b++) t[32 + b] = static_cast<uint8_t>(affine >> (8 * b));
    t[40] = c;
    for (int b = 41; b < 48; b++) t[b] = 0;
  }
}

void scalar_group(size_t off, size_t n, int k, int g, const uint8_t* tables, const uint8_t* const* in,
                  uint8_t* const* out) {
  if (n == 0) return;
  for (int r = 0; r < g; r++) {
    uint8_t* o = out[r] + off;
    for (int j = 0; j < k; j++) {
      const uint8_t* row = GF.mul[tables[(static_cast<size_t>(r) * k + j) * COEF_TABLE_BYTES + 40]];
      const uint8_t* s = in[j] + off;
      if (j == 0)
        for (size_t i = 0; i < n; i++) o[i] = row[s[i]];
      else
        for (size_t i = 0; i < n; i++) o[i] ^= row[s[i]];
    }
  }
}

void mul_scalar(size_t len, int k, int rows, const uint8_t* tables, const uint8_t* const* in, uint8_t* const* out) {
  // Row by row within L1-sized chunks, so inputs are re-read from cache for each output row.
  constexpr size_t SCALAR_CHUNK_BYTES = 4096;
  for (size_t off = 0; off < len; off += SCALAR_CHUNK_BYTES) {
    const size_t n = len - off < SCALAR_CHUNK_BYTES ? len - off : SCALAR_CHUNK_BYTES;
    scalar_group(off, n, k, rows, tables, in, out);
  }
}

}  // namespace hsmec
