// An HSM lane: one native thread that runs queued PKCS#11 single-part calls (Init + C_Encrypt / C_Decrypt /
// C_Sign) back to back, on the module pkcs11js already loaded and initialised. Why: a local token such as SoftHSM
// takes ~21 µs a call, half of it in the kernel, and serialises threads on its own mutexes (two threads on one
// key: 1.0–1.5× one thread, ~30k futex hand-offs a second), so calls from the JS thread and libuv threads at once
// mostly wait for each other. One thread fed by a queue keeps the module busy while the JS thread only prepares
// calls; results come back in batches through one uv_async_t (one event-loop wake-up for many calls).
//
//   new Lane(libraryPath, onResults, resultWords)  the library must be loaded already (dlopen RTLD_NOLOAD: same instance,
//                                      same function list, so session and object handles are the ones pkcs11js gave)
//   lane.submit(id, fn, session, key, mechanism, paramKind, iv, aad, input, output)
//       fn 0 C_Encrypt, 1 C_Decrypt, 2 C_Sign; paramKind 0 none, 1 raw bytes (iv), 2 CK_GCM_PARAMS v2.40 (iv, aad,
//       128-bit tag); session and key are pkcs11js handles (8-byte buffers). The caller keeps every buffer alive
//       and unchanged until its result arrives.
//   onResults(count)                   `count` results in resultWords (a Uint32Array), 5 words a call: id, CK_RV low,
//                                      CK_RV high, output length (on failure: 1 when the *Init call failed), ns taken
//   lane.call(fn, session, key, …)     the same call synchronously on the JS thread: output length, or -1 and
//                                      lane.lastError() = [CK_RV low, CK_RV high, *Init failed]
//   lane.close()                       stops the thread once its queue is empty (call when nothing is pending)
// No secret byte is copied or kept here: inputs and outputs stay in the caller's buffers.
#include <dlfcn.h>
#include <napi.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <pkcs11/pkcs11.h>
#include <uv.h>

