// N-API glue for the Reed-Solomon kernels: argument checks (again, after JS's), pointer gathering, dispatch.
// Per-instance (Napi::Addon) with no mutable globals, so it loads in any number of worker threads.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "async-job.h"
#include "gf-core.h"

namespace {

constexpr int MAX_SHARDS = 256;  // GF(2^8) Cauchy/Vandermonde codes have at most 2^8 distinct rows

bool ThrowType(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return false;
}
bool ThrowRange(Napi::Env env, const std::string& msg) {
  Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
  return false;
}

bool GetInt(Napi::Env env, const Napi::Value& v, const char* name, double lo, double hi, double* out) {
  if (!v.IsNumber()) return ThrowType(env, std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || std::floor(d) != d)
    return ThrowRange(env, std::string(name) + " must be an integer in [" + std::to_string(static_cast<long long>(lo)) +
                               ", " + std::to_string(static_cast<long long>(hi)) + "]");
  *out = d;
  return true;
}

bool GetBytes(Napi::Env env, const Napi::Value& v, const std::string& name, uint8_t** data, size_t* len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    return ThrowType(env, name + " must be a Uint8Array");
  auto a = v.As<Napi::Uint8Array>();
  *data = a.Data();
  *len = a.ElementLength();
  return true;
}

// Fills ptrs[0..count) from a JS array of Uint8Array, each at least `need` bytes long. Raw N-API here: one
// typed-array query per shard (node-addon-api's IsTypedArray/TypedArrayType/Data/ElementLength make three), which
// is a third of a small erasure call's fixed cost (measured).
bool GetShardArray(Napi::Env env, const Napi::Value& v, const char* name, uint32_t count, size_t need,
                   uint8_t** ptrs) {
  if (!v.IsArray()) return ThrowType(env, std::string(name) + " must be an array of Uint8Array");
  uint32_t length = 0;
  napi_get_array_length(env, v, &length);
  if (length != count)
    return ThrowRange(env, std::string(name) + ".length must equal " + std::to_string(count));
  for (uint32_t i = 0; i < count; i++) {
    const auto item = [&] { return std::string(name) + "[" + std::to_string(i) + "]"; };  // only for errors
    napi_value e;
    if (napi_get_element(env, v, i, &e) != napi_ok) return false;  // a throwing getter: its exception is pending
    napi_typedarray_type type;
    size_t len = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, e, &type, &len, &data, nullptr, nullptr) != napi_ok || type != napi_uint8_array)
      return ThrowType(env, item() + " must be a Uint8Array");
    ptrs[i] = static_cast<uint8_t*>(data);  // already at the view's byte offset
    if (len < need) return ThrowRange(env, item() + ".length must be at least len (" + std::to_string(need) + ")");
  }
  return true;
}

// Column ranges [i·item, (i+1)·item) of one matrix multiply, run on the native pool. Guided: a thread takes a run
// of adjacent ranges and computes it in one kernel call (each thread's input reads stay disjoint and sequential).
class MulJob : public hsmexec::AsyncJob {
 public:
  MulJob(size_t len, size_t item, int max_parallel)
      : AsyncJob((len + item - 1) / item, max_parallel, true), len_(len), item_(item) {}
  hsmec::KernelFn fn_ = nullptr;
  const uint8_t* tables_ = nullptr;
  int k_ = 0, rows_ = 0;
  size_t len_, item_;
  uint8_t* in_[MAX_SHARDS];
  uint8_t* out_[MAX_SHARDS];

  void Run(size_t i) override { RunRange(i, i + 1); }
  void RunRange(size_t begin, size_t end) override {
    const size_t off = begin * item_;
    const size_t stop = end * item_ < len_ ? end * item_ : len_;
    const size_t n = stop - off;
    const uint8_t* in[MAX_SHARDS];
    uint8_t* out[MAX_SHARDS];
    for (int j = 0; j < k_; j++) in[j] = in_[j] + off;
    for (int r = 0; r < rows_; r++) out[r] = out_[r] + off;
    fn_(n, k_, rows_, tables_, in, out);
  }
  std::vector<napi_value> Results(Napi::Env env) override { return {env.Null()}; }
};

