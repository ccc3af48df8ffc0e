// Ceilings for issue #13 (bench/erasure-ceiling.mjs builds and runs this): what 10+4 erasure encoding can reach
// on this machine with 1 and 2 threads, without JS or the engine's dispatch in the way.
//   kernel      the GFNI kernel over one stripe again and again (data resident in L2/L3, as in pool-scaling.mjs)
//   read        an AVX-512 read of the same input bytes (no arithmetic): the cache bandwidth the kernel competes for
//   dram        the same read over 256 MiB (beyond L3): main-memory bandwidth
//   dispatch    the native pool's Help() on a job of 2 empty items: publish, a polling thread joins, completion
// Threads split columns (each reads its own byte range of every shard) and run free, with no per-stripe barrier.
// Prints one JSON object. Rates are bytes of input per second: wall, and per CPU second of all threads.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>
#include <time.h>

#include "executor.h"
#include "gf-core.h"

namespace {
double Now() { timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
double ThreadCpu() { timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

__attribute__((target("avx512f"))) uint64_t ReadXor(const uint8_t* const* in, int k, size_t n) {
  __m512i a = _mm512_setzero_si512(), b = a;
  for (size_t i = 0; i + 128 <= n; i += 128)
    for (int j = 0; j < k; j++) {
      a = _mm512_xor_si512(a, _mm512_loadu_si512(in[j] + i));
      b = _mm512_xor_si512(b, _mm512_loadu_si512(in[j] + i + 64));
    }
  return _mm_cvtsi128_si64(_mm512_castsi512_si128(_mm512_xor_si512(a, b)));
}

struct Rate { double wall_gbps, cpu_gbps; };

// Runs body(thread, reps) on `threads` threads (this one included) over their column share; bytes per rep each.
template <typename F>
Rate Run(int threads, double bytes_per_rep, int reps, F body) {
  std::atomic<int> go{0};
  std::vector<double> cpu(threads);
  auto work = [&](int t) {
    while (!go.load()) {}
    const double c0 = ThreadCpu();
    body(t, reps);
    cpu[t] = ThreadCpu() - c0;
  };
  std::vector<std::thread> others;
  for (int t = 1; t < threads; t++) others.emplace_back(work, t);
  const double t0 = Now();
  go = 1;
  work(0);
  for (auto& th : others) th.join();
  const double wall = Now() - t0;
  double sum = 0;
  for (double c : cpu) sum += c;
  return {bytes_per_rep * reps / wall / 1e9, bytes_per_rep * reps / sum / 1e9};
}

double Median(std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; }

// Two items: the caller takes item 0 and waits (up to 2 ms) for a pool thread to start item 1, so each call
// measures a real hand-over: publish, a pool thread claims, completion seen by the caller.
struct HandOverJob : hsmexec::Job {
  HandOverJob() : Job(2, 2) {}
  std::atomic<double> started{0};
  void Run(size_t i) override {
    if (i == 1) { started = Now(); return; }
    const double until = Now() + 2e-3;
    while (started.load() == 0 && Now() < until) {}
  }
};
}  // namespace

int main() {
  using namespace hsmec;
  const int k = 10, m = 4, rounds = 7;
  uint8_t mat[40];
  for (int i = 0; i < 40; i++) mat[i] = static_cast<uint8_t>(i * 37 + 3);
  std::vector<uint8_t> tables(40 * COEF_TABLE_BYTES);
  expand_tables(mat, m, k, tables.data());
  const KernelFn fn = kernel_table()[best_kernel()].fn;
  std::string json = "{\"kernel\":\"" + std::string(kernel_table()[best_kernel()].name) + "\",\"rows\":{";
  bool first = true;
  auto emit = [&](const std::string& name, const std::vector<Rate>& rs) {
    std::vector<double> w, c;
    for (auto& r : rs) w.push_back(r.wall_gbps), c.push_back(r.cpu_gbps);
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s\"%s\":{\"wallGBps\":%.2f,\"perCpuGBps\":%.2f}", first ? "" : ",", name.c_str(), Median(w), Median(c));
    json += buf;
    first = false;
  };
  for (size_t len : {size_t(1) << 20, size_t(64) << 10}) {
    uint8_t* buf = static_cast<uint8_t*>(std::aligned_alloc(4096, (k + m) * len));
    for (size_t i = 0; i < (k + m) * len; i++) buf[i] = static_cast<uint8_t>(i * 131 + 7);
    const uint8_t* in[16];
    uint8_t* out[16];
    for (int i = 0; i < k; i++) in[i] = buf + i * len;
    for (int i = 0; i < m; i++) out[i] = buf + (k + i) * len;
    const int reps = static_cast<int>(std::max<size_t>(8, (size_t(1) << 30) / (k * len)));
    const std::string label = len == (size_t(1) << 20) ? "1 MiB" : "64 KiB";
    for (int threads : {1, 2}) {
      std::vector<Rate> kr, rr;
      for (int r = 0; r < rounds; r++) {
        auto share = [&](int t, const uint8_t** ii, uint8_t** oo) {
          const size_t per = ((len + threads - 1) / threads + 63) & ~size_t(63);
          const size_t off = std::min(len, t * per);
          for (int i = 0; i < k; i++) ii[i] = in[i] + off;
          for (int i = 0; i < m; i++) oo[i] = out[i] + off;
          return std::min(len, off + per) - off;
        };
        kr.push_back(Run(threads, double(k) * len, reps, [&](int t, int n) {
          const uint8_t* ii[16]; uint8_t* oo[16];
          const size_t cols = share(t, ii, oo);
          for (int i = 0; i < n; i++) fn(cols, k, m, tables.data(), ii, oo);
        }));
        volatile uint64_t sink = 0;
        rr.push_back(Run(threads, double(k) * len, reps, [&](int t, int n) {
          const uint8_t* ii[16]; uint8_t* oo[16];
          const size_t cols = share(t, ii, oo);
          for (int i = 0; i < n; i++) sink = sink + ReadXor(ii, k, cols);
        }));
      }
      emit("kernel 10+4 x " + label + ", " + std::to_string(threads) + " thread(s)", kr);
      emit("read the same input (" + label + " shards), " + std::to_string(threads) + " thread(s)", rr);
    }
    std::free(buf);
  }
  {  // main memory: 256 MiB read as 8 "shards" of 32 MiB
    const size_t len = size_t(32) << 20;
    uint8_t* buf = static_cast<uint8_t*>(std::aligned_alloc(4096, 8 * len));
    std::memset(buf, 1, 8 * len);
    const uint8_t* in[8];
    for (int i = 0; i < 8; i++) in[i] = buf + i * len;
    for (int threads : {1, 2}) {
      std::vector<Rate> rs;
      volatile uint64_t sink = 0;
      for (int r = 0; r < rounds; r++)
        rs.push_back(Run(threads, 8.0 * len, 2, [&](int t, int n) {
          const size_t per = len / threads;
          const uint8_t* ii[8];
          for (int i = 0; i < 8; i++) ii[i] = in[i] + t * per;
          for (int i = 0; i < n; i++) sink = sink + ReadXor(ii, 8, per);
        }));
      emit("dram read 256 MiB, " + std::to_string(threads) + " thread(s)", rs);
    }
    std::free(buf);
  }
  json += "},\"dispatchMicros\":{";
  {
    hsmexec::Executor ex;
    ex.EnsureThreads(1);
    std::vector<double> hot, hot_start, cold, cold_start;
    for (int i = 0; i < 20000; i++) {  // back to back: the pool thread is polling
      HandOverJob j;
      const double t0 = Now();
      ex.Help(&j);
      hot.push_back((Now() - t0) * 1e6);
      hot_start.push_back((j.started.load() - t0) * 1e6);
    }
    for (int i = 0; i < 300; i++) {  // after the pool thread went to sleep
      std::this_thread::sleep_for(std::chrono::microseconds(3 * hsmexec::Executor::SpinMicros() + 200));
      HandOverJob j;
      const double t0 = Now();
      ex.Help(&j);
      cold.push_back((Now() - t0) * 1e6);
      cold_start.push_back((j.started.load() - t0) * 1e6);
    }
    char buf[300];
    std::snprintf(buf, sizeof buf,
                  "\"pollingRoundTrip\":%.2f,\"pollingJoin\":%.2f,\"sleepingRoundTrip\":%.2f,\"sleepingJoin\":%.2f",
                  Median(hot), Median(hot_start), Median(cold), Median(cold_start));
    json += buf;
  }
  json += "}}";
  std::puts(json.c_str());
}