namespace {

struct Call {
  uint32_t id;
  uint32_t fn;
  uint32_t param_kind;
  CK_SESSION_HANDLE session;
  CK_OBJECT_HANDLE key;
  CK_MECHANISM_TYPE mechanism;
  uint8_t* iv;
  size_t iv_len;
  uint8_t* aad;
  size_t aad_len;
  uint8_t* in;
  size_t in_len;
  uint8_t* out;
  size_t out_len;
};

constexpr int kResultWords = 5;
// How long the lane polls its queue before it sleeps: the JS thread usually submits the next call within a few
// microseconds of taking results, and waking a sleeping thread costs more than this.
constexpr auto kSpin = std::chrono::microseconds(100);
// Results are signalled once this few calls are left to run, or every kSignalEvery results.
constexpr size_t kLowWater = 4;
constexpr size_t kSignalEvery = 16;

bool HandleArg(const Napi::Value& v, CK_ULONG* out) {
  if (!v.IsBuffer()) return false;
  auto b = v.As<Napi::Buffer<uint8_t>>();
  if (b.Length() != sizeof(CK_ULONG)) return false;
  std::memcpy(out, b.Data(), sizeof(CK_ULONG));
  return true;
}

bool BytesArg(const Napi::Value& v, uint8_t** data, size_t* len) {
  if (!v.IsTypedArray()) return false;
  auto a = v.As<Napi::TypedArray>();
  if (a.TypedArrayType() != napi_uint8_array) return false;
  auto u = v.As<Napi::Uint8Array>();
  *data = u.Data();
  *len = u.ElementLength();
  return true;
}

class Lane : public Napi::ObjectWrap<Lane> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Lane", {InstanceMethod("submit", &Lane::Submit), InstanceMethod("close", &Lane::Close), InstanceMethod("stats", &Lane::Stats), InstanceMethod("call", &Lane::CallSync), InstanceMethod("lastError", &Lane::LastError)});
  }

  explicit Lane(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Lane>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsFunction() || !info[2].IsTypedArray() ||
        info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
        info[2].As<Napi::Uint32Array>().ElementLength() < kResultWords) {
      Napi::TypeError::New(env, "Lane(libraryPath, onResults, resultWords: Uint32Array)").ThrowAsJavaScriptException();
      return;
    }
    std::string path = info[0].As<Napi::String>();
    library_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (!library_) {
      Napi::Error::New(env, "the PKCS#11 module is not loaded in this process").ThrowAsJavaScriptException();
      return;
    }
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(library_, "C_GetFunctionList"));
    if (!get || get(&functions_) != CKR_OK || !functions_) {
      Napi::Error::New(env, "the PKCS#11 module gives no function list").ThrowAsJavaScriptException();
      return;
    }
    // A uv_async_t of our own rather than a thread-safe function: uv_async_send is a flag and (only when not already
    // pending) one eventfd write, where napi_call_threadsafe_function takes a mutex the JS thread also takes to
    // drain it (measured: the JS thread blocked on it and the lane preempted in its wake-up, turn about).
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
      Napi::Error::New(env, "cannot reach the event loop for the HSM lane").ThrowAsJavaScriptException();
      return;
    }
    async_ = new uv_async_t;
    if (uv_async_init(loop, async_, &Lane::OnAsync) != 0) {
      delete async_;
      async_ = nullptr;
      Napi::Error::New(env, "cannot create the HSM lane's completion channel").ThrowAsJavaScriptException();
      return;
    }
    async_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(async_));
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    // Results are written into this one array (JS's): no ArrayBuffer (an external backing store the GC tracks) per
    // delivery.
    auto words = info[2].As<Napi::Uint32Array>();
    result_words_ref_ = Napi::Persistent(words);
    result_words_ = words.Data();
    result_capacity_ = words.ElementLength() / kResultWords;
    context_ = std::make_unique<Napi::AsyncContext>(env, "hsm-lane");
    env_ = env;
    napi_add_env_cleanup_hook(env, &Lane::Cleanup, this);
  }

  ~Lane() override {
    Stop();
    if (env_) napi_remove_env_cleanup_hook(env_, &Lane::Cleanup, this);
    if (library_) dlclose(library_);
  }

 private:
  // Reads a call's arguments from info[first..first+8] (fn … output); false with a TypeError pending.
  static bool ParseCall(const Napi::CallbackInfo& info, size_t first, Call* c, const char* usage) {
    const size_t f = first;
    bool ok = info.Length() >= f + 9 && info[f].IsNumber() && info[f + 3].IsNumber() && info[f + 4].IsNumber() &&
              HandleArg(info[f + 1], &c->session) && HandleArg(info[f + 2], &c->key) && BytesArg(info[f + 7], &c->in, &c->in_len) &&
              BytesArg(info[f + 8], &c->out, &c->out_len);
    if (ok) {
      c->fn = info[f].As<Napi::Number>().Uint32Value();
      c->mechanism = static_cast<CK_MECHANISM_TYPE>(info[f + 3].As<Napi::Number>().Int64Value());
      c->param_kind = info[f + 4].As<Napi::Number>().Uint32Value();
      ok = c->fn <= 2 && c->param_kind <= 2 && (c->param_kind == 0 || BytesArg(info[f + 5], &c->iv, &c->iv_len)) &&
           (c->param_kind != 2 || BytesArg(info[f + 6], &c->aad, &c->aad_len));
    }
    if (!ok) Napi::TypeError::New(info.Env(), usage).ThrowAsJavaScriptException();
    return ok;
  }

  // The same call synchronously on this thread, without pkcs11js's marshalling of the mechanism object (~5 µs of
  // a ~27 µs SoftHSM call): the output length, or -1 with the CK_RV in lastError().
  Napi::Value CallSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Call c{};
    if (!ParseCall(info, 0, &c, "call(fn, session, key, mechanism, paramKind, iv, aad, input, output)")) return env.Undefined();
    CK_ULONG out_len = c.out_len;
    bool init_failed = false;
    CK_RV rv = Run(c, &out_len, &init_failed);
    if (rv == CKR_OK) return Napi::Number::New(env, static_cast<double>(out_len));
    last_rv_ = rv;
    last_init_failed_ = init_failed;
    return Napi::Number::New(env, -1);
  }

  // [CK_RV low, CK_RV high, 1 when the *Init call failed] of the last failed call().
  Napi::Value LastError(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto a = Napi::Array::New(env, 3);
    a.Set(0u, Napi::Number::New(env, static_cast<double>(static_cast<uint64_t>(last_rv_) & 0xffffffffu)));
    a.Set(1u, Napi::Number::New(env, static_cast<double>(static_cast<uint64_t>(last_rv_) >> 32)));
    a.Set(2u, Napi::Number::New(env, last_init_failed_ ? 1 : 0));
    return a;
  }

  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!async_ || stopped_) {
      Napi::Error::New(env, "the HSM lane is closed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Call c{};
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "submit(id, fn, session, key, mechanism, paramKind, iv, aad, input, output)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!ParseCall(info, 1, &c, "submit(id, fn, session, key, mechanism, paramKind, iv, aad, input, output)")) return env.Undefined();
    c.id = info[0].As<Napi::Number>().Uint32Value();
    if (pending_++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(async_));
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(c);
      queued_.store(queue_.size(), std::memory_order_relaxed);
      has_work_.store(true, std::memory_order_relaxed);
      wake = sleeping_;
    }
    if (wake) cv_.notify_one();
    if (!thread_.joinable()) thread_ = std::thread(&Lane::Loop, this);
    return env.Undefined();
  }

  // [calls run, times the thread slept, CPU seconds of the thread, seconds spent in the module's calls, times it found
  // its queue empty]: for benchmarks.
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto a = Napi::Array::New(env, 5);
    a.Set(0u, Napi::Number::New(env, static_cast<double>(calls_.load())));
    a.Set(1u, Napi::Number::New(env, static_cast<double>(sleeps_.load())));
    double cpu = 0;
    clockid_t clock;
    timespec t;
    if (thread_.joinable() && pthread_getcpuclockid(thread_.native_handle(), &clock) == 0 && clock_gettime(clock, &t) == 0)
      cpu = static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
    a.Set(2u, Napi::Number::New(env, cpu));
    a.Set(3u, Napi::Number::New(env, static_cast<double>(busy_ns_.load()) / 1e9));
    a.Set(4u, Napi::Number::New(env, static_cast<double>(dry_.load())));
    return a;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Stop();
    return info.Env().Undefined();
  }

  // Finishes what is queued, joins the thread and closes the completion channel. Results not yet delivered are
  // dropped: JS closes a lane only when nothing is pending.
  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    if (async_) {
      async_->data = nullptr;  // a send already pending finds no lane
      uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
      async_ = nullptr;
    }
  }

  static void Cleanup(void* self) {
    static_cast<Lane*>(self)->Stop();
  }

  void Loop() {
#ifdef __linux__
    pthread_setname_np(pthread_self(), "hsm_pkcs11 lane");
#endif
    std::vector<Call> batch;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (queue_.empty() && !stop_) {
          dry_++;
          lock.unlock();
          auto until = std::chrono::steady_clock::now() + kSpin;
          while (std::chrono::steady_clock::now() < until) {
            std::this_thread::yield();
            if (has_work_.load(std::memory_order_relaxed)) break;
          }
          lock.lock();
          while (queue_.empty() && !stop_) {
            sleeps_++;
            sleeping_ = true;
            cv_.wait(lock);
            sleeping_ = false;
          }
        }
        if (queue_.empty()) return;  // stopping
        batch.swap(queue_);
        queued_.store(0, std::memory_order_relaxed);
        has_work_.store(false, std::memory_order_relaxed);
      }
      for (size_t i = 0; i < batch.size(); i++) {
        Call& c = batch[i];
        auto started = std::chrono::steady_clock::now();
        CK_ULONG out_len = c.out_len;
        bool init_failed = false;
        CK_RV rv = Run(c, &out_len, &init_failed);
        if (rv != CKR_OK) out_len = init_failed ? 1 : 0;  // on failure the length word says which call failed
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count();
        busy_ns_.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
        uint32_t words[kResultWords] = {c.id, static_cast<uint32_t>(rv & 0xffffffffu), static_cast<uint32_t>(static_cast<uint64_t>(rv) >> 32),
                                        static_cast<uint32_t>(out_len), static_cast<uint32_t>(ns > 0xffffffffLL ? 0xffffffffLL : ns)};
        // Wake the event loop for a handful of results, not for each: a wake-up (eventfd write, the JS thread
        // leaving epoll) costs ~3 µs here, a seventh of a SoftHSM call. Early enough that the JS thread submits
        // more before this thread runs dry: when little work is left, or every kSignalEvery results.
        size_t left = batch.size() - i - 1 + queued_.load(std::memory_order_relaxed);
        bool signal;
        {
          std::lock_guard<std::mutex> lock(results_mu_);
          results_.insert(results_.end(), words, words + kResultWords);
          signal = !signalled_ && (left <= kLowWater || results_.size() >= kSignalEvery * kResultWords);
          if (signal) signalled_ = true;
        }
        if (signal) uv_async_send(async_);
      }
      calls_ += batch.size();
      batch.clear();
    }
  }

  CK_RV Run(Call& c, CK_ULONG* out_len, bool* init_failed) {
    CK_GCM_PARAMS gcm;
    CK_MECHANISM m{c.mechanism, nullptr, 0};
    if (c.param_kind == 1) {
      m.pParameter = c.iv;
      m.ulParameterLen = c.iv_len;
    } else if (c.param_kind == 2) {
      gcm.pIv = c.iv;
      gcm.ulIvLen = c.iv_len;
      gcm.ulIvBits = c.iv_len * 8;
      gcm.pAAD = c.aad_len ? c.aad : nullptr;
      gcm.ulAADLen = c.aad_len;
      gcm.ulTagBits = 128;
      m.pParameter = &gcm;
      m.ulParameterLen = sizeof gcm;
    }
    CK_RV rv = c.fn == 0 ? functions_->C_EncryptInit(c.session, &m, c.key)
               : c.fn == 1 ? functions_->C_DecryptInit(c.session, &m, c.key)
                           : functions_->C_SignInit(c.session, &m, c.key);
    *init_failed = rv != CKR_OK;
    if (rv != CKR_OK) return rv;
    switch (c.fn) {
      case 0:
        return functions_->C_Encrypt(c.session, c.in, c.in_len, c.out, out_len);
      case 1:
        return functions_->C_Decrypt(c.session, c.in, c.in_len, c.out, out_len);
      default:
        return functions_->C_Sign(c.session, c.in, c.in_len, c.out, out_len);
    }
  }

  // On the JS thread: every result gathered since the last delivery, in one call.
  static void OnAsync(uv_async_t* handle) {
    auto* self = static_cast<Lane*>(handle->data);
    if (self) self->Deliver();
  }

  void Deliver() {
    // Two buffers that trade places: no allocation per delivery on either thread once both have grown.
    std::vector<uint32_t>& words = delivering_;
    words.clear();
    {
      std::lock_guard<std::mutex> lock(results_mu_);
      words.swap(results_);
      signalled_ = false;
    }
    if (words.empty()) return;
    size_t calls = words.size() / kResultWords;
    pending_ -= calls;
    if (pending_ == 0) uv_unref(reinterpret_cast<uv_handle_t*>(async_));
    Napi::Env env(env_);
    Napi::HandleScope scope(env);
    for (size_t done = 0; done < calls;) {
      size_t n = std::min(calls - done, result_capacity_);
      std::memcpy(result_words_, words.data() + done * kResultWords, n * kResultWords * sizeof(uint32_t));
      done += n;
      // MakeCallback: microtasks (the callers' continuations) run when it returns, as after any I/O callback.
      callback_.MakeCallback(env.Global(), {Napi::Number::New(env, static_cast<double>(n))}, *context_);
      if (env.IsExceptionPending()) napi_fatal_exception(env_, env.GetAndClearPendingException().Value());
    }
  }

  void* library_ = nullptr;
  CK_FUNCTION_LIST_PTR functions_ = nullptr;
  uv_async_t* async_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::Reference<Napi::Uint32Array> result_words_ref_;
  uint32_t* result_words_ = nullptr;
  size_t result_capacity_ = 0;
  std::unique_ptr<Napi::AsyncContext> context_;
  napi_env env_ = nullptr;
  size_t pending_ = 0;  // JS thread only
  CK_RV last_rv_ = CKR_OK;  // JS thread only
  bool last_init_failed_ = false;
  bool stopped_ = false;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Call> queue_;  // under mu_
  bool sleeping_ = false;    // under mu_
  bool stop_ = false;        // under mu_
  std::atomic<bool> has_work_{false};
  std::atomic<size_t> queued_{0};  // queue_.size(), readable without mu_
  std::atomic<uint64_t> calls_{0}, sleeps_{0}, busy_ns_{0}, dry_{0};
  std::mutex results_mu_;
  std::vector<uint32_t> results_;  // under results_mu_
  std::vector<uint32_t> delivering_;  // JS thread only
  bool signalled_ = false;         // under results_mu_
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Lane", Lane::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(hsm_pkcs11, Init)
