// Small file-system calls of FsShardStore in batches: every call queued on the JS thread in one turn (a get's
// folder reads on its nodes, then its shard opens; the calls of concurrent gets) runs as one job on this addon's
// own threads, with one completion back to the event loop. Through node:fs each call is a thread-pool round trip:
// a wake-up of a pool thread and a completion of its own, which cost more CPU than the call itself (a 4 KiB get
// made 18 of them). No N-API types cross to the worker side; results are built on the JS thread.
//
//   batch(kinds: Uint8Array, paths: string[], maxBytes: number, callback(results: unknown[]))
//     kind 0, list: the folder's entries, folders with a trailing '/', other types left out; or -errno.
//     kind 1, read: the file opened; its first maxBytes read. A file no longer than that comes back whole as a
//       Buffer (closed); a longer one as [fd, size] (open, the caller closes it); or -errno.
#include <napi.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "async-job.h"

namespace {

constexpr int kList = 0;
constexpr int kRead = 1;
constexpr int kThreads = 2;

struct Op {
  int kind = kList;
  std::string path;
  int error = 0;  // errno, 0 when it succeeded
  std::vector<std::string> entries;
  std::vector<char> bytes;
  int fd = -1;          // a read of a long file: left open
  int64_t size = 0;
};

void ListFolder(Op& op) {
  DIR* dir = opendir(op.path.c_str());
  if (!dir) {
    op.error = errno;
    return;
  }
  for (errno = 0; dirent* e = readdir(dir); errno = 0) {
    const char* name = e->d_name;
    if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN) {  // file systems without d_type: ask
      struct stat st;
      if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    }
    if (type == DT_DIR) op.entries.emplace_back(std::string(name) + "/");
    else if (type == DT_REG) op.entries.emplace_back(name);
  }
  if (errno != 0) op.error = errno;
  closedir(dir);
}

void ReadFile(Op& op, size_t max_bytes) {
  int fd;
  do fd = open(op.path.c_str(), O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    op.error = errno;
    return;
  }
  op.bytes.resize(max_bytes);
  size_t got = 0;
  while (got < max_bytes) {
    ssize_t n = pread(fd, op.bytes.data() + got, max_bytes - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      op.error = errno;
      close(fd);
      return;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got < max_bytes) {  // the whole file (a published blob never changes)
    op.bytes.resize(got);
    close(fd);
    return;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    op.error = errno;
    close(fd);
    return;
  }
  if (static_cast<size_t>(st.st_size) == got) {
    close(fd);
    return;
  }
  op.bytes.clear();  // longer: read through the descriptor
  op.bytes.shrink_to_fit();
  op.fd = fd;
  op.size = st.st_size;
}

class BatchJob : public hsmexec::AsyncJob {
 public:
  BatchJob(std::vector<Op> ops, size_t max_bytes)
      : AsyncJob(ops.size(), kThreads), ops_(std::move(ops)), max_bytes_(max_bytes) {}

  void Run(size_t i) override {
    Op& op = ops_[i];
    if (op.kind == kList) ListFolder(op);
    else ReadFile(op, max_bytes_);
  }

  std::vector<napi_value> Results(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, ops_.size());
    for (size_t i = 0; i < ops_.size(); i++) {
      Op& op = ops_[i];
      if (op.error != 0) {
        out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, -op.error));
      } else if (op.kind == kList) {
        Napi::Array names = Napi::Array::New(env, op.entries.size());
        for (size_t j = 0; j < op.entries.size(); j++) names.Set(static_cast<uint32_t>(j), Napi::String::New(env, op.entries[j]));
        out.Set(static_cast<uint32_t>(i), names);
      } else if (op.fd >= 0) {
        Napi::Array open = Napi::Array::New(env, 2);
        open.Set(0u, Napi::Number::New(env, op.fd));
        open.Set(1u, Napi::Number::New(env, static_cast<double>(op.size)));
        out.Set(static_cast<uint32_t>(i), open);
      } else {
        out.Set(static_cast<uint32_t>(i), Napi::Buffer<char>::Copy(env, op.bytes.data(), op.bytes.size()));
      }
    }
    return {out};
  }

 private:
  std::vector<Op> ops_;
  size_t max_bytes_;
};

Napi::Value Batch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsTypedArray() || !info[1].IsArray() || !info[2].IsNumber() || !info[3].IsFunction()) {
    Napi::TypeError::New(env, "batch(kinds, paths, maxBytes, callback)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Uint8Array kinds = info[0].As<Napi::Uint8Array>();
  Napi::Array paths = info[1].As<Napi::Array>();
  const double max_bytes = info[2].As<Napi::Number>().DoubleValue();
  if (kinds.ElementLength() != paths.Length() || !(max_bytes >= 1 && max_bytes <= 16 * 1024 * 1024)) {
    Napi::RangeError::New(env, "batch: kinds and paths differ in length, or maxBytes is out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<Op> ops(paths.Length());
  for (uint32_t i = 0; i < paths.Length(); i++) {
    Napi::Value p = paths.Get(i);
    if (!p.IsString() || kinds[i] > kRead) {
      Napi::TypeError::New(env, "batch: a path is not a string, or a kind is unknown").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    ops[i].kind = kinds[i];
    ops[i].path = p.As<Napi::String>().Utf8Value();
  }
  hsmexec::Runtime* rt = hsmexec::GetRuntime(env, "hsm_fs batch");
  if (!rt) return env.Undefined();
  auto* job = new BatchJob(std::move(ops), static_cast<size_t>(max_bytes));
  job->SetCallback(info[3].As<Napi::Function>());
  rt->executor.EnsureThreads(kThreads);
  hsmexec::AsyncJob::Start(env, rt, job);
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("batch", Napi::Function::New(env, Batch));
  return exports;
}

}  // namespace

NODE_API_MODULE(hsm_fs, Init)
