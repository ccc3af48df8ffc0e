// Small file-system calls of FsShardStore in batches: every call queued on the JS thread in one turn (a get's
// folder reads on its nodes, then its shard opens; the calls of concurrent gets) runs as one job on this addon's
// own threads, with one completion back to the event loop. Through node:fs each call is a thread-pool round trip:
// a wake-up of a pool thread and a completion of its own, which cost more CPU than the call itself (a 4 KiB get
// made 18 of them). No N-API types cross to the worker side; results are built on the JS thread.
//
//   batch(kinds: Uint8Array, paths: string[], fds: Int32Array, bytes: (Uint8Array | Uint8Array[] | undefined)[], maxBytes,
//         callback(results: unknown[]))   — per op, by kind; -errno when it failed:
//     0 list(path, bytes = optional name prefix as UTF-8): the folder's entries (only those whose name starts with
//       the prefix), folders with a trailing '/', other types left out.
//     1 read(path): the file opened, its first maxBytes read. A file no longer than that comes back whole as a
//       Buffer (closed); a longer one as [fd, size] (open: the caller closes it).
//     2 create(path): a new file (O_EXCL, mode 0600) opened for writing: its fd.
//     3 write(fd, bytes = a Uint8Array or an array of them): every byte appended, in order (writev), then
//       fdatasync: 0.
//     4 publish(fd, path = temp, bytes = final path as UTF-8): fd closed (unless -1), the final path's folder made
//       (mkdir -p), temp renamed to it: the number of folders made. A rename that finds the folder gone (pruned
//       meanwhile by a remove) makes it again, three times at most.
//     5 syncFolder(path): the folder opened, fsynced, closed: 0.
//     6 append(fd, bytes = as for write): every byte appended (no sync): 0.
//     7 remove(path, bytes = the node's folder as UTF-8): the file unlinked (a missing one is no error), then the
//       folders it leaves empty, up to (not including) the node's folder: 0.
// Buffers passed in are referenced until the callback has run.
#include <napi.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "async-job.h"

