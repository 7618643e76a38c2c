// SPDX-License-Identifier: Apache-2.0
// ThreadPool (coverage, nesting, concurrent callers) and ISA level detection / forcing.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cpu/thread_pool.hpp"
#include "kernels/ops.hpp"

namespace polyinfer::detail {

TEST_CASE("parallel_for covers every task once", "[kernels][pool]") {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    CHECK(pool.threads() == threads);
    for (int64_t tasks : {0, 1, 2, 5, 64, 1000, 100003}) {
      for (int64_t min_chunk : {1, 7, 1000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(tasks));
        pool.parallel_for(
            tasks,
            [&](int64_t begin, int64_t end) {
              CHECK(begin < end);
              for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)]++;
            },
            min_chunk);
        int wrong = 0;
        for (auto& hit : hits) wrong += hit.load() != 1;
        CHECK(wrong == 0);
      }
    }
  }
}

TEST_CASE("parallel_for inside parallel_for runs inline", "[kernels][pool]") {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(8, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      pool.parallel_for(10, [&](int64_t b, int64_t e) { sum += e - b; });
    }
  });
  CHECK(sum.load() == 80);
}

TEST_CASE("concurrent callers share one pool", "[kernels][pool]") {
  ThreadPool pool(2);
  std::vector<std::thread> callers;
  std::vector<int64_t> totals(4, 0);
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&, c] {
      for (int iteration = 0; iteration < 500; ++iteration) {
        std::atomic<int64_t> sum{0};
        pool.parallel_for(1000, [&](int64_t begin, int64_t end) {
          int64_t local = 0;
          for (int64_t i = begin; i < end; ++i) local += i;
          sum += local;
        });
        totals[c] += sum.load();
      }
    });
  }
  for (auto& caller : callers) caller.join();
  for (int64_t total : totals) CHECK(total == 500 * (999 * 1000 / 2));
}

TEST_CASE("workers wake after sleeping", "[kernels][pool]") {
  ThreadPool pool(2);
  pool.set_spin_us(0);
  for (int iteration = 0; iteration < 20; ++iteration) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    std::atomic<int64_t> count{0};
    pool.parallel_for(100, [&](int64_t begin, int64_t end) { count += end - begin; });
    CHECK(count.load() == 100);
  }
}

TEST_CASE("ISA levels: names, detection, forcing", "[kernels][isa]") {
  CHECK(isa_name(Isa::kScalar) == "scalar");
  CHECK(isa_name(Isa::kAvx2) == "avx2");
  CHECK(isa_name(Isa::kAvx512) == "avx512");
  CHECK(isa_name(Isa::kAvx512Vnni) == "avx512vnni");
  CHECK(isa_name(Isa::kAmx) == "amx");
  const Isa detected = detect_isa();
  INFO("detected " << isa_name(detected));
  force_isa(Isa::kScalar);
  CHECK(active_isa() == Isa::kScalar);
  force_isa(Isa::kAmx);  // clamped to what the CPU has
  CHECK(active_isa() == detected);
  force_isa(detected);
  WARN("this CPU: " << isa_name(detected));
}

}  // namespace polyinfer::detail