class RsAddon : public Napi::Addon<RsAddon> {
 public:
  RsAddon(Napi::Env env, Napi::Object exports) {
    const hsmec::KernelInfo* table = hsmec::kernel_table();
    auto available = Napi::Array::New(env);
    uint32_t n = 0;
    for (int i = 0; i < hsmec::KERNEL_COUNT; i++)
      if (table[i].supported) available.Set(n++, Napi::String::New(env, table[i].name));
    DefineAddon(exports,
                {
                    InstanceMethod("expandTables", &RsAddon::ExpandTables),
                    InstanceMethod("mul", &RsAddon::Mul),
                    InstanceMethod("mulParallel", &RsAddon::MulParallel),
                    InstanceMethod("prepareMul", &RsAddon::PrepareMul),
                    InstanceMethod("mulPrepared", &RsAddon::MulPrepared),
                    InstanceMethod("poolStats", &RsAddon::PoolStats),
                    InstanceMethod("lineOffset", &RsAddon::LineOffset),
                    InstanceValue("kernels", available, napi_enumerable),
                    InstanceValue("bestKernel", Napi::String::New(env, table[hsmec::best_kernel()].name),
                                  napi_enumerable),
                    InstanceValue("defaultKernel", Napi::String::New(env, table[hsmec::default_kernel()].name),
                                  napi_enumerable),
                    InstanceValue("requestedKernel", Napi::String::New(env, hsmec::requested_kernel()),
                                  napi_enumerable),
                    InstanceValue("coefTableBytes", Napi::Number::New(env, hsmec::COEF_TABLE_BYTES),
                                  napi_enumerable),
                });
  }

  ~RsAddon() { delete rt_; }  // joins the pool threads

 private:
  hsmexec::Runtime* rt_ = nullptr;  // native pool, created on first mulParallel; lives as long as the instance

