// Batches of consecutive object segments sealed or opened on the native thread pool (executor.h), reading the
// input where the caller holds it (a list of chunks, read only) and writing into engine-owned output: no copy
// on the JS thread and no message to a worker. Every argument is checked again here after JS's checks.
//   sealBatch(key, noncePrefix, segmentBytes, firstIndex, isLastBatch, parts, dst, maxParallel, cancel, cb)  cb(err, cancelled)
//   openBatch(key, noncePrefix, segmentBytes, firstIndex, isLastBatch, parts, dst, maxParallel, cancel, cb)  cb(err, failed)
//     failed = -1 when every tag verified, -2 when cancelled, else the lowest failing segment index (dst zeroed)
//     cancel: a Uint8Array whose first byte the JS thread sets to stop the job early (segments not yet started
//     are skipped; an opened batch is then zeroed)
//   setThreads(n)       at least n pool threads (never shrinks)
//   allocBytes(n, huge) a Buffer of n bytes, contents unspecified (the caller overwrites all of it): with huge and
//                       n ≥ 2 MiB a mapping advised for transparent huge pages, recycled from collected outputs
//                       when one fits; else (or where that is not available) a plain Buffer made here, which V8
//                       frees in scavenges like node:crypto's outputs (one made in JS, or an external one, counts
//                       as external memory and brings a full mark-compact every few tens of MiB)
#include <napi.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <cstring>
#include <string>
#include <vector>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "async-job.h"
#include "gcm.h"
#include "napi-args.h"

namespace {

constexpr size_t PREFIX_BYTES = hsmgcm::NONCE_PREFIX_BYTES;
constexpr size_t ITEM_MIN_BYTES = 64 * 1024;  // segments per pool item: at least this many bytes of work
constexpr double MAX_INDEX = 4294967295.0;

using hsmargs::Fail;
using hsmargs::GetInt;
using hsmargs::GetU8;

bool Disjoint(const uint8_t* a, size_t alen, const uint8_t* b, size_t blen) { return a + alen <= b || b + blen <= a; }

class BatchJob : public hsmexec::AsyncJob {
 public:
  BatchJob(bool seal, size_t count, int max_parallel, size_t per_item)
      : AsyncJob((count + per_item - 1) / per_item, max_parallel), seal_(seal), segments_(count), per_item_(per_item) {}
  ~BatchJob() override { OPENSSL_cleanse(key_, sizeof key_); }

  bool seal_;
  size_t segments_, per_item_;
  uint8_t key_[hsmgcm::KEY_BYTES];
  uint8_t prefix_[PREFIX_BYTES];
  size_t segment_bytes_ = 0, total_in_ = 0;
  uint32_t first_ = 0;
  bool last_batch_ = false;
  std::vector<hsmgcm::Span> parts_;
  std::vector<size_t> starts_;  // logical offset of each part
  uint8_t* dst_ = nullptr;
  size_t dst_len_ = 0;
  std::atomic<bool> error_{false};
  const volatile uint8_t* cancel_ = nullptr;
  bool Cancelled() const { return cancel_ && *cancel_ != 0; }
  std::atomic<int64_t> failed_{-1};
  bool cancelled_ = false;

  // Spans covering logical input bytes [from, to).
  void Gather(size_t from, size_t to, std::vector<hsmgcm::Span>* out) const {
    out->clear();
    size_t p = std::upper_bound(starts_.begin(), starts_.end(), from) - starts_.begin() - 1;
    while (from < to) {
      while (starts_[p] + parts_[p].len <= from) p++;
      const size_t at = from - starts_[p];
      const size_t n = std::min(parts_[p].len - at, to - from);
      out->push_back({parts_[p].data + at, n});
      from += n;
    }
  }

