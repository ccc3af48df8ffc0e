// Native thread pool (see executor.h). One mutex guards the queue and the hand-over points of a job's life
// (a thread joining or leaving it), so a job is never freed while a thread may still touch it; items themselves
// are claimed lock-free.
#include "executor.h"

#include <pthread.h>

#include <chrono>
#include <cstdlib>

namespace hsmexec {
namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

using Clock = std::chrono::steady_clock;

// What sleeping costs a helping caller on this kind of VM: the futex wait, the other thread's wake-up call
// (~5 µs: a syscall and an inter-processor interrupt through the hypervisor) and the caller's own wake-up
// (~3 µs median). Polling that much longer than the expected wait is cheaper than sleeping.
constexpr auto SLEEP_ROUND_TRIP = std::chrono::microseconds(10);

// Helped calls skipped between wake-up tries, at most, once wake-ups keep arriving too late.
constexpr int MAX_WAKE_BACKOFF = 63;

// A poll step this much longer than its ~0.5 µs means the thread was off its core meanwhile.
constexpr auto PREEMPTED_GAP = std::chrono::microseconds(20);

inline bool Complete(const std::atomic<size_t>& done, size_t count, const std::atomic<int>& workers) {
  return done.load(std::memory_order_acquire) == count && workers.load(std::memory_order_acquire) == 0;
}

}  // namespace

int Executor::SpinMicros() {
  static const int us = [] {
    const char* v = std::getenv("HSM_NATIVE_SPIN_US");
    const int n = v ? std::atoi(v) : 50;
    return n < 0 ? 0 : n > 10000 ? 10000 : n;
  }();
  return us;
}

Executor::~Executor() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    epoch_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void Executor::EnsureThreads(int n) {
  while (static_cast<int>(threads_.size()) < n) threads_.emplace_back([this] { Loop(); });
}

ExecutorStats Executor::stats() const {
  ExecutorStats s;
  s.helped = helped_.load(std::memory_order_relaxed);
  s.caller_items = caller_items_.load(std::memory_order_relaxed);
  s.pool_items = pool_items_.load(std::memory_order_relaxed);
  s.wakes = wakes_.load(std::memory_order_relaxed);
  s.blocked = blocked_.load(std::memory_order_relaxed);
  return s;
}

void Executor::Enqueue(Job* job, int want) {
  int wake;
  {
    std::lock_guard<std::mutex> l(mu_);
    queue_.push_back(job);
    epoch_.fetch_add(1, std::memory_order_release);
    // Threads polling right now see the new epoch by themselves; wake sleepers only for the rest.
    wake = want - spinning_.load(std::memory_order_relaxed);
    if (wake > sleepers_) wake = sleepers_;
    if (cascade_ && wake > 1) wake = 1;  // the thread woken wakes the next (Loop)
  }
  if (wake <= 0) return;
  wakes_.fetch_add(static_cast<uint64_t>(wake), std::memory_order_relaxed);
  for (int i = 0; i < wake; i++) cv_.notify_one();
}

void Executor::Submit(Job* job) { Enqueue(job, job->max_parallel_); }

// Under mu_.
void Executor::Unqueue(Job* job) {
  for (auto it = queue_.begin(); it != queue_.end(); ++it)
    if (*it == job) {
      queue_.erase(it);
      return;
    }
}

// Under mu_: the first queued job with items left and room for one more thread. Exhausted jobs leave the queue.
Job* Executor::Claim() {
  for (auto it = queue_.begin(); it != queue_.end();) {
    Job* j = *it;
    if (j->Unclaimed() == 0) {
      it = queue_.erase(it);
      continue;
    }
    if (j->workers_.load(std::memory_order_relaxed) < j->max_parallel_) {
      j->workers_.fetch_add(1, std::memory_order_relaxed);
      return j;
    }
    ++it;
  }
  return nullptr;
}

size_t Executor::Drain(Job* job, bool from_back) {
  size_t ran = 0;
  const size_t count = job->count_;
  if (!job->guided_) {
    for (;;) {
      const size_t i = job->next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= count) break;
      job->Run(i);
      ran++;
    }
  } else {
    // Guided: take a share of what is left (1/(2·threads)), never less than one item, from this thread's end.
    const size_t share = 2 * static_cast<size_t>(job->max_parallel_);
    uint64_t s = job->span_.load(std::memory_order_relaxed);
    for (;;) {
      const size_t front = static_cast<size_t>(s >> 32), back = static_cast<size_t>(s & 0xffffffffu);
      if (front >= back) break;
      const size_t n = (back - front) / share > 0 ? (back - front) / share : 1;
      const size_t begin = from_back ? back - n : front, end = begin + n;
      const uint64_t next = from_back ? (static_cast<uint64_t>(front) << 32) | begin : (static_cast<uint64_t>(end) << 32) | back;
      if (!job->span_.compare_exchange_weak(s, next, std::memory_order_relaxed)) continue;  // s reloaded
      job->RunRange(begin, end);
      ran += n;
      s = job->span_.load(std::memory_order_relaxed);
    }
  }
  // One count per thread, not per item: the shared line is touched once. Whoever leaves last sees the sum.
  if (ran) job->done_.fetch_add(ran, std::memory_order_acq_rel);
  return ran;
}

