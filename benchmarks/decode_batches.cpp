// SPDX-License-Identifier: Apache-2.0
// Continuous-batching throughput of one decoder: N sequences prefilled, then decode steps with
// all N in one forward pass (what the Engine's batcher issues), on the CPU or a GPU.
//
//   decode_batches MODEL [--device cuda:0] [--tier q4_0] [--batches 1,8,32,128]
//                        [--prompt 128] [--gen 64] [--reps 3] [--threads N] [--greedy]
//                        [--sample T,K,P [--host-sample]]
//
// Prints one line per batch size: prefill tokens/s and generated tokens/s (all sequences
// together), medians over the repetitions. Every step copies the logits to the host, or with
// --greedy only each row's greedy pick (taken on the GPU; what greedy Engine requests do), or
// with --sample each row's pick at temperature T, top-k K, top-p P (on the GPU, as Engine
// requests that sample; --host-sample: logits copied and sampled on the host, as before).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend/device.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "model/llama.hpp"
#include "model/llama_gpu.hpp"
#include "polyinfer/error.hpp"

namespace {

using namespace polyinfer;
using namespace polyinfer::detail;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0.0 : values[values.size() / 2];
}

struct Options {
  std::string model;
  std::string device = "cpu";
  Tier tier = Tier::kNative;
  std::vector<int64_t> batches{1, 8, 32, 128};
  int64_t prompt = 128;
  int64_t gen = 64;
  int reps = 3;
  int threads = 0;
  bool greedy = false;
  bool sample = false;
  bool host_sample = false;
  SampleSpec spec;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--device") {
      o.device = value();
    } else if (arg == "--tier") {
      const auto tier = tier_from_name(value());
      if (!tier) throw std::runtime_error("unknown tier");
      o.tier = *tier;
    } else if (arg == "--batches") {
      o.batches.clear();
      const std::string list = value();
      for (size_t at = 0; at < list.size();) {
        const size_t comma = std::min(list.find(',', at), list.size());
        o.batches.push_back(std::stoll(list.substr(at, comma - at)));
        at = comma + 1;
      }
    } else if (arg == "--prompt") {
      o.prompt = std::stoll(value());
    } else if (arg == "--gen") {
      o.gen = std::stoll(value());
    } else if (arg == "--reps") {
      o.reps = std::stoi(value());
    } else if (arg == "--threads") {
      o.threads = std::stoi(value());
    } else if (arg == "--greedy") {
      o.greedy = true;
    } else if (arg == "--sample") {
      o.sample = true;
      const std::string rules = value();
      if (std::sscanf(rules.c_str(), "%f,%d,%f", &o.spec.temperature, &o.spec.top_k,
                      &o.spec.top_p) != 3) {
        throw std::runtime_error("--sample takes T,K,P (e.g. 0.8,40,0.95)");
      }
    } else if (arg == "--host-sample") {
      o.host_sample = true;
    } else if (o.model.empty()) {
      o.model = arg;
    } else {
      throw std::runtime_error("unexpected argument " + arg);
    }
  }
  if (o.model.empty()) throw std::runtime_error("usage: decode_batches MODEL [options]");
  return o;
}

