// Native thread pool (see executor.h). One mutex guards the queue and the hand-over points of a job's life
// (a thread joining or leaving it), so a job is never freed while a thread may still touch it; items themselves
// are claimed lock-free.
#include "executor.h"

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

void Executor::Submit(Job* job) {
  bool wake;
  {
    std::lock_guard<std::mutex> l(mu_);
    queue_.push_back(job);
    epoch_.fetch_add(1, std::memory_order_release);
    wake = sleepers_ > 0;
  }
  if (wake) cv_.notify_all();
}

// Under mu_: the first queued job with items left and room for one more thread. Exhausted jobs leave the queue.
Job* Executor::Claim() {
  for (auto it = queue_.begin(); it != queue_.end();) {
    Job* j = *it;
    if (j->next_.load(std::memory_order_relaxed) >= j->count_) {
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

bool Executor::Drain(Job* job) {
  bool last = false;
  for (;;) {
    const size_t i = job->next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= job->count_) break;
    job->Run(i);
    if (job->done_.fetch_add(1, std::memory_order_acq_rel) + 1 == job->count_) last = true;
  }
  return last;
}

void Executor::Loop() {
  for (;;) {
    Job* job;
    uint64_t seen;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) return;
      job = Claim();
      seen = epoch_.load(std::memory_order_acquire);
    }
    if (job) {
      Drain(job);
      bool finished = false;
      {
        std::lock_guard<std::mutex> l(mu_);
        const int left = job->workers_.fetch_sub(1, std::memory_order_acq_rel) - 1;
        // Whoever leaves a complete job last reports it; nothing touches the job after Done().
        finished = job->notify_ && left == 0 && job->done_.load(std::memory_order_acquire) == job->count_;
        if (finished) {
          job->notify_ = false;
          for (auto it = queue_.begin(); it != queue_.end(); ++it)
            if (*it == job) {
              queue_.erase(it);
              break;
            }
        }
      }
      if (finished) job->Done();
      continue;
    }
    // Nothing to do: poll a little (a new job is usually moments away), then sleep.
    const auto until = Clock::now() + std::chrono::microseconds(SpinMicros());
    spinning_.fetch_add(1, std::memory_order_relaxed);
    while (epoch_.load(std::memory_order_acquire) == seen && Clock::now() < until)
      for (int i = 0; i < 64; i++) CpuRelax();
    spinning_.fetch_sub(1, std::memory_order_relaxed);
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
  if (job->max_parallel_ > 1 && job->count_ > 1 && !threads_.empty()) {
    if (spinning_.load(std::memory_order_relaxed) > 0) {
      Submit(job);
    } else {
      // Nobody awake: do it all here, and wake the pool so it polls when the next call comes.
      {
        std::lock_guard<std::mutex> l(mu_);
        epoch_.fetch_add(1, std::memory_order_release);
      }
      cv_.notify_all();
    }
  }
  Drain(job);
  {
    std::lock_guard<std::mutex> l(mu_);
    job->workers_.fetch_sub(1, std::memory_order_acq_rel);
  }
  // The other threads finish their last items: short, since items are claimed one at a time.
  for (int spins = 0;; spins++) {
    if (job->done_.load(std::memory_order_acquire) == job->count_ && job->workers_.load(std::memory_order_acquire) == 0) {
      std::lock_guard<std::mutex> l(mu_);
      if (job->workers_.load(std::memory_order_acquire) == 0) {
        for (auto it = queue_.begin(); it != queue_.end(); ++it)
          if (*it == job) {
            queue_.erase(it);
            break;
          }
        return;
      }
    }
    if (spins < 20000) CpuRelax();
    else std::this_thread::yield();
  }
}

}  // namespace hsmexec
