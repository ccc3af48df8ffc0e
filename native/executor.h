// A small pool of native threads for bulk byte work (AES-GCM segments, Reed-Solomon column ranges) that reads
// and writes memory in place: no message channel, no copy, no JS on the worker side. No N-API types here.
//
// A Job is `count` independent items. Threads claim items one at a time (an atomic counter), so a job spreads
// over every thread allowed to work on it (`max_parallel`) and a slow or preempted thread only delays its own
// item. Idle threads spin briefly before sleeping: waking a sleeping vCPU costs tens of microseconds on this
// kind of VM, as much as a small job. `help()` lets the calling thread work on its own job too and returns when
// the job is complete (for jobs too short to pay for a completion notification).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hsmexec {

class Job {
 public:
  Job(size_t count, int max_parallel) : count_(count), max_parallel_(max_parallel < 1 ? 1 : max_parallel) {}
  virtual ~Job() = default;
  // Runs item i; called at most once per item, from any thread.
  virtual void Run(size_t i) = 0;
  // Called once, on the thread that finished the last item (for submitted jobs; not for help()).
  virtual void Done() {}
  size_t count() const { return count_; }

 private:
  friend class Executor;
  const size_t count_;
  const int max_parallel_;
  std::atomic<size_t> next_{0};
  std::atomic<size_t> done_{0};
  std::atomic<int> workers_{0};
  bool notify_ = true;
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
  // Runs items of `job` on this thread too, alongside up to max_parallel - 1 pool threads; returns when all
  // items have run. Done() is not called. Pool threads join only if one is awake (polling) right now: waking a
  // sleeping one costs more than a short job, so then this thread does it all and only nudges one awake for
  // the next call.
  void Help(Job* job);

  // How long an idle thread polls for new work before it sleeps (microseconds).
  static int SpinMicros();

 private:
  void Loop();
  // Runs items of job until none are left to claim; returns true if this thread ran its last item.
  static bool Drain(Job* job);
  Job* Claim();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job*> queue_;
  std::atomic<uint64_t> epoch_{0};  // bumped on every submit: what spinning threads watch
  std::atomic<int> spinning_{0};    // threads awake and polling for work right now
  int sleepers_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace hsmexec