namespace {

constexpr int kList = 0;
constexpr int kRead = 1;
constexpr int kCreate = 2;
constexpr int kWrite = 3;
constexpr int kPublish = 4;
constexpr int kSyncFolder = 5;
constexpr int kAppend = 6;
constexpr int kRemove = 7;
// As many as libuv's pool: a batch's fdatasyncs of one put run side by side on a real disk.
constexpr int kThreads = 4;

struct Op {
  int kind = kList;
  std::string path;
  int in_fd = -1;
  const uint8_t* in = nullptr;  // a path or name prefix as UTF-8 (list, publish, remove)
  size_t in_len = 0;
  std::vector<iovec> parts;  // referenced JS buffers, in order (write, append)
  int result = 0;
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
    // A filtered listing (a name's entries in a folder of many): the rest never become JS strings.
    if (op.in_len > 0 && strncmp(name, reinterpret_cast<const char*>(op.in), op.in_len) != 0) continue;
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

void Create(Op& op) {
  int fd;
  do fd = open(op.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) op.error = errno;
  else op.result = fd;
}

void WriteAll(Op& op, bool sync) {
  std::vector<iovec>& iov = op.parts;
  size_t at = 0;
  while (at < iov.size()) {
    ssize_t n = writev(op.in_fd, iov.data() + at, static_cast<int>(std::min<size_t>(iov.size() - at, IOV_MAX)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      op.error = errno;
      return;
    }
    // The kernel may take less than asked: skip what it took, resume inside a part if need be.
    for (size_t left = static_cast<size_t>(n); left > 0;) {
      if (left >= iov[at].iov_len) {
        left -= iov[at].iov_len;
        at++;
      } else {
        iov[at].iov_base = static_cast<uint8_t*>(iov[at].iov_base) + left;
        iov[at].iov_len -= left;
        left = 0;
      }
    }
  }
  if (sync && fdatasync(op.in_fd) != 0) op.error = errno;
}

// mkdir -p of `dir`: the number of folders it made, or -errno.
int MakeFolders(const std::string& dir) {
  if (mkdir(dir.c_str(), 0777) == 0) {
    return 1;
  }
  if (errno == EEXIST) {
    struct stat st;
    if (stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    return -ENOTDIR;
  }
  if (errno != ENOENT) return -errno;
  const size_t cut = dir.find_last_of('/');
  if (cut == std::string::npos || cut == 0) return -ENOENT;
  const int above = MakeFolders(dir.substr(0, cut));
  if (above < 0) return above;
  if (mkdir(dir.c_str(), 0777) == 0) return above + 1;
  return errno == EEXIST ? above : -errno;
}

void Publish(Op& op) {
  if (op.in_fd >= 0 && close(op.in_fd) != 0 && errno != EINTR) {
    op.error = errno;
    return;
  }
  const std::string final_path(reinterpret_cast<const char*>(op.in), op.in_len);
  const size_t cut = final_path.find_last_of('/');
  const std::string parent = cut == std::string::npos ? std::string(".") : final_path.substr(0, cut);
  int made = 0;
  for (int attempt = 0;; attempt++) {
    const int m = MakeFolders(parent);
    if (m < 0) {
      op.error = -m;
      return;
    }
    made += m;
    if (rename(op.path.c_str(), final_path.c_str()) == 0) break;
    if (errno == ENOENT && attempt < 3) continue;
    op.error = errno;
    return;
  }
  op.result = made;
}

void SyncFolder(Op& op) {
  int fd;
  do fd = open(op.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    op.error = errno;
    return;
  }
  if (fsync(fd) != 0) op.error = errno;
  close(fd);
}

void Remove(Op& op) {
  if (unlink(op.path.c_str()) != 0 && errno != ENOENT) {
    op.error = errno;
    return;
  }
  const std::string root(reinterpret_cast<const char*>(op.in), op.in_len);
  std::string dir = op.path;
  for (;;) {
    const size_t cut = dir.find_last_of('/');
    if (cut == std::string::npos) break;
    dir.resize(cut);
    // A racing writer re-creates what it needs; a folder not empty (or gone) ends the pruning.
    if (dir.size() <= root.size() || dir.compare(0, root.size(), root) != 0 || rmdir(dir.c_str()) != 0) break;
  }
}

class BatchJob : public hsmexec::AsyncJob {
 public:
  BatchJob(std::vector<Op> ops, size_t max_bytes)
      : AsyncJob(ops.size(), static_cast<int>(std::min<size_t>(ops.size(), kThreads))), ops_(std::move(ops)), max_bytes_(max_bytes) {}

  void Run(size_t i) override {
    Op& op = ops_[i];
    switch (op.kind) {
      case kList: ListFolder(op); break;
      case kRead: ReadFile(op, max_bytes_); break;
      case kCreate: Create(op); break;
      case kWrite: WriteAll(op, true); break;
      case kAppend: WriteAll(op, false); break;
      case kRemove: Remove(op); break;
      case kPublish: Publish(op); break;
      case kSyncFolder: SyncFolder(op); break;
    }
  }

  std::vector<napi_value> Results(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, ops_.size());
    for (size_t i = 0; i < ops_.size(); i++) {
      Op& op = ops_[i];
      if (op.error != 0) {
        out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, -op.error));
      } else if (op.kind >= kCreate) {
        out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, op.result));
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
  if (info.Length() < 6 || !info[0].IsTypedArray() || !info[1].IsArray() || !info[2].IsTypedArray() || !info[3].IsArray() ||
      !info[4].IsNumber() || !info[5].IsFunction()) {
    Napi::TypeError::New(env, "batch(kinds, paths, fds, bytes, maxBytes, callback)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Uint8Array kinds = info[0].As<Napi::Uint8Array>();
  Napi::Array paths = info[1].As<Napi::Array>();
  Napi::TypedArray fds_value = info[2].As<Napi::TypedArray>();
  Napi::Array bytes = info[3].As<Napi::Array>();
  const double max_bytes = info[4].As<Napi::Number>().DoubleValue();
  const size_t n = kinds.ElementLength();
  if (fds_value.TypedArrayType() != napi_int32_array || paths.Length() != n || fds_value.ElementLength() != n ||
      bytes.Length() != n || !(max_bytes >= 1 && max_bytes <= 16 * 1024 * 1024)) {
    Napi::RangeError::New(env, "batch: arguments differ in length, or maxBytes is out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Int32Array fds = info[2].As<Napi::Int32Array>();
  std::vector<Op> ops(n);
  std::vector<Napi::Value> keep;
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value p = paths.Get(i);
    Napi::Value b = bytes.Get(i);
    const bool writes = kinds[i] == kWrite || kinds[i] == kAppend;
    if (!p.IsString() || kinds[i] > kRemove || !(b.IsUndefined() || b.IsTypedArray() || (writes && b.IsArray()))) {
      Napi::TypeError::New(env, "batch: a path is not a string, a kind is unknown, or bytes are not a typed array").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    ops[i].kind = kinds[i];
    ops[i].path = p.As<Napi::String>().Utf8Value();
    ops[i].in_fd = fds[i];
    // A write's parts, or the one buffer of any other kind; each is referenced until the callback.
    std::vector<Napi::Value> views;
    if (b.IsArray()) {
      Napi::Array list = b.As<Napi::Array>();
      for (uint32_t j = 0; j < list.Length(); j++) views.push_back(list.Get(j));
    } else if (b.IsTypedArray()) {
      views.push_back(b);
    }
    for (const Napi::Value& v : views) {
      // The view's own data pointer (offset applied): also right for views of a SharedArrayBuffer.
      napi_typedarray_type type;
      size_t length;
      void* data;
      if (!v.IsTypedArray() || napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok ||
          type != napi_uint8_array) {
        Napi::TypeError::New(env, "batch: bytes must be Uint8Arrays").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      if (writes) {
        if (length > 0) ops[i].parts.push_back(iovec{data, length});
      } else {
        ops[i].in = static_cast<const uint8_t*>(data);
        ops[i].in_len = length;
      }
      keep.push_back(v);
    }
    if (views.empty() && (ops[i].kind == kPublish || ops[i].kind == kRemove)) {
      Napi::TypeError::New(env, "batch: publish and remove need their second path").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  hsmexec::Runtime* rt = hsmexec::GetRuntime(env, "hsm_fs batch");
  if (!rt) return env.Undefined();
  auto* job = new BatchJob(std::move(ops), static_cast<size_t>(max_bytes));
  for (const Napi::Value& v : keep) job->Keep(v);
  job->SetCallback(info[5].As<Napi::Function>());
  if (rt->executor.threads() == 0) {
    rt->executor.SetSpinMicros(0);  // they wait on the kernel: no polling
    rt->executor.SetCascadeWake(true);  // the JS thread wakes one thread per batch, that one the next
  }
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
