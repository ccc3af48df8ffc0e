// A small pool of native threads for bulk byte work (AES-GCM segments, Reed-Solomon column ranges) that reads
// and writes memory in place: no message channel, no copy, no JS on the worker side. No N-API types here.
//
// A Job is `count` independent items. Threads claim items with an atomic counter, so a job spreads over every
// thread allowed to work on it (`max_parallel`) and a slow or preempted thread only delays what it claimed. A
// "guided" job hands out runs of items (a share of what is left, shrinking to one item at the end): few claims
// on the shared counter, fine balance at the end. Idle threads spin briefly before sleeping (a new job is usually
// moments away). `Help()` lets the calling thread work on its own job too and returns when the job is complete:
// for jobs too short to pay for a completion notification through the event loop.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hsmexec {

class Job {
 public:
  Job(size_t count, int max_parallel, bool guided = false)
      : count_(count), max_parallel_(max_parallel < 1 ? 1 : max_parallel), guided_(guided && count < (uint64_t{1} << 32)),
        span_(static_cast<uint64_t>(count)) {}
  virtual ~Job() = default;
  // Runs item i; called at most once per item, from any thread.
  virtual void Run(size_t i) = 0;
  // Runs items [begin, end) (a guided claim); override when a run of items is cheaper as one call.
  virtual void RunRange(size_t begin, size_t end) {
    for (size_t i = begin; i < end; i++) Run(i);
  }
  // Called once, on the thread that finished the last item (for submitted jobs; not for help()).
  virtual void Done() {}
  size_t count() const { return count_; }

 private:
  friend class Executor;
  const size_t count_;
  const int max_parallel_;
  const bool guided_;
  // Items left to claim (guided jobs: from both ends, see Drain).
  size_t Unclaimed() const {
    if (!guided_) {
      const size_t next = next_.load(std::memory_order_relaxed);
      return next < count_ ? count_ - next : 0;
    }
    const uint64_t s = span_.load(std::memory_order_relaxed);
    const size_t front = static_cast<size_t>(s >> 32), back = static_cast<size_t>(s & 0xffffffffu);
    return front < back ? back - front : 0;
  }
  // The claim counter alone on its cache line: the other fields change once per thread, not once per claim.
  alignas(64) std::atomic<size_t> next_{0};
  // Guided jobs: the unclaimed items [front, back) as front << 32 | back. A helping caller claims from the front
  // and pool threads from the back, so each thread computes about the same columns call after call and finds
  // them in its own core's cache (a shared counter split them wherever timing put the boundary: a 64 KiB stripe
  // called twice as fast on one thread as on two, measured).
  alignas(64) std::atomic<uint64_t> span_;
  alignas(64) std::atomic<size_t> done_{0};
  std::atomic<int> workers_{0};
  bool notify_ = true;   // under the executor's mutex
  bool waiting_ = false; // under the executor's mutex: a helping caller sleeps until the job completes
};

// Counters since the executor started (relaxed; for benchmarks and tests, not for decisions).
struct ExecutorStats {
  uint64_t helped = 0;        // Help() calls that shared their job
  uint64_t caller_items = 0;  // items run by helping callers
  uint64_t pool_items = 0;    // items run by pool threads
  uint64_t wakes = 0;         // sleeping pool threads woken for a job
  uint64_t blocked = 0;       // Help() calls that slept waiting for another thread's last items
};

class Executor {
 public:
  Executor() = default;
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Starts threads until there are at least n (never shrinks). Call from the owning JS thread.
  void EnsureThreads(int n);
  int threads() const { return static_cast<int>(threads_.size()); }
  // Queues the job; Done() runs on a pool thread when every item has run. The job must outlive that.
  void Submit(Job* job);
  // Runs items of `job` on this thread alongside up to max_parallel - 1 pool threads and returns when all items
  // have run; Done() is not called. The job is published before this thread starts on it, and a sleeping pool
  // thread is woken if none is polling: whenever it gets a core it takes what is left, so a late start costs
  // nothing but the wake-up call. When woken threads keep arriving after the caller has finished (a loaded
  // machine), the caller stops waking them for a growing number of calls (1, 3, 7 … 63) and works alone. Once this thread runs out of items it polls about as long as one item takes
  // here, then sleeps until the other threads finish theirs (a preempted helper may be off its core for a
  // scheduler slice: spinning that long would take the core from it).
  void Help(Job* job);

  ExecutorStats stats() const;

  // How long an idle thread polls for new work before it sleeps (microseconds): HSM_NATIVE_SPIN_US, default 50.
  static int SpinMicros();
  // This executor's own polling time instead (before its threads start): 0 for threads that mostly wait on the
  // kernel (file calls), where polling only takes the core from the JS thread.
  void SetSpinMicros(int us) { spin_us_ = us; }
  // Submitting wakes one sleeping thread, and each thread that joins a job with items left for another wakes the
  // next: the submitting (JS) thread pays one wake-up per job instead of one per thread (a futex call and an
  // inter-processor interrupt each, ~5 µs on this kind of VM). For jobs of many short items (file calls).
  void SetCascadeWake(bool on) { cascade_ = on; }
  // The name pool threads give themselves (Linux: at most 15 bytes; `top -H`, perf, /proc/<pid>/task/*/comm).
  // Set before the threads start.
  void SetThreadName(const std::string& name) { thread_name_ = name.substr(0, 15); }

 private:
  void Loop();
  // Publishes the job and wakes sleeping threads until `want` are awake for it.
  void Enqueue(Job* job, int want);
  // Runs items of job until none are left to claim; returns how many this thread ran. Guided jobs: a pool thread
  // claims from the back, a helping caller from the front.
  static size_t Drain(Job* job, bool from_back);
  Job* Claim();
  void Unqueue(Job* job);  // under mu_

  std::mutex mu_;
  std::condition_variable cv_;       // pool threads wait here for work
  std::condition_variable done_cv_;  // helping callers wait here for the last items of their job
  std::deque<Job*> queue_;
  std::atomic<uint64_t> epoch_{0};  // bumped on every submit: what spinning threads watch
  std::atomic<int> spinning_{0};    // threads awake and polling for work right now
  int sleepers_ = 0;
  int spin_us_ = -1;  // -1: SpinMicros()
  bool cascade_ = false;
  std::string thread_name_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> helped_{0}, caller_items_{0}, pool_items_{0}, wakes_{0}, blocked_{0};
  // Help() only (one owning JS thread): calls left before the next wake-up try, and the current backoff.
  int wake_skip_ = 0;
  int wake_backoff_ = 0;
};

}  // namespace hsmexec
