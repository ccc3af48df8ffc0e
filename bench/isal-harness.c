/* ISA-L comparison harness for bench/erasure.mjs (compiled by it with `cc -O2 ... -lisal`).
 * Usage: isal-harness k m shard_bytes lost sample_ms samples
 * Same data as the JS side (xorshift32, seed 12345, shard 0 first). Times ec_encode_data with tables built
 * once and output buffers reused, for encode (m parity rows) and for rebuilding `lost` data shards (the first
 * ones) from the next k survivors. Prints one JSON line: medians in GB/s of data (k * shard_bytes per call)
 * and FNV-1a-32 digests of the parity and of the rebuilt shards, which the JS side checks against its own. */
#include <isa-l/erasure_code.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static uint32_t fnv(uint32_t h, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x01000193u;
  return h;
}

/* Median GB/s over `samples` samples of at least sample_ms each. */
static double bench(int len, int k, int rows, unsigned char *g, unsigned char **in, unsigned char **out,
                    double sample_ms, int samples) {
  double *r = malloc(sizeof(double) * samples);
  int iters = 1;
  for (;;) { /* calibrate */
    double t0 = now();
    for (int i = 0; i < iters; i++) ec_encode_data(len, k, rows, g, in, out);
    double dt = now() - t0;
    if (dt * 1000 >= sample_ms) break;
    iters *= 2;
  }
  for (int s = 0; s < samples; s++) {
    double t0 = now();
    for (int i = 0; i < iters; i++) ec_encode_data(len, k, rows, g, in, out);
    r[s] = (double)k * len * iters / (now() - t0) / 1e9;
  }
  qsort(r, samples, sizeof(double), cmp);
  double med = r[samples / 2];
  free(r);
  return med;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s k m shard_bytes lost sample_ms samples\n", argv[0]);
    return 2;
  }
  const int k = atoi(argv[1]), m = atoi(argv[2]), len = atoi(argv[3]), lost = atoi(argv[4]);
  const double sample_ms = atof(argv[5]);
  const int samples = atoi(argv[6]);
  if (k < 1 || m < 1 || k + m > 255 || len < 1 || lost < 1 || lost > m || lost > k) return 2;
  unsigned char *shards[256], *rebuilt[256];
  uint32_t x = 12345;
  for (int i = 0; i < k + m; i++) {
    if (posix_memalign((void **)&shards[i], 64, len)) return 1;
    memset(shards[i], 0, len);
  }
  for (int j = 0; j < k; j++)
    for (int i = 0; i < len; i++) {
      x ^= x << 13; x ^= x >> 17; x ^= x << 5;
      shards[j][i] = (unsigned char)x;
    }
  unsigned char *a = malloc((size_t)(k + m) * k), *g = malloc((size_t)32 * k * (k + m));
  gf_gen_cauchy1_matrix(a, k + m, k);
  ec_init_tables(k, m, &a[k * k], g);
  double enc = bench(len, k, m, g, shards, &shards[k], sample_ms, samples);
  uint32_t ph = 0x811c9dc5u;
  for (int p = 0; p < m; p++) ph = fnv(ph, shards[k + p], len);

  /* Lose data shards 0..lost-1; survivors are the next k shards in index order. */
  unsigned char b[256 * 256], inv[256 * 256], dm[256 * 256], *src[256];
  for (int r = 0; r < k; r++) {
    memcpy(&b[r * k], &a[(lost + r) * k], k);
    src[r] = shards[lost + r];
  }
  if (gf_invert_matrix(b, inv, k)) return 1;
  for (int r = 0; r < lost; r++) memcpy(&dm[r * k], &inv[r * k], k);
  ec_init_tables(k, lost, dm, g);
  for (int r = 0; r < lost; r++)
    if (posix_memalign((void **)&rebuilt[r], 64, len)) return 1;
  double dec = bench(len, k, lost, g, src, rebuilt, sample_ms, samples);
  int ok = 1;
  for (int r = 0; r < lost; r++) ok &= memcmp(rebuilt[r], shards[r], len) == 0;
  printf("{\"encodeGBps\":%.4f,\"reconstructGBps\":%.4f,\"parityFnv\":\"%08x\",\"rebuiltOk\":%s}\n", enc, dec,
         ph, ok ? "true" : "false");
  return 0;
}