  void Run(size_t item) override {
    std::vector<hsmgcm::Span> spans;
    const size_t end = std::min(segments_, (item + 1) * per_item_);
    for (size_t s = item * per_item_; s < end; s++) {
      if (failed_.load(std::memory_order_relaxed) >= 0 || error_.load(std::memory_order_relaxed) || Cancelled()) return;
      uint8_t nonce[hsmgcm::NONCE_BYTES];
      const uint32_t index = first_ + static_cast<uint32_t>(s);
      hsmgcm::segment_nonce(prefix_, index, last_batch_ && s + 1 == segments_, nonce);
      if (seal_) {
        const size_t from = s * segment_bytes_;
        const size_t to = std::min(total_in_, from + segment_bytes_);
        Gather(from, to, &spans);
        uint8_t* out = dst_ + from + s * hsmgcm::TAG_BYTES;
        if (!hsmgcm::seal_v(key_, nonce, spans.data(), spans.size(), out, out + (to - from))) error_.store(true);
      } else {
        const size_t sealed = segment_bytes_ + hsmgcm::TAG_BYTES;
        const size_t from = s * sealed;
        const size_t to = std::min(total_in_, from + sealed);
        uint8_t tag[hsmgcm::TAG_BYTES];
        std::vector<hsmgcm::Span> tag_spans;
        Gather(to - hsmgcm::TAG_BYTES, to, &tag_spans);
        size_t t = 0;
        for (const auto& sp : tag_spans) std::memcpy(tag + t, sp.data, sp.len), t += sp.len;
        Gather(from, to - hsmgcm::TAG_BYTES, &spans);
        if (!hsmgcm::open_v(key_, nonce, spans.data(), spans.size(), dst_ + s * segment_bytes_, tag)) {
          int64_t cur = failed_.load();
          const int64_t mine = static_cast<int64_t>(index);
          while ((cur < 0 || mine < cur) && !failed_.compare_exchange_weak(cur, mine)) {
          }
        }
      }
    }
  }

  void Done() override {
    // Never leave plaintext of a batch that did not fully verify (or a half-sealed output) behind.
    cancelled_ = Cancelled();
    if ((failed_.load() >= 0 || error_.load() || (cancelled_ && !seal_)) && dst_len_ > 0) std::memset(dst_, 0, dst_len_);
    AsyncJob::Done();
  }

