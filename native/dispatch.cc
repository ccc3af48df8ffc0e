// Picks the GF kernel once, at load: CPUID (through GCC's __builtin_cpu_supports, which also checks that the
// OS saves the wider registers) and the HSM_EC_KERNEL override. The result is immutable after first use.
#include <cstdlib>
#include <cstring>
#include "gf-core.h"

namespace hsmec {
namespace {

struct Registry {
  KernelInfo kernels[KERNEL_COUNT];
  int best;
  int chosen;
  const char* requested;
};

Registry detect() {
  Registry reg{};
#if HSMEC_X86
  __builtin_cpu_init();
  const bool gfni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("gfni");
  const bool avx2 = __builtin_cpu_supports("avx2");
  const bool ssse3 = __builtin_cpu_supports("ssse3");
  reg.kernels[0] = {"gfni", mul_gfni, gfni};
  reg.kernels[1] = {"avx2", mul_avx2, avx2};
  reg.kernels[2] = {"ssse3", mul_ssse3, ssse3};
#else
  reg.kernels[0] = {"gfni", mul_scalar, false};
  reg.kernels[1] = {"avx2", mul_scalar, false};
  reg.kernels[2] = {"ssse3", mul_scalar, false};
#endif
  reg.kernels[3] = {"scalar", mul_scalar, true};
  reg.best = 3;
  for (int i = KERNEL_COUNT - 1; i >= 0; i--)
    if (reg.kernels[i].supported) reg.best = i;
  const char* env = std::getenv("HSM_EC_KERNEL");
  reg.requested = env ? env : "";
  reg.chosen = reg.best;
  for (int i = 0; i < KERNEL_COUNT; i++)
    if (env && std::strcmp(env, reg.kernels[i].name) == 0 && reg.kernels[i].supported) reg.chosen = i;
  return reg;
}

const Registry& registry() {
  static const Registry reg = detect();  // thread-safe one-time initialisation (C++11 magic statics)
  return reg;
}

}  // namespace

const KernelInfo* kernel_table() { return registry().kernels; }
int default_kernel() { return registry().chosen; }
int best_kernel() { return registry().best; }
const char* requested_kernel() { return registry().requested; }
int kernel_index(const char* name) {
  for (int i = 0; i < KERNEL_COUNT; i++)
    if (std::strcmp(name, registry().kernels[i].name) == 0) return i;
  return -1;
}

}  // namespace hsmec
