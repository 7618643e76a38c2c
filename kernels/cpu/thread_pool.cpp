// SPDX-License-Identifier: Apache-2.0
// ThreadPool: dynamic chunks over an atomic counter, spin-then-futex workers.
#include "kernels/cpu/thread_pool.hpp"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define POLYINFER_PAUSE() _mm_pause()
#else
#define POLYINFER_PAUSE() ((void)0)
#endif

namespace polyinfer::inline v0::detail {

namespace {

// Set while a thread runs a chunk of some pool's loop: a nested parallel_for runs inline.
thread_local bool t_inside_loop = false;

using Clock = std::chrono::steady_clock;

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  workers_.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(submit_mutex_);
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_seq_cst);
    generation_.notify_all();
  }
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::run_chunks() noexcept {
  const int64_t tasks = tasks_;
  const int64_t chunk = chunk_;
  t_inside_loop = true;
  for (;;) {
    const int64_t begin = next_.fetch_add(chunk, std::memory_order_relaxed);
    if (begin >= tasks) break;
    (*fn_)(begin, std::min(tasks, begin + chunk));
  }
  t_inside_loop = false;
}

void ThreadPool::worker_loop() {
  uint32_t seen = 0;
  for (;;) {
    uint32_t now = generation_.load(std::memory_order_acquire);
    if (now == seen) {
      // Spin a little: the next loop of a decoding model usually follows within microseconds.
      const auto spin = std::chrono::microseconds(spin_us_.load(std::memory_order_relaxed));
      const auto deadline = Clock::now() + spin;
      for (int i = 0; now == seen; ++i) {
        POLYINFER_PAUSE();
        now = generation_.load(std::memory_order_acquire);
        if ((i & 63) == 63 && Clock::now() >= deadline) break;
      }
      while (now == seen) {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        generation_.wait(seen, std::memory_order_seq_cst);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
        now = generation_.load(std::memory_order_acquire);
      }
    }
    seen = now;
    if (stop_.load(std::memory_order_relaxed)) return;
    run_chunks();
    finished_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::parallel_for(int64_t tasks, RangeFn fn, int64_t min_chunk) {
  if (tasks <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  if (workers_.empty() || tasks < 2 * min_chunk || t_inside_loop) {
    fn(0, tasks);
    return;
  }
  std::lock_guard<std::mutex> lock(submit_mutex_);
  // About four chunks per thread: enough to even out a slow thread, few enough that each
  // chunk streams a long run of contiguous weights.
  const int64_t per_thread = (tasks + threads() - 1) / threads();
  chunk_ = std::max(min_chunk, (per_thread + 3) / 4);
  tasks_ = tasks;
  fn_ = &fn;
  next_.store(0, std::memory_order_relaxed);
  finished_.store(0, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) generation_.notify_all();
  run_chunks();
  // Wait until every worker has left this loop (it may still read fn_/tasks_).
  const int workers = static_cast<int>(workers_.size());
  for (int i = 0; finished_.load(std::memory_order_acquire) != workers; ++i) {
    if (i < 4096) {
      POLYINFER_PAUSE();
    } else {
      std::this_thread::yield();  // a worker was descheduled: give it the core
    }
  }
  fn_ = nullptr;
}

}  // namespace polyinfer::inline v0::detail
