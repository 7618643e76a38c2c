// SPDX-License-Identifier: Apache-2.0
// ResponseCache: keys, quality ordering, LRU within the byte budget, time to live.
#include <catch2/catch.hpp>

#include "engine/response_cache.hpp"

namespace {

using polyinfer::Quality;
using polyinfer::Request;
using polyinfer::Response;
using polyinfer::detail::response_cache_key;
using polyinfer::detail::response_cacheable;
using polyinfer::detail::ResponseCache;
using Clock = ResponseCache::Clock;

Response answer(std::string text, std::string model = "m") {
  Response r;
  r.text = std::move(text);
  r.model = std::move(model);
  r.tier = "native";
  r.tokens = {1, 2, 3};
  r.cost.units = 5;  // not stored
  return r;
}

}  // namespace

TEST_CASE("response cache: keys separate what changes an answer", "[engine][cache]") {
  Request a;
  a.prompt = "add 1 2 =";
  Request b = a;
  CHECK(response_cache_key(a, 16) == response_cache_key(b, 16));
  CHECK(response_cache_key(a, 16) != response_cache_key(a, 17));
  b.sampling.temperature = 0.5f;
  CHECK(response_cache_key(a, 16) != response_cache_key(b, 16));
  b = a;
  b.model = "small";
  CHECK(response_cache_key(a, 16) != response_cache_key(b, 16));
  b = a;
  b.stop = {"x"};
  CHECK(response_cache_key(a, 16) != response_cache_key(b, 16));
  b = a;
  b.prompt = "add 1 3 =";
  CHECK(response_cache_key(a, 16) != response_cache_key(b, 16));
  b = a;
  b.quality = Quality::kHigh;  // quality is an entry attribute, not part of the key
  CHECK(response_cache_key(a, 16) == response_cache_key(b, 16));

  CHECK(response_cacheable(a));
  a.sampling.temperature = 0.7f;
  CHECK_FALSE(response_cacheable(a));
  a.sampling.seed = 42;
  CHECK(response_cacheable(a));
}

TEST_CASE("response cache: hits, quality ordering, replacement", "[engine][cache]") {
  ResponseCache cache(1 << 20, 0);
  const auto now = Clock::now();
  CHECK_FALSE(cache.lookup("k", Quality::kLow, now));
  cache.insert("k", Quality::kStandard, answer("low-ish"), now);
  const auto hit = cache.lookup("k", Quality::kLow, now);
  REQUIRE(hit);
  CHECK(hit->text == "low-ish");
  CHECK(hit->tokens == std::vector<int32_t>{1, 2, 3});
  CHECK(hit->cost.units == 0);
  CHECK(cache.lookup("k", Quality::kStandard, now));
  CHECK_FALSE(cache.lookup("k", Quality::kHigh, now));  // made for less

  cache.insert("k", Quality::kHigh, answer("better"), now);
  CHECK(cache.lookup("k", Quality::kHigh, now)->text == "better");
  cache.insert("k", Quality::kLow, answer("worse"), now);  // does not replace a better one
  CHECK(cache.lookup("k", Quality::kLow, now)->text == "better");
  CHECK(cache.entries() == 1);
}

TEST_CASE("response cache: least recently used go first within the byte budget",
          "[engine][cache]") {
  const auto now = Clock::now();
  ResponseCache probe(1 << 20, 0);
  probe.insert("a", Quality::kHigh, answer("x"), now);
  const uint64_t one = probe.bytes();
  REQUIRE(one > 0);

  ResponseCache cache(3 * one, 0);
  cache.insert("a", Quality::kHigh, answer("x"), now);
  cache.insert("b", Quality::kHigh, answer("x"), now);
  cache.insert("c", Quality::kHigh, answer("x"), now);
  CHECK(cache.entries() == 3);
  CHECK(cache.lookup("a", Quality::kLow, now));  // a is now the most recent
  cache.insert("d", Quality::kHigh, answer("x"), now);
  CHECK(cache.entries() == 3);
  CHECK(cache.bytes() <= 3 * one);
  CHECK_FALSE(cache.lookup("b", Quality::kLow, now));  // the least recently used
  CHECK(cache.lookup("a", Quality::kLow, now));
  CHECK(cache.lookup("c", Quality::kLow, now));
  CHECK(cache.lookup("d", Quality::kLow, now));
  CHECK(cache.evictions() == 1);

  cache.set_max_bytes(one);
  CHECK(cache.entries() == 1);
  CHECK(cache.lookup("d", Quality::kLow, now));

  ResponseCache tiny(10, 0);  // an entry larger than the budget is not stored
  tiny.insert("a", Quality::kHigh, answer("x"), now);
  CHECK(tiny.entries() == 0);
}

TEST_CASE("response cache: entries expire after the time to live", "[engine][cache]") {
  ResponseCache cache(1 << 20, 10.0);
  const auto now = Clock::now();
  cache.insert("k", Quality::kHigh, answer("x"), now);
  CHECK(cache.lookup("k", Quality::kLow, now + std::chrono::seconds(9)));
  CHECK_FALSE(cache.lookup("k", Quality::kLow, now + std::chrono::seconds(11)));
  CHECK(cache.entries() == 0);
  CHECK(cache.bytes() == 0);
  // An expired better entry is replaced by a fresh worse one.
  cache.insert("k", Quality::kHigh, answer("old"), now);
  cache.insert("k", Quality::kLow, answer("new"), now + std::chrono::seconds(20));
  CHECK(cache.lookup("k", Quality::kLow, now + std::chrono::seconds(21))->text == "new");
}
