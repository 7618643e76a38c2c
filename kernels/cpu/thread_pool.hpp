// SPDX-License-Identifier: Apache-2.0
// A fixed pool of worker threads running one parallel loop at a time; the caller takes part.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace polyinfer::inline v0::detail {

/// A non-owning reference to a callable `void(int64_t begin, int64_t end)`: two words, no
/// allocation. The callable must outlive the call it is passed to.
class RangeFn {
 public:
  template <typename F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, RangeFn>) RangeFn(F&& fn)
  noexcept  // NOLINT(google-explicit-constructor): used like a lambda parameter
      : object_(const_cast<void*>(static_cast<const void*>(&fn))),
        call_([](void* object, int64_t begin, int64_t end) {
          (*static_cast<std::remove_reference_t<F>*>(object))(begin, end);
        }) {}

  void operator()(int64_t begin, int64_t end) const { call_(object_, begin, end); }

 private:
  void* object_;
  void (*call_)(void*, int64_t, int64_t);
};

/// `threads` − 1 workers plus the calling thread. parallel_for runs one loop at a time: callers
/// on other threads wait their turn, so several models sharing one pool never oversubscribe the
/// cores. Workers spin for a short while after a loop (back-to-back matmuls of one token start
/// in a microsecond or two), then sleep on a futex.
///
///   ThreadPool pool(2);
///   pool.parallel_for(rows, [&](int64_t begin, int64_t end) { gemv_rows(begin, end); });
class ThreadPool {
 public:
  /// `threads` ≥ 1 counts the caller; 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Threads that run a loop, the caller included.
  [[nodiscard]] int threads() const noexcept { return static_cast<int>(workers_.size()) + 1; }

  /// Calls fn(begin, end) on disjoint ranges covering [0, tasks), from the caller and the
  /// workers, and returns when all are done. Ranges hold at least `min_chunk` tasks (except the
  /// last); with fewer than 2·min_chunk tasks, or when called from inside a loop of this pool,
  /// fn(0, tasks) runs on the caller alone. Ranges are handed out dynamically, so a thread
  /// slowed by another process does not hold the others back.
  void parallel_for(int64_t tasks, RangeFn fn, int64_t min_chunk = 1);

  /// How long idle workers spin before sleeping (default 50 µs); 0 sleeps at once.
  void set_spin_us(int spin_us) noexcept { spin_us_.store(spin_us, std::memory_order_relaxed); }

 private:
  void worker_loop();
  void run_chunks() noexcept;

  std::mutex submit_mutex_;  // one loop at a time
  std::vector<std::thread> workers_;
  std::atomic<int> spin_us_{50};
  alignas(64) std::atomic<uint32_t> generation_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  alignas(64) std::atomic<int64_t> next_{0};
  alignas(64) std::atomic<int> finished_{0};
  // The current loop; written by the caller before generation_ is bumped.
  RangeFn* fn_ = nullptr;
  int64_t tasks_ = 0;
  int64_t chunk_ = 1;
};

}  // namespace polyinfer::inline v0::detail