  // lineOffset(view: Uint8Array): how many bytes past a 64-byte boundary the view starts (for aligning shards
  // inside over-allocated buffers: JS cannot see addresses).
  Napi::Value LineOffset(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint8_t* data;
    size_t len;
    if (info.Length() != 1) return ThrowType(env, "lineOffset(view) takes 1 argument"), env.Undefined();
    if (!GetBytes(env, info[0], "view", &data, &len)) return env.Undefined();
    return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(data) % 64));
  }

  // poolStats(): counters of the native pool since it started (all zero before the first mulParallel).
  Napi::Value PoolStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const hsmexec::ExecutorStats s = rt_ ? rt_->executor.stats() : hsmexec::ExecutorStats{};
    auto o = Napi::Object::New(env);
    o.Set("threads", Napi::Number::New(env, rt_ ? rt_->executor.threads() : 0));
    o.Set("helped", Napi::Number::New(env, static_cast<double>(s.helped)));
    o.Set("callerItems", Napi::Number::New(env, static_cast<double>(s.caller_items)));
    o.Set("poolItems", Napi::Number::New(env, static_cast<double>(s.pool_items)));
    o.Set("wakes", Napi::Number::New(env, static_cast<double>(s.wakes)));
    o.Set("blocked", Napi::Number::New(env, static_cast<double>(s.blocked)));
    return o;
  }

  // expandTables(matrix: Uint8Array, rows, k): Uint8Array of rows*k*COEF_TABLE_BYTES kernel tables.
  Napi::Value ExpandTables(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 3) return ThrowType(env, "expandTables(matrix, rows, k) takes 3 arguments"), env.Undefined();
    uint8_t* matrix;
    size_t mlen;
    double rows, k;
    if (!GetBytes(env, info[0], "matrix", &matrix, &mlen) || !GetInt(env, info[1], "rows", 1, MAX_SHARDS, &rows) ||
        !GetInt(env, info[2], "k", 1, MAX_SHARDS, &k))
      return env.Undefined();
    const size_t coefs = static_cast<size_t>(rows) * static_cast<size_t>(k);
    if (mlen != coefs) return ThrowRange(env, "matrix.length must equal rows * k"), env.Undefined();
    auto out = Napi::Uint8Array::New(env, coefs * hsmec::COEF_TABLE_BYTES);
    hsmec::expand_tables(matrix, static_cast<int>(rows), static_cast<int>(k), out.Data());
    return out;
  }

  // The arguments mul and mulParallel share: kernel, tables, rows, k, inputs, outputs, len (info[0..6]).
  struct MulArgs {
    hsmec::KernelFn fn;
    uint8_t* tables;
    int rows, k;
    size_t len;
    uint8_t* in[MAX_SHARDS];
    uint8_t* out[MAX_SHARDS];
  };

  static bool GetMulArgs(Napi::Env env, const Napi::CallbackInfo& info, MulArgs* a) {
    if (!info[0].IsString()) return ThrowType(env, "kernel must be a string"), false;
    char name[32];  // kernel names are short; a longer string is no kernel (it fails the lookup, truncated)
    size_t name_len = 0;
    napi_get_value_string_utf8(env, info[0], name, sizeof name, &name_len);
    const int ki = hsmec::kernel_index(name);
    if (ki < 0 || !hsmec::kernel_table()[ki].supported)
      return ThrowRange(env, "kernel '" + info[0].As<Napi::String>().Utf8Value() + "' is not available on this CPU"), false;
    size_t tlen;
    double rows, k, len;
    if (!GetBytes(env, info[1], "tables", &a->tables, &tlen) || !GetInt(env, info[2], "rows", 0, MAX_SHARDS, &rows) ||
        !GetInt(env, info[3], "k", 1, MAX_SHARDS, &k) || !GetInt(env, info[6], "len", 0, 9007199254740991.0, &len))
      return false;
    a->rows = static_cast<int>(rows);
    a->k = static_cast<int>(k);
    if (tlen != static_cast<size_t>(a->rows) * a->k * hsmec::COEF_TABLE_BYTES)
      return ThrowRange(env, "tables.length must equal rows * k * " + std::to_string(hsmec::COEF_TABLE_BYTES)), false;
    a->len = static_cast<size_t>(len);
    a->fn = hsmec::kernel_table()[ki].fn;
    return GetShardArray(env, info[4], "inputs", a->k, a->len, a->in) && GetShardArray(env, info[5], "outputs", a->rows, a->len, a->out);
  }

  // mul(kernel, tables, rows, k, inputs, outputs, len): outputs[r] = sum_j M[r][j] * inputs[j], first len bytes.
  Napi::Value Mul(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 7)
      return ThrowType(env, "mul(kernel, tables, rows, k, inputs, outputs, len) takes 7 arguments"), env.Undefined();
    MulArgs a;
    if (!GetMulArgs(env, info, &a) || a.rows == 0 || a.len == 0) return env.Undefined();
    a.fn(a.len, a.k, a.rows, a.tables, a.in, a.out);
    return env.Undefined();
  }

  // mulParallel(kernel, tables, rows, k, inputs, outputs, len, maxParallel, itemBytes, callback?): mul over
  // column ranges of itemBytes (a multiple of 64) on the native pool. Without a callback this thread works too
  // and the call returns when done (for short calls: no completion round trip); with one, it returns at once
  // and callback(null) runs when done. Inputs are only read; outputs must not overlap them.
  Napi::Value MulParallel(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 10)
      return ThrowType(env, "mulParallel(kernel, tables, rows, k, inputs, outputs, len, maxParallel, itemBytes, callback) takes 10 arguments"), env.Undefined();
    double par, item;
    if (!GetInt(env, info[7], "maxParallel", 1, 256, &par) || !GetInt(env, info[8], "itemBytes", 64, 9007199254740991.0, &item))
      return env.Undefined();
    if (std::fmod(item, 64) != 0) return ThrowRange(env, "itemBytes must be a multiple of 64"), env.Undefined();
    const bool async = !info[9].IsUndefined();
    if (async && !info[9].IsFunction()) return ThrowType(env, "callback must be a function or undefined"), env.Undefined();
    MulArgs a;
    if (!GetMulArgs(env, info, &a)) return env.Undefined();
    const int r = a.rows, kk = a.k;
    const size_t n = a.len;
    auto job = std::make_unique<MulJob>(n == 0 ? 1 : n, static_cast<size_t>(item), static_cast<int>(par));
    std::copy(a.in, a.in + kk, job->in_);
    std::copy(a.out, a.out + r, job->out_);
    for (int o = 0; o < r; o++)
      for (int j = 0; j < kk; j++)
        if (!(job->out_[o] + n <= job->in_[j] || job->in_[j] + n <= job->out_[o]))
          return ThrowRange(env, "outputs must not overlap inputs"), env.Undefined();
    if (r == 0 || n == 0) {
      if (async) info[9].As<Napi::Function>().Call({env.Null()});
      return env.Undefined();
    }
    job->fn_ = a.fn;
    job->tables_ = a.tables;
    job->k_ = kk;
    job->rows_ = r;
    if (!rt_ && !(rt_ = hsmexec::CreateRuntime(env, "hsm_erasure pool"))) return env.Undefined();
    // This thread counts as one of maxParallel when it helps.
    rt_->executor.EnsureThreads(async ? static_cast<int>(par) : static_cast<int>(par) - 1);
    if (!async) {
      rt_->executor.Help(job.get());
      return env.Undefined();
    }
    job->Keep(info[1]);
    for (int a = 4; a <= 5; a++) {
      auto arr = info[a].As<Napi::Array>();
      for (uint32_t i = 0; i < arr.Length(); i++) job->Keep(arr.Get(i));  // the shards, whatever the caller does to the arrays
    }
    job->SetCallback(info[9].As<Napi::Function>());
    hsmexec::AsyncJob::Start(env, rt_, job.release());
    return env.Undefined();
  }

  // A multiply whose arguments were checked once (prepareMul), for a caller that runs the same stripe buffers
  // again and again: the pointers are kept with strong references to the tables and every shard, so they stay
  // valid for the handle's life (shards are views of SharedArrayBuffers, which never move or shrink).
  // Tells prepareMul's handles from any other external (a foreign one would be read as pointers).
  static constexpr napi_type_tag kPreparedTag = {0x6863652d65726173ULL, 0x7572652d70726570ULL};
  struct Prepared {
    MulArgs a;
    std::vector<Napi::Reference<Napi::Value>> keep;
  };

  // prepareMul(kernel, tables, rows, k, inputs, outputs, len): a handle for mulPrepared (the checks of mul here).
  Napi::Value PrepareMul(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 7)
      return ThrowType(env, "prepareMul(kernel, tables, rows, k, inputs, outputs, len) takes 7 arguments"), env.Undefined();
    auto p = std::make_unique<Prepared>();
    if (!GetMulArgs(env, info, &p->a)) return env.Undefined();
    const MulArgs& a = p->a;
    for (int o = 0; o < a.rows; o++)
      for (int j = 0; j < a.k; j++)
        if (!(a.out[o] + a.len <= a.in[j] || a.in[j] + a.len <= a.out[o]))
          return ThrowRange(env, "outputs must not overlap inputs"), env.Undefined();
    p->keep.push_back(Napi::Persistent(info[1]));
    for (int i = 4; i <= 5; i++) {
      auto arr = info[i].As<Napi::Array>();
      for (uint32_t e = 0; e < arr.Length(); e++) p->keep.push_back(Napi::Persistent(arr.Get(e)));
    }
    auto handle = Napi::External<Prepared>::New(env, p.release(), [](Napi::Env, Prepared* q) { delete q; });
    handle.TypeTag(&kPreparedTag);
    return handle;
  }

  // mulPrepared(handle, maxParallel, itemBytes): the prepared multiply on the native pool, this thread helping;
  // returns when done.
  Napi::Value MulPrepared(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 3 || !info[0].IsExternal() || !info[0].As<Napi::Object>().CheckTypeTag(&kPreparedTag))
      return ThrowType(env, "mulPrepared(handle, maxParallel, itemBytes) takes a prepareMul handle and 2 numbers"), env.Undefined();
    double par, item;
    if (!GetInt(env, info[1], "maxParallel", 1, 256, &par) || !GetInt(env, info[2], "itemBytes", 64, 9007199254740991.0, &item))
      return env.Undefined();
    if (std::fmod(item, 64) != 0) return ThrowRange(env, "itemBytes must be a multiple of 64"), env.Undefined();
    const MulArgs& a = info[0].As<Napi::External<Prepared>>().Data()->a;
    if (a.rows == 0 || a.len == 0) return env.Undefined();
    MulJob job(a.len, static_cast<size_t>(item), static_cast<int>(par));
    std::copy(a.in, a.in + a.k, job.in_);
    std::copy(a.out, a.out + a.rows, job.out_);
    job.fn_ = a.fn;
    job.tables_ = a.tables;
    job.k_ = a.k;
    job.rows_ = a.rows;
    if (!rt_ && !(rt_ = hsmexec::CreateRuntime(env, "hsm_erasure pool"))) return env.Undefined();
    rt_->executor.EnsureThreads(static_cast<int>(par) - 1);
    rt_->executor.Help(&job);
    return env.Undefined();
  }
};

}  // namespace

NODE_API_ADDON(RsAddon)
