// A put's stripe, sealed on the native pool in one job: the segments AES-256-GCM sealed into the stripe buffer's
// data chunks, the parity computed, every chunk GMAC-tagged. The same bytes as src/object/tasks.ts sealStripe
// (which runs on a piscina worker without this addon): one task per stripe there cost a structured clone, a
// message each way and a worker's JS and GC per stripe, about a third of the worker's time on a 1 MiB put.
//   sealStripe(payloadKey, noncePrefix, chunkKey, segmentBytes, k, m, stripe, isLast, plain, plainBytes, buffer,
//              tables, kernel, callback(err, chunkBytes))
//   openStripe(chunkKey, k, m, stripe, chunkBytes, short, buffer, present, payloadKey, noncePrefix, segmentBytes,
//              firstSegment, lastSegment, segments, plaintextBytes, out, callback(err, status))
//     a get's healthy stripe: the tags of the chunks present verified, then the segments wanted opened into out.
//     status 0: done; 1: a chunk tag failed (nothing opened: the caller takes the worker task, which finds the bad
//     chunks and rebuilds); 2: a segment did not authenticate (out zeroed).
// Layout (tasks.ts): k+m slots of (chunk ‖ tag) at a stride of chunk + 16, then a scratch area of k × (S + 16)
// bytes for a short last stripe (its segments straddle chunks). tables: the encode matrix expanded for the GF
// kernels (m × k × 48 bytes); kernel: a name from the erasure addon's list. Inputs are referenced until the
// callback; nothing of them is kept.
#include <napi.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "async-job.h"
#include "gcm.h"
#include "gf-core.h"
#include "napi-args.h"

namespace {

constexpr size_t PREFIX_BYTES = hsmgcm::NONCE_PREFIX_BYTES;
constexpr size_t CHUNK_TAG_BYTES = 16;

// What both stripe jobs hold: the keys (wiped with the job), the nonce prefix and the stripe's slots.
class StripeJobBase : public hsmexec::AsyncJob {
 public:
  StripeJobBase() : AsyncJob(1, 1) {}
  ~StripeJobBase() override {
    OPENSSL_cleanse(payload_key_, sizeof payload_key_);
    OPENSSL_cleanse(chunk_key_, sizeof chunk_key_);
  }

  uint8_t payload_key_[hsmgcm::KEY_BYTES];
  uint8_t chunk_key_[hsmgcm::KEY_BYTES];
  uint8_t prefix_[PREFIX_BYTES];
  size_t segment_bytes_ = 0, k_ = 0, m_ = 0, chunk_bytes_ = 0;
  uint64_t stripe_ = 0;
  uint8_t* buffer_ = nullptr;

  uint8_t* Chunk(size_t j) const { return buffer_ + j * (chunk_bytes_ + CHUNK_TAG_BYTES); }
  // A short last stripe's sealed payload is contiguous, cut into the k data chunks (its segments straddle them):
  // the chunk pieces that bytes [at, at + n) of it fall in. tasks.ts builds the payload in a scratch area after
  // the slots and copies it; the native jobs seal into and open from the pieces where they lie.
  template <typename SpanT>
  void CutSpans(size_t at, size_t n, std::vector<SpanT>* spans) const {
    spans->clear();
    while (n > 0) {
      const size_t j = at / chunk_bytes_, off = at % chunk_bytes_, take = std::min(chunk_bytes_ - off, n);
      spans->push_back({Chunk(j) + off, take});
      at += take;
      n -= take;
    }
  }

  // Chunk j's GMAC (format.ts chunkTag: nonce = shard index u32 BE ‖ stripe u64 BE).
  bool ChunkTag(size_t j, uint8_t* tag) const {
    uint8_t nonce[hsmgcm::NONCE_BYTES];
    for (int b = 0; b < 4; b++) nonce[b] = static_cast<uint8_t>(j >> (24 - 8 * b));
    for (int b = 0; b < 8; b++) nonce[4 + b] = static_cast<uint8_t>(stripe_ >> (56 - 8 * b));
    return hsmgcm::gmac(chunk_key_, nonce, Chunk(j), chunk_bytes_, tag);
  }
};

class StripeJob : public StripeJobBase {
 public:
  size_t plain_bytes_ = 0, count_ = 0;
  bool last_ = false, full_ = false, failed_ = false;
  const uint8_t* plain_ = nullptr;
  const uint8_t* tables_ = nullptr;
  hsmec::KernelFn kernel_ = nullptr;

