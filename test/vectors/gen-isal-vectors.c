/* Generates test/vectors/isal-cauchy.json: ISA-L's gf_gen_cauchy1_matrix(k+m, k) and ec_encode_data parity
 * for deterministic data. Run once against libisal (Debian libisal-dev 2.30):
 *   cc -O2 -o /tmp/gen test/vectors/gen-isal-vectors.c -lisal && /tmp/gen > test/vectors/isal-cauchy.json
 * Data: shard j byte i is the next low byte of xorshift32 (Marsaglia 2003: x^=x<<13; x^=x>>17; x^=x<<5),
 * seeded per vector, filled shard 0 first. */
#include <isa-l/erasure_code.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void hex(const unsigned char *p, int n) {
  putchar('"');
  for (int i = 0; i < n; i++) printf("%02x", p[i]);
  putchar('"');
}

int main(void) {
  static const int shapes[][3] = {/* k, m, len */
                                  {1, 1, 33},  {4, 2, 67},  {8, 3, 100}, {10, 4, 131}, {17, 3, 64},
                                  {12, 0, 16}, {1, 255, 8}, {128, 128, 5}, {200, 56, 16}};
  const int count = sizeof shapes / sizeof shapes[0];
  printf("{\n  \"generator\": \"test/vectors/gen-isal-vectors.c against ISA-L 2.30 (libisal-dev)\",\n");
  printf("  \"prng\": \"xorshift32, seed = 0x9E3779B9 ^ (k << 16) ^ (m << 8) ^ len, low byte of each step\",\n");
  printf("  \"vectors\": [\n");
  for (int v = 0; v < count; v++) {
    const int k = shapes[v][0], m = shapes[v][1], len = shapes[v][2];
    unsigned char *a = malloc((size_t)(k + m) * k), *g = malloc((size_t)32 * k * (m ? m : 1));
    unsigned char **data = malloc(sizeof(*data) * k), **parity = malloc(sizeof(*parity) * (m ? m : 1));
    uint32_t x = 0x9E3779B9u ^ ((uint32_t)k << 16) ^ ((uint32_t)m << 8) ^ (uint32_t)len;
    for (int j = 0; j < k; j++) {
      data[j] = malloc(len);
      for (int i = 0; i < len; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        data[j][i] = (unsigned char)x;
      }
    }
    for (int p = 0; p < m; p++) parity[p] = calloc(len, 1);
    gf_gen_cauchy1_matrix(a, k + m, k);
    if (m > 0) {
      ec_init_tables(k, m, &a[k * k], g);
      ec_encode_data(len, k, m, g, data, parity);
    }
    printf("    { \"k\": %d, \"m\": %d, \"len\": %d,\n      \"cauchyParityRows\": ", k, m, len);
    hex(&a[k * k], m * k);
    printf(",\n      \"parity\": [");
    for (int p = 0; p < m; p++) {
      if (p) putchar(',');
      hex(parity[p], len);
    }
    printf("] }%s\n", v + 1 < count ? "," : "");
  }
  printf("  ]\n}\n");
  return 0;
}