int run(const Options& o) {
  const Placement placement = parse_placement(o.device, "--device");
  const Device device = placement.device;
  const ModelFile file = ModelFile::open(o.model);
  const auto model = LlamaModel::load(file, o.tier, !device.is_gpu());
  std::unique_ptr<GpuLlama> gpu;
  if (!placement.split.empty()) {
    gpu = GpuLlama::create(*model, placement.split);
  } else if (device.is_gpu()) {
    gpu = GpuLlama::create(*model, device.ordinal);
  }
  std::unique_ptr<ThreadPool> pool;
  if (!gpu) pool = std::make_unique<ThreadPool>(o.threads);
  LlamaWorkspace workspace;
  const LlamaShape& s = model->shape();
  const int64_t context = o.prompt + o.gen + 1;
  const KvCacheShape shape = gpu ? gpu->kv_shape(KvType::kF16) : model->kv_shape(KvType::kF16);
  const int64_t most = *std::max_element(o.batches.begin(), o.batches.end());
  const uint64_t row = kv_row_bytes(shape.type, shape.kv_heads, shape.head_dim);
  const uint64_t block = row * static_cast<uint64_t>(2 * shape.layers * shape.block_rows) + 64;
  const auto budget =
      static_cast<uint64_t>(most) *
      static_cast<uint64_t>((context + shape.block_rows - 1) / shape.block_rows + 1) * block;
  KvCache cache(shape, budget, gpu ? gpu->kv_memory() : nullptr);
  std::vector<float> logits;
  std::vector<GreedyPick> picks;
  std::vector<SampleSpec> specs;
  std::vector<SamplePick> sampled;
  SampleScratch scratch;
  uint64_t draws = 0;
  const auto forward = [&](std::span<const BatchEntry> batch) {
    bool ok = false;
    specs.assign(batch.size(), o.spec);
    for (SampleSpec& spec : specs) {
      spec.uniform = static_cast<double>((++draws * 0x9E3779B97F4A7C15ull) >> 11) * 0x1.0p-53;
    }
    if (gpu && o.greedy) {
      ok = gpu->forward_greedy(batch, cache, context, picks);
    } else if (gpu && o.sample && !o.host_sample) {
      ok = gpu->forward_sample(batch, cache, context, specs, {}, sampled);
    } else if (gpu) {
      ok = gpu->forward(batch, cache, context, logits);
    } else {
      ok = model->forward(batch, cache, context, workspace, pool.get(), logits);
      if (ok && o.greedy) greedy_picks(logits, model->shape().vocab, picks);
    }
    if (ok && o.sample && (o.host_sample || !gpu)) {
      sampled.resize(specs.size());
      for (size_t r = 0; r < specs.size(); ++r) {
        sampled[r] = sample_pick(logits.data() + static_cast<int64_t>(r) * s.vocab, s.vocab,
                                 specs[r], nullptr, scratch);
      }
    }
    if (!ok) throw std::runtime_error("kv cache full");
  };
  const std::string rules =
      fmt::format("T {}, top-k {}, top-p {}", o.spec.temperature, o.spec.top_k, o.spec.top_p);
  const std::string mode = o.greedy                    ? "greedy picks copied"
                           : o.sample && o.host_sample ? "logits sampled on the host, " + rules
                           : o.sample                  ? "sampled picks copied, " + rules
                                                       : "logits copied";
  fmt::print(
      "model {} ({} layers, hidden {}, vocab {}), tier {}, device {}, prompt {}, gen {}, {}\n",
      o.model, s.layers, s.hidden, s.vocab, tier_name(model->tier()), o.device, o.prompt, o.gen,
      mode);
  fmt::print("{:>6} {:>14} {:>14} {:>12}\n", "batch", "prefill tok/s", "decode tok/s", "ms/step");
  for (const int64_t n : o.batches) {
    std::vector<double> prefill_rates;
    std::vector<double> decode_rates;
    for (int rep = -1; rep < o.reps; ++rep) {  // rep -1 warms up (and captures graphs)
      std::vector<KvCache::SequenceId> ids;
      std::vector<std::vector<int32_t>> prompts;
      for (int64_t i = 0; i < n; ++i) {
        ids.push_back(cache.create());
        std::vector<int32_t> prompt(static_cast<size_t>(o.prompt));
        for (int64_t t = 0; t < o.prompt; ++t) {
          prompt[static_cast<size_t>(t)] =
              static_cast<int32_t>((7919 * (t + 1) + 104729 * (i + 1) + 31 * rep) % s.vocab);
        }
        prompts.push_back(std::move(prompt));
      }
      const auto prefill_start = Clock::now();
      for (int64_t i = 0; i < n; ++i) {
        const BatchEntry entry{ids[static_cast<size_t>(i)], prompts[static_cast<size_t>(i)],
                               LogitsRows::kLast};
        forward(std::span(&entry, 1));
      }
      const double prefill_s = seconds_since(prefill_start);
      std::vector<int32_t> next(static_cast<size_t>(n));
      std::vector<BatchEntry> batch(static_cast<size_t>(n));
      const auto decode_start = Clock::now();
      for (int64_t step = 0; step < o.gen; ++step) {
        for (int64_t i = 0; i < n; ++i) {
          next[static_cast<size_t>(i)] = static_cast<int32_t>((step * 131 + i * 17 + 3) % s.vocab);
          batch[static_cast<size_t>(i)] =
              BatchEntry{ids[static_cast<size_t>(i)], std::span(&next[static_cast<size_t>(i)], 1),
                         LogitsRows::kLast};
        }
        forward(batch);
      }
      const double decode_s = seconds_since(decode_start);
      for (const auto id : ids) cache.release(id);
      if (rep < 0) continue;
      prefill_rates.push_back(static_cast<double>(n * o.prompt) / prefill_s);
      decode_rates.push_back(static_cast<double>(n * o.gen) / decode_s);
    }
    const double decode = median(decode_rates);
    fmt::print("{:>6} {:>14.1f} {:>14.1f} {:>12.3f}\n", n, median(prefill_rates), decode,
               decode > 0 ? 1e3 * static_cast<double>(n) / decode : 0.0);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& error) {
    fmt::print(stderr, "decode_batches: {}\n", error.what());
    return 1;
  }
}