  // Segment i of this stripe: its nonce (the object's segment index is stripe · k + i).
  void Nonce(size_t i, bool last, uint8_t* nonce) const {
    hsmgcm::segment_nonce(prefix_, static_cast<uint32_t>(stripe_ * k_ + i), last, nonce);
  }

  bool SealSegment(size_t i, const uint8_t* src, size_t len, uint8_t* dst, bool last) const {
    uint8_t nonce[hsmgcm::NONCE_BYTES];
    Nonce(i, last, nonce);
    return hsmgcm::seal(payload_key_, nonce, nullptr, 0, src, len, dst, dst + len);
  }

  void Run(size_t) override {
    const size_t S = segment_bytes_;
    if (full_) {
      for (size_t j = 0; j < k_; j++)
        if (!SealSegment(j, plain_ + j * S, S, Chunk(j), last_ && j + 1 == k_)) return Fail();
    } else {
      // Short last stripe: each segment sealed straight into the chunk pieces it falls in, the rest zero-padded.
      std::vector<hsmgcm::OutSpan> spans;
      spans.reserve(k_ + 1);
      size_t at = 0;
      for (size_t i = 0; i < count_; i++) {
        const size_t len = std::min(S, plain_bytes_ - i * S);
        uint8_t nonce[hsmgcm::NONCE_BYTES];
        Nonce(i, i + 1 == count_, nonce);
        CutSpans(at, len + hsmgcm::TAG_BYTES, &spans);
        if (!hsmgcm::seal_scatter(payload_key_, nonce, plain_ + i * S, len, spans.data(), spans.size())) return Fail();
        at += len + hsmgcm::TAG_BYTES;
      }
      CutSpans(at, k_ * chunk_bytes_ - at, &spans);
      for (const auto& piece : spans) std::memset(piece.data, 0, piece.len);
    }
    if (m_ > 0) {
      std::vector<const uint8_t*> in(k_);
      std::vector<uint8_t*> out(m_);
      for (size_t j = 0; j < k_; j++) in[j] = Chunk(j);
      for (size_t r = 0; r < m_; r++) out[r] = Chunk(k_ + r);
      kernel_(chunk_bytes_, static_cast<int>(k_), static_cast<int>(m_), tables_, in.data(), out.data());
    }
    for (size_t j = 0; j < k_ + m_; j++)
      if (!ChunkTag(j, Chunk(j) + chunk_bytes_)) return Fail();
  }

  void Fail() {
    failed_ = true;
    std::memset(buffer_, 0, (k_ + m_) * (chunk_bytes_ + CHUNK_TAG_BYTES));  // never a half-sealed stripe
  }

  std::vector<napi_value> Results(Napi::Env env) override {
    if (failed_) return {Napi::Error::New(env, "stripe seal failed").Value()};
    return {env.Null(), Napi::Number::New(env, static_cast<double>(chunk_bytes_))};
  }
};

class OpenJob : public StripeJobBase {
 public:
  size_t first_ = 0, last_ = 0, segments_ = 0, plaintext_bytes_ = 0;
  bool short_ = false;
  std::vector<uint8_t> present_;
  uint8_t* out_ = nullptr;
  size_t out_len_ = 0;
  int status_ = 0;

  size_t PlainOf(size_t i) const { return i + 1 == segments_ ? plaintext_bytes_ - i * segment_bytes_ : segment_bytes_; }

  // Segment i (the object's index) from its ciphertext pieces and tag into dst; dst zeroed if it fails.
  bool OpenSegment(size_t i, const hsmgcm::Span* pieces, size_t count, const uint8_t* tag, uint8_t* dst) const {
    uint8_t nonce[hsmgcm::NONCE_BYTES];
    hsmgcm::segment_nonce(prefix_, static_cast<uint32_t>(i), i + 1 == segments_, nonce);
    return hsmgcm::open_v(payload_key_, nonce, pieces, count, dst, tag);
  }