  std::vector<napi_value> Results(Napi::Env env) override {
    if (error_.load()) return {Napi::Error::New(env, seal_ ? "AES-GCM seal failed" : "AES-GCM open failed").Value()};
    if (seal_) return {env.Null(), Napi::Boolean::New(env, cancelled_)};
    const int64_t failed = failed_.load();
    return {env.Null(), Napi::Number::New(env, failed >= 0 ? static_cast<double>(failed) : cancelled_ ? -2.0 : -1.0)};
  }
};

Napi::Value Batch(const Napi::CallbackInfo& info, bool seal) {
  Napi::Env env = info.Env();
  if (info.Length() != 10) return Fail(env, true, "expected 10 arguments"), env.Undefined();
  uint8_t *key, *prefix, *dst;
  size_t key_len, prefix_len, dst_len;
  double segment_bytes, first, max_parallel;
  if (!GetU8(env, info[0], "key", &key, &key_len) || !GetU8(env, info[1], "noncePrefix", &prefix, &prefix_len) ||
      !GetInt(env, info[2], "segmentBytes", 1, 2147483647.0, &segment_bytes) ||
      !GetInt(env, info[3], "firstIndex", 0, MAX_INDEX, &first))
    return env.Undefined();
  if (key_len != hsmgcm::KEY_BYTES) return Fail(env, false, "key must be 32 bytes"), env.Undefined();
  if (prefix_len != PREFIX_BYTES) return Fail(env, false, "noncePrefix must be 7 bytes"), env.Undefined();
  if (!info[4].IsBoolean()) return Fail(env, true, "isLastBatch must be a boolean"), env.Undefined();
  const bool last = info[4].As<Napi::Boolean>().Value();
  if (!info[5].IsArray()) return Fail(env, true, "parts must be an array of Uint8Array"), env.Undefined();
  if (!GetU8(env, info[6], "dst", &dst, &dst_len) || !GetInt(env, info[7], "maxParallel", 1, 256, &max_parallel))
    return env.Undefined();
  uint8_t* cancel = nullptr;
  size_t cancel_len = 0;
  if (!info[8].IsUndefined()) {
    if (!GetU8(env, info[8], "cancel", &cancel, &cancel_len)) return env.Undefined();
    if (cancel_len < 1) return Fail(env, false, "cancel must hold at least 1 byte"), env.Undefined();
  }
  if (!info[9].IsFunction()) return Fail(env, true, "callback must be a function"), env.Undefined();
  auto parts = info[5].As<Napi::Array>();
  std::vector<hsmgcm::Span> spans;
  std::vector<size_t> starts;
  size_t total = 0;
  for (uint32_t i = 0; i < parts.Length(); i++) {
    uint8_t* p;
    size_t n;
    if (!GetU8(env, parts.Get(i), "parts[" + std::to_string(i) + "]", &p, &n)) return env.Undefined();
    if (n == 0) continue;
    spans.push_back({p, n});
    starts.push_back(total);
    total += n;
  }
  const size_t S = static_cast<size_t>(segment_bytes);
  size_t count;
  if (seal) {
    if (last) count = total == 0 ? 1 : (total + S - 1) / S;
    else if (total == 0 || total % S != 0) return Fail(env, false, "a batch that is not the last must hold whole segments"), env.Undefined();
    else count = total / S;
    if (dst_len != total + count * hsmgcm::TAG_BYTES) return Fail(env, false, "dst must be input + 16 × segments bytes"), env.Undefined();
  } else {
    const size_t sealed = S + hsmgcm::TAG_BYTES;
    count = (total + sealed - 1) / sealed;
    if (count == 0) return Fail(env, false, "empty batch"), env.Undefined();
    const size_t last_len = total - (count - 1) * sealed;
    if (last_len < hsmgcm::TAG_BYTES || (!last && last_len != sealed))
      return Fail(env, false, "batch does not hold whole segments"), env.Undefined();
    if (dst_len != total - count * hsmgcm::TAG_BYTES) return Fail(env, false, "dst must be input - 16 × segments bytes"), env.Undefined();
  }
  if (first + static_cast<double>(count) - 1 > MAX_INDEX) return Fail(env, false, "segment index out of range"), env.Undefined();
  for (const auto& sp : spans)
    if (!Disjoint(sp.data, sp.len, dst, dst_len)) return Fail(env, false, "dst must not overlap the input"), env.Undefined();

  hsmexec::Runtime* rt = hsmexec::GetRuntime(env, "hsm_gcm batch");
  if (!rt) return env.Undefined();
  const size_t per_item = std::max<size_t>(1, ITEM_MIN_BYTES / S);
  auto* job = new BatchJob(seal, count, static_cast<int>(max_parallel), per_item);
  std::memcpy(job->key_, key, sizeof job->key_);
  std::memcpy(job->prefix_, prefix, PREFIX_BYTES);
  job->segment_bytes_ = S;
  job->first_ = static_cast<uint32_t>(first);
  job->last_batch_ = last;
  job->total_in_ = total;
  job->parts_ = std::move(spans);
  job->starts_ = std::move(starts);
  job->dst_ = dst;
  job->dst_len_ = dst_len;
  job->Keep(parts);
  for (uint32_t i = 0; i < parts.Length(); i++) job->Keep(parts.Get(i));
  job->Keep(info[6]);
  if (cancel) {
    job->cancel_ = cancel;
    job->Keep(info[8]);
  }
  job->SetCallback(info[9].As<Napi::Function>());
  rt->executor.EnsureThreads(static_cast<int>(max_parallel));
  hsmexec::AsyncJob::Start(env, rt, job);
  return env.Undefined();
}

Napi::Value SealBatch(const Napi::CallbackInfo& info) { return Batch(info, true); }
Napi::Value OpenBatch(const Napi::CallbackInfo& info) { return Batch(info, false); }

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double n;
  if (info.Length() != 1 || !GetInt(env, info[0], "threads", 1, 256, &n)) return env.Undefined();
  hsmexec::Runtime* rt = hsmexec::GetRuntime(env, "hsm_gcm batch");
  if (rt) rt->executor.EnsureThreads(static_cast<int>(n));
  return env.Undefined();
}

constexpr size_t HUGE_PAGE_BYTES = 2u << 20;

#if defined(__linux__) && defined(MADV_HUGEPAGE)
// Large outputs are mappings recycled once the Buffer that used one is collected: on this kind of VM the first
// touch of fresh memory (kernel page clearing, and the host backing the page) costs about twice the encryption,
// while reused memory is already in place. At most HSM_OUTPUT_CACHE_MIB (default 1024) are kept, process-wide,
// and marked MADV_FREE: the kernel may take the pages back under memory pressure (then they fault again once),
// otherwise they stay where they are.
struct Mapping {
  void* base;
  size_t len;      // mapped bytes
  uint8_t* data;   // first huge-page boundary in the mapping
};