void Executor::Loop() {
#ifdef __linux__
  if (!thread_name_.empty()) pthread_setname_np(pthread_self(), thread_name_.c_str());
#endif
  for (;;) {
    Job* job;
    uint64_t seen;
    bool wake_next = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) return;
      job = Claim();
      seen = epoch_.load(std::memory_order_acquire);
      // Cascade: more items than this thread's next one, room for another thread, and one asleep.
      wake_next = cascade_ && job && sleepers_ > 0 && job->workers_.load(std::memory_order_relaxed) < job->max_parallel_ &&
                  job->Unclaimed() > 1;
    }
    if (wake_next) {
      wakes_.fetch_add(1, std::memory_order_relaxed);
      cv_.notify_one();
    }
    if (job) {
      pool_items_.fetch_add(Drain(job, true), std::memory_order_relaxed);
      bool finished = false, wake_caller = false;
      {
        std::lock_guard<std::mutex> l(mu_);
        const int left = job->workers_.fetch_sub(1, std::memory_order_acq_rel) - 1;
        // Whoever leaves a complete job last reports it; nothing touches the job after that.
        if (left == 0 && job->done_.load(std::memory_order_acquire) == job->count_) {
          if (job->notify_) {
            finished = true;
            job->notify_ = false;
            Unqueue(job);
          } else {
            wake_caller = job->waiting_;  // a helping caller sleeps on it
          }
        }
      }
      if (finished) job->Done();
      if (wake_caller) done_cv_.notify_all();  // the executor's, not the job's: the job may be gone already
      continue;
    }
    // Nothing to do: poll a little (a new job is usually moments away), then sleep. The budget is time spent
    // polling on a core: on a busy machine the thread may be descheduled mid-poll, and a gap of a scheduler
    // slice must not use it up (else it sleeps right when it gets the core back, and the next job pays a wake-up).
    auto left = std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(spin_us_ >= 0 ? spin_us_ : SpinMicros()));
    auto last = Clock::now();
    spinning_.fetch_add(1, std::memory_order_relaxed);
    while (epoch_.load(std::memory_order_acquire) == seen) {
      for (int i = 0; i < 16; i++) CpuRelax();  // ~0.5 µs here
      const auto now = Clock::now();
      const auto step = now - last;
      last = now;
      left -= step < PREEMPTED_GAP ? step : Clock::duration(0);
      if (left <= Clock::duration(0)) break;
    }
    spinning_.fetch_sub(1, std::memory_order_relaxed);
    if (epoch_.load(std::memory_order_acquire) != seen) continue;
    std::unique_lock<std::mutex> l(mu_);
    if (epoch_.load(std::memory_order_acquire) != seen || stop_) continue;
    sleepers_++;
    cv_.wait(l, [&] { return stop_ || epoch_.load(std::memory_order_acquire) != seen; });
    sleepers_--;
  }
}

void Executor::Help(Job* job) {
  job->notify_ = false;
  job->workers_.store(1, std::memory_order_relaxed);  // this thread: counts against max_parallel
  const bool share = job->max_parallel_ > 1 && job->count_ > 1 && !threads_.empty();
  uint64_t woke_before = 0;
  bool may_wake = false;
  if (share) {
    helped_.fetch_add(1, std::memory_order_relaxed);
    // Wake a sleeping thread unless recent wake-ups bought nothing (the caller finished before the woken thread
    // took an item: a busy machine). Then skip a growing number of calls between tries; a thread already
    // polling joins either way.
    may_wake = wake_skip_ == 0;
    if (!may_wake) wake_skip_--;
    woke_before = wakes_.load(std::memory_order_relaxed);
    Enqueue(job, may_wake ? job->max_parallel_ - 1 : 0);
  }
  const auto start = Clock::now();
  const size_t mine = Drain(job, false);
  const auto busy = Clock::now() - start;
  caller_items_.fetch_add(mine, std::memory_order_relaxed);
  if (may_wake && wakes_.load(std::memory_order_relaxed) != woke_before) {
    // This call woke a thread (this thread is the only one that wakes for helped jobs, so the count moved for
    // it): did the woken thread, or any pool thread, take part?
    if (mine < job->count_) wake_backoff_ = 0;
    else wake_backoff_ = wake_backoff_ < MAX_WAKE_BACKOFF ? 2 * wake_backoff_ + 1 : MAX_WAKE_BACKOFF;
    wake_skip_ = wake_backoff_;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    job->workers_.fetch_sub(1, std::memory_order_acq_rel);
    if (Complete(job->done_, job->count_, job->workers_)) {
      if (share) Unqueue(job);
      return;
    }
  }
  // Other threads still run items they claimed (runs shrink to one item at the end): poll for about what
  // an item takes here plus a sleep's round trip, then sleep until the last of them leaves.
  const Clock::duration per_item = mine > 0 ? busy / static_cast<long>(mine) : busy;
  const auto until = Clock::now() + 2 * per_item + SLEEP_ROUND_TRIP;
  while (!Complete(job->done_, job->count_, job->workers_) && Clock::now() < until)
    for (int i = 0; i < 16; i++) CpuRelax();
  std::unique_lock<std::mutex> l(mu_);
  if (!Complete(job->done_, job->count_, job->workers_)) {
    blocked_.fetch_add(1, std::memory_order_relaxed);
    job->waiting_ = true;
    done_cv_.wait(l, [&] { return Complete(job->done_, job->count_, job->workers_); });
  }
  Unqueue(job);
}

}  // namespace hsmexec