  void Run(size_t) override {
    for (uint8_t j : present_) {
      uint8_t tag[CHUNK_TAG_BYTES];
      if (!ChunkTag(j, tag) || CRYPTO_memcmp(tag, Chunk(j) + chunk_bytes_, CHUNK_TAG_BYTES) != 0) {
        status_ = 1;
        return;
      }
    }
    // A short stripe's segments are read from the chunk pieces they straddle (CutSpans), not gathered first.
    std::vector<hsmgcm::Span> pieces, tag_pieces;
    size_t sealed_at = (first_ - stripe_ * k_) * (segment_bytes_ + hsmgcm::TAG_BYTES);
    size_t at = 0;
    for (size_t i = first_; i <= last_; i++) {
      const size_t len = PlainOf(i);
      bool ok;
      if (short_) {
        uint8_t tag[hsmgcm::TAG_BYTES];
        CutSpans(sealed_at + len, hsmgcm::TAG_BYTES, &tag_pieces);
        size_t t = 0;
        for (const auto& piece : tag_pieces) std::memcpy(tag + t, piece.data, piece.len), t += piece.len;
        CutSpans(sealed_at, len, &pieces);
        ok = OpenSegment(i, pieces.data(), pieces.size(), tag, out_ + at);
        sealed_at += len + hsmgcm::TAG_BYTES;
      } else {
        const hsmgcm::Span whole{Chunk(i - stripe_ * k_), len};  // a full stripe: one segment per chunk
        ok = OpenSegment(i, &whole, 1, whole.data + len, out_ + at);
      }
      if (!ok) {
        status_ = 2;
        std::memset(out_, 0, out_len_);
        return;
      }
      at += len;
    }
  }

  std::vector<napi_value> Results(Napi::Env env) override { return {env.Null(), Napi::Number::New(env, status_)}; }
};

using hsmargs::Fail;
using hsmargs::GetInt;
using hsmargs::GetU8;

Napi::Value SealStripe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 14) return Fail(env, true, "sealStripe: expected 14 arguments"), env.Undefined();
  uint8_t *pkey, *prefix, *ckey, *plain, *buffer, *tables;
  size_t pkey_len, prefix_len, ckey_len, plain_len, buffer_len, tables_len;
  double S, k, m, stripe, plain_bytes;
  if (!GetU8(env, info[0], "payloadKey", &pkey, &pkey_len) || !GetU8(env, info[1], "noncePrefix", &prefix, &prefix_len) ||
      !GetU8(env, info[2], "chunkKey", &ckey, &ckey_len) || !GetInt(env, info[3], "segmentBytes", 1, 2147483647.0, &S) ||
      !GetInt(env, info[4], "k", 1, 256, &k) || !GetInt(env, info[5], "m", 0, 255, &m) ||
      !GetInt(env, info[6], "stripe", 0, 4294967295.0, &stripe))
    return env.Undefined();
  if (!info[7].IsBoolean()) return Fail(env, true, "isLast must be a boolean"), env.Undefined();
  const bool last = info[7].As<Napi::Boolean>().Value();
  if (!GetU8(env, info[8], "plain", &plain, &plain_len) || !GetInt(env, info[9], "plainBytes", 0, 9007199254740991.0, &plain_bytes) ||
      !GetU8(env, info[10], "buffer", &buffer, &buffer_len) || !GetU8(env, info[11], "tables", &tables, &tables_len))
    return env.Undefined();
  if (!info[12].IsString()) return Fail(env, true, "kernel must be a string"), env.Undefined();
  if (!info[13].IsFunction()) return Fail(env, true, "callback must be a function"), env.Undefined();
  if (pkey_len != hsmgcm::KEY_BYTES || ckey_len != hsmgcm::KEY_BYTES) return Fail(env, false, "keys must be 32 bytes"), env.Undefined();
  if (prefix_len != PREFIX_BYTES) return Fail(env, false, "noncePrefix must be 7 bytes"), env.Undefined();
  const size_t seg = static_cast<size_t>(S), K = static_cast<size_t>(k), M = static_cast<size_t>(m);
  if (K + M > 256) return Fail(env, false, "k + m must be at most 256"), env.Undefined();
  const size_t pb = static_cast<size_t>(plain_bytes);
  if (pb > plain_len || pb > K * seg) return Fail(env, false, "plainBytes exceeds plain or the stripe"), env.Undefined();
  const size_t count = last ? (pb == 0 ? 1 : (pb + seg - 1) / seg) : pb / seg;
  if (!last && pb != K * seg) return Fail(env, false, "a stripe that is not the last must hold k whole segments"), env.Undefined();
  if (stripe * k + static_cast<double>(count) - 1 > 4294967295.0) return Fail(env, false, "segment index out of range"), env.Undefined();
  const size_t full_chunk = seg + hsmgcm::TAG_BYTES;
  const size_t need = (K + M) * (full_chunk + CHUNK_TAG_BYTES) + K * full_chunk;
  if (buffer_len < need) return Fail(env, false, "buffer is shorter than the stripe layout"), env.Undefined();
  if (M > 0 && tables_len != M * K * hsmec::COEF_TABLE_BYTES) return Fail(env, false, "tables must be m × k × 48 bytes"), env.Undefined();
  if (!(plain + pb <= buffer || buffer + buffer_len <= plain) && pb > 0) return Fail(env, false, "buffer must not overlap plain"), env.Undefined();
  const std::string kernel_name = info[12].As<Napi::String>().Utf8Value();
  const int kernel = hsmec::kernel_index(kernel_name.c_str());
  if (kernel < 0 || !hsmec::kernel_table()[kernel].supported) return Fail(env, false, "unknown or unsupported kernel"), env.Undefined();

  hsmexec::Runtime* rt = hsmexec::GetRuntime(env, "hsm_gcm batch");
  if (!rt) return env.Undefined();
  auto* job = new StripeJob();
  std::memcpy(job->payload_key_, pkey, hsmgcm::KEY_BYTES);
  std::memcpy(job->chunk_key_, ckey, hsmgcm::KEY_BYTES);
  std::memcpy(job->prefix_, prefix, PREFIX_BYTES);
  job->segment_bytes_ = seg;
  job->k_ = K;
  job->m_ = M;
  job->stripe_ = static_cast<uint64_t>(stripe);
  job->last_ = last;
  job->plain_ = plain;
  job->plain_bytes_ = pb;
  job->count_ = count;
  const size_t payload = pb + count * hsmgcm::TAG_BYTES;
  job->full_ = payload == K * full_chunk;
  job->chunk_bytes_ = job->full_ ? full_chunk : (payload + K - 1) / K;
  job->buffer_ = buffer;
  job->tables_ = tables;
  job->kernel_ = hsmec::kernel_table()[kernel].fn;
  for (int i : {8, 10, 11}) job->Keep(info[i]);
  job->SetCallback(info[13].As<Napi::Function>());
  rt->executor.EnsureThreads(1);
  hsmexec::AsyncJob::Start(env, rt, job);
  return env.Undefined();
}

