// N-API side of the native thread pool (executor.h), shared by both addons: one executor and one thread-safe
// function per addon instance; an AsyncJob keeps its JS buffers and callback referenced until the callback has
// run on the JS thread, so the memory the pool threads read and write stays alive (caller buffers are only read;
// outputs are engine memory). The thread-safe function is referenced only while jobs are pending, so an idle
// pool never keeps the process alive.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "executor.h"

namespace hsmexec {

class AsyncJob;

struct Runtime {
  Executor executor;
  napi_threadsafe_function tsfn = nullptr;
  size_t pending = 0;
};

class AsyncJob : public Job {
 public:
  AsyncJob(size_t count, int max_parallel, bool guided = false) : Job(count, max_parallel, guided) {}
  // Keeps a JS value (a buffer) alive until the job completes.
  void Keep(const Napi::Value& v) { keep_.push_back(Napi::Persistent(v)); }
  void SetCallback(const Napi::Function& f) { callback_ = Napi::Persistent(f); }
  // Arguments of the JS callback, built on the JS thread once every item has run.
  virtual std::vector<napi_value> Results(Napi::Env env) = 0;
  void Done() override { napi_call_threadsafe_function(runtime_->tsfn, this, napi_tsfn_nonblocking); }

  // Queues the job on the runtime's executor; ownership passes to the runtime (deleted after the callback).
  static void Start(Napi::Env env, Runtime* rt, AsyncJob* job) {
    job->runtime_ = rt;
    if (rt->pending++ == 0) napi_ref_threadsafe_function(env, rt->tsfn);
    rt->executor.Submit(job);
  }

  static void CallJs(napi_env raw, napi_value, void*, void* data) {
    std::unique_ptr<AsyncJob> job(static_cast<AsyncJob*>(data));
    Runtime* rt = job->runtime_;
    if (raw == nullptr) return;  // environment shutting down
    Napi::Env env(raw);
    if (--rt->pending == 0) napi_unref_threadsafe_function(raw, rt->tsfn);
    Napi::HandleScope scope(env);
    std::vector<napi_value> args = job->Results(env);
    Napi::Function cb = job->callback_.Value();
    job->keep_.clear();
    cb.Call(env.Undefined(), args);  // an exception here surfaces as an uncaught one, as for any callback
  }

 private:
  Runtime* runtime_ = nullptr;
  Napi::FunctionReference callback_;
  std::vector<Napi::Reference<Napi::Value>> keep_;
};

// A new runtime (threads start only when a job needs them); null with a JS exception pending on failure. Its
// threads are named after the first word of `name` ("hsm_gcm batch" → hsm_gcm).
inline Runtime* CreateRuntime(Napi::Env env, const char* name) {
  Runtime* rt = new Runtime();
  const std::string full(name);
  rt->executor.SetThreadName(full.substr(0, full.find(' ')));
  napi_value resource_name;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  if (napi_create_threadsafe_function(env, nullptr, nullptr, resource_name, 0, 1, nullptr, nullptr, nullptr,
                                      &AsyncJob::CallJs, &rt->tsfn) != napi_ok) {
    delete rt;
    Napi::Error::New(env, "cannot create the native pool's completion channel").ThrowAsJavaScriptException();
    return nullptr;
  }
  napi_unref_threadsafe_function(env, rt->tsfn);
  return rt;
}

// The addon instance's runtime kept as the environment's instance data (for addons without a Napi::Addon).
inline Runtime* GetRuntime(Napi::Env env, const char* name) {
  Runtime* rt = env.GetInstanceData<Runtime>();
  if (rt) return rt;
  rt = CreateRuntime(env, name);
  if (rt) env.SetInstanceData<Runtime>(rt);  // deleted (threads joined) when the environment is torn down
  return rt;
}

}  // namespace hsmexec