class MappingCache {
 public:
  Mapping Take(size_t need) {
    std::lock_guard<std::mutex> l(mu_);
    for (size_t i = 0; i < free_.size(); i++) {
      // Reuse one that is big enough and not wastefully bigger.
      if (free_[i].len - (free_[i].data - static_cast<uint8_t*>(free_[i].base)) >= need && free_[i].len <= 2 * need + 2 * HUGE_PAGE_BYTES) {
        Mapping m = free_[i];
        free_.erase(free_.begin() + i);
        bytes_ -= m.len;
        return m;
      }
    }
    return {nullptr, 0, nullptr};
  }
  void Give(Mapping m) {
    {
      std::lock_guard<std::mutex> l(mu_);
      while (!free_.empty() && bytes_ + m.len > Cap()) {  // keep the most recent ones
        munmap(free_.front().base, free_.front().len);
        bytes_ -= free_.front().len;
        free_.erase(free_.begin());
      }
      if (bytes_ + m.len <= Cap()) {
#ifdef MADV_FREE
        madvise(m.base, m.len, MADV_FREE);
#endif
        free_.push_back(m);
        bytes_ += m.len;
        return;
      }
    }
    munmap(m.base, m.len);
  }

 private:
  static size_t Cap() {
    static const size_t cap = [] {
      const char* v = std::getenv("HSM_OUTPUT_CACHE_MIB");
      const long n = v ? std::atol(v) : 1024;
      return static_cast<size_t>(n < 0 ? 0 : n) << 20;
    }();
    return cap;
  }
  std::mutex mu_;
  std::vector<Mapping> free_;
  size_t bytes_ = 0;
};

MappingCache& Cache() {
  static MappingCache* cache = new MappingCache();  // never destroyed: finalizers may run late at exit
  return *cache;
}

Mapping NewMapping(size_t len) {
  // Round up to whole huge pages and align the start, so every 2 MiB of the buffer can be one page.
  const size_t mapped = (len + 2 * HUGE_PAGE_BYTES - 1) & ~(HUGE_PAGE_BYTES - 1);
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return {nullptr, 0, nullptr};
  uint8_t* base = static_cast<uint8_t*>(raw);
  uint8_t* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + HUGE_PAGE_BYTES - 1) & ~(HUGE_PAGE_BYTES - 1));
  madvise(aligned, mapped - (aligned - base), MADV_HUGEPAGE);
  return {raw, mapped, aligned};
}
#endif

Napi::Value AllocBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double n;
  if (info.Length() < 1 || !GetInt(env, info[0], "length", 0, 9007199254740991.0, &n)) return env.Undefined();
  const size_t len = static_cast<size_t>(n);
  const bool huge = info.Length() < 2 || info[1].ToBoolean().Value();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (huge && len >= HUGE_PAGE_BYTES) {
    Mapping m = Cache().Take(len);
    if (!m.base) m = NewMapping(len);
    if (m.base) {
      auto* hint = new Mapping(m);
      Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(m.len));
      napi_value buf;
      napi_status st = napi_create_external_buffer(
          env, len, m.data,
          [](napi_env e, void*, void* h) {
            auto* mp = static_cast<Mapping*>(h);
            int64_t ignored;
            napi_adjust_external_memory(e, -static_cast<int64_t>(mp->len), &ignored);
            Cache().Give(*mp);
            delete mp;
          },
          hint, &buf);
      if (st == napi_ok) return Napi::Value(env, buf);
      // External buffers refused (a sandboxed V8): fall through to a plain Buffer.
      Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(m.len));
      munmap(m.base, m.len);
      delete hint;
      if (env.IsExceptionPending()) env.GetAndClearPendingException();
    }
  }
#endif
  return Napi::Buffer<uint8_t>::New(env, len);
}

}  // namespace

void RegisterBatch(Napi::Env env, Napi::Object exports) {
  exports.Set("sealBatch", Napi::Function::New(env, SealBatch));
  exports.Set("openBatch", Napi::Function::New(env, OpenBatch));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("allocBytes", Napi::Function::New(env, AllocBytes));
}