Napi::Value OpenStripe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 17) return Fail(env, true, "openStripe: expected 17 arguments"), env.Undefined();
  uint8_t *ckey, *buffer, *present, *pkey, *prefix, *out;
  size_t ckey_len, buffer_len, present_len, pkey_len, prefix_len, out_len;
  double k, m, stripe, chunk, S, first, last, segments, plaintext;
  if (!GetU8(env, info[0], "chunkKey", &ckey, &ckey_len) || !GetInt(env, info[1], "k", 1, 256, &k) ||
      !GetInt(env, info[2], "m", 0, 255, &m) || !GetInt(env, info[3], "stripe", 0, 4294967295.0, &stripe) ||
      !GetInt(env, info[4], "chunkBytes", 1, 2147483663.0, &chunk))
    return env.Undefined();
  if (!info[5].IsBoolean()) return Fail(env, true, "short must be a boolean"), env.Undefined();
  if (!GetU8(env, info[6], "buffer", &buffer, &buffer_len) || !GetU8(env, info[7], "present", &present, &present_len) ||
      !GetU8(env, info[8], "payloadKey", &pkey, &pkey_len) || !GetU8(env, info[9], "noncePrefix", &prefix, &prefix_len) ||
      !GetInt(env, info[10], "segmentBytes", 1, 2147483647.0, &S) || !GetInt(env, info[11], "firstSegment", 0, 4294967295.0, &first) ||
      !GetInt(env, info[12], "lastSegment", 0, 4294967295.0, &last) || !GetInt(env, info[13], "segments", 1, 4294967296.0, &segments) ||
      !GetInt(env, info[14], "plaintextBytes", 0, 9007199254740991.0, &plaintext) || !GetU8(env, info[15], "out", &out, &out_len))
    return env.Undefined();
  if (!info[16].IsFunction()) return Fail(env, true, "callback must be a function"), env.Undefined();
  if (ckey_len != hsmgcm::KEY_BYTES || pkey_len != hsmgcm::KEY_BYTES) return Fail(env, false, "keys must be 32 bytes"), env.Undefined();
  if (prefix_len != PREFIX_BYTES) return Fail(env, false, "noncePrefix must be 7 bytes"), env.Undefined();
  auto* job = new OpenJob();
  job->k_ = static_cast<size_t>(k);
  job->m_ = static_cast<size_t>(m);
  job->stripe_ = static_cast<uint64_t>(stripe);
  job->chunk_bytes_ = static_cast<size_t>(chunk);
  job->short_ = info[5].As<Napi::Boolean>().Value();
  job->segment_bytes_ = static_cast<size_t>(S);
  job->first_ = static_cast<size_t>(first);
  job->last_ = static_cast<size_t>(last);
  job->segments_ = static_cast<size_t>(segments);
  job->plaintext_bytes_ = static_cast<size_t>(plaintext);
  std::unique_ptr<OpenJob> owned(job);
  const size_t K = job->k_, M = job->m_, seg = job->segment_bytes_, full_chunk = seg + hsmgcm::TAG_BYTES;
  // Shape: the segments lie in this stripe and the object, the chunk fits the layout, and out holds the plaintext.
  const bool shape = K + M <= 256 && job->chunk_bytes_ <= full_chunk && job->first_ <= job->last_ &&
                     job->last_ < job->segments_ && job->first_ >= job->stripe_ * K && job->last_ < (job->stripe_ + 1) * K &&
                     job->plaintext_bytes_ <= job->segments_ * seg && (job->segments_ - 1) * seg <= job->plaintext_bytes_ &&
                     buffer_len >= (K + M) * (full_chunk + CHUNK_TAG_BYTES) + K * full_chunk;
  if (!shape) return Fail(env, false, "openStripe: the stripe's shape does not fit its arguments"), env.Undefined();
  size_t plain = 0, sealed = 0;
  for (size_t i = job->first_; i <= job->last_; i++) {
    const size_t len = job->PlainOf(i);
    plain += len;
    sealed += len + hsmgcm::TAG_BYTES;
    if (!job->short_ && len + hsmgcm::TAG_BYTES > job->chunk_bytes_) return Fail(env, false, "openStripe: a segment exceeds its chunk"), env.Undefined();
  }
  if (job->short_ && (job->first_ - job->stripe_ * K) * full_chunk + sealed > K * job->chunk_bytes_)
    return Fail(env, false, "openStripe: the segments exceed the stripe"), env.Undefined();
  if (out_len < plain) return Fail(env, false, "openStripe: out is shorter than the segments"), env.Undefined();
  if (!(out + out_len <= buffer || buffer + buffer_len <= out)) return Fail(env, false, "out must not overlap buffer"), env.Undefined();
  if (present_len > K + M) return Fail(env, false, "present lists more shards than the stripe has"), env.Undefined();
  for (size_t i = 0; i < present_len; i++)
    if (present[i] >= K + M) return Fail(env, false, "present lists a shard index out of range"), env.Undefined();
  hsmexec::Runtime* rt = hsmexec::GetRuntime(env, "hsm_gcm batch");
  if (!rt) return env.Undefined();
  owned.release();
  std::memcpy(job->chunk_key_, ckey, hsmgcm::KEY_BYTES);
  std::memcpy(job->payload_key_, pkey, hsmgcm::KEY_BYTES);
  std::memcpy(job->prefix_, prefix, PREFIX_BYTES);
  job->present_.assign(present, present + present_len);
  job->buffer_ = buffer;
  job->out_ = out;
  job->out_len_ = plain;
  for (int i : {6, 15}) job->Keep(info[i]);
  job->SetCallback(info[16].As<Napi::Function>());
  rt->executor.EnsureThreads(1);
  hsmexec::AsyncJob::Start(env, rt, job);
  return env.Undefined();
}

}  // namespace

void RegisterStripe(Napi::Env env, Napi::Object exports) {
  exports.Set("sealStripe", Napi::Function::New(env, SealStripe));
  exports.Set("openStripe", Napi::Function::New(env, OpenStripe));
}
