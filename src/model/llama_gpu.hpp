// SPDX-License-Identifier: Apache-2.0
// GpuLlama: a loaded LlamaModel's forward pass on a GPU (weights uploaded once, KV cache in
// device memory, every op a kernel of kernels/cuda).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/llama.hpp"
#include "runtime/batch.hpp"
#include "runtime/kv_cache.hpp"

namespace polyinfer::inline v0::detail {

/// The Llama forward pass on GPU `ordinal`. Uploads the model's weights at construction
/// (matrices the GPU kernels cannot read are converted: Q6_K and other formats to Q8_0, odd
/// widths to F32); the LlamaModel must outlive it. One caller at a time (the LanguageModel's
/// mutex, the Engine runner's claim); any thread may be that caller.
class GpuLlama {
 public:
  /// Throws Error: kDevice when there is no such GPU, kOutOfMemory when the weights do not fit,
  /// kUnsupported for shapes the kernels lack (head_dim outside 32/64/96/128/256) and in a
  /// build without CUDA.
  [[nodiscard]] static std::unique_ptr<GpuLlama> create(const LlamaModel& model, int ordinal);
  /// Tensor parallelism: the model split over `ordinals` (attention heads and MLP columns;
  /// one all-reduce after the attention output and one after the MLP of every layer, through
  /// NCCL across GPUs), or, when every ordinal is the same GPU, that many ranks on it (the
  /// split checked on one card). Heads, KV heads and MLP columns must divide evenly.
  [[nodiscard]] static std::unique_ptr<GpuLlama> create(const LlamaModel& model,
                                                        std::span<const int> ordinals);
  virtual ~GpuLlama() = default;

  /// Device memory for a KvCache of this model (allocations on this GPU, or on every GPU of a
  /// split).
  [[nodiscard]] virtual std::shared_ptr<KvMemory> kv_memory() = 0;
  /// The shape of that KvCache (a split holds its share of the KV heads on each GPU).
  [[nodiscard]] virtual KvCacheShape kv_shape(KvType type) const noexcept = 0;
  /// Bytes of weights held on the GPU.
  [[nodiscard]] virtual uint64_t device_weight_bytes() const noexcept = 0;
  /// LlamaModel::forward on the GPU; `cache` must use kv_memory() and an F16 or F32 type.
  [[nodiscard]] virtual bool forward(std::span<const BatchEntry> batch, KvCache& cache,
                                     int64_t context_length, std::vector<float>& logits) = 0;
  /// forward() with every logits row reduced on the GPU to its greedy_pick: greedy decoding
  /// copies 8 bytes per row instead of the vocabulary's logits.
  [[nodiscard]] virtual bool forward_greedy(std::span<const BatchEntry> batch, KvCache& cache,
                                            int64_t context_length,
                                            std::vector<GreedyPick>& picks) = 0;
  /// forward() with logits row r sampled on the GPU under specs[r] (one per logits row; their
  /// penalized ranges index `penalized`): sampling copies a pick per row, not the logits (a
  /// row the device defers is finished by sample_pick() on the host).
  [[nodiscard]] virtual bool forward_sample(std::span<const BatchEntry> batch, KvCache& cache,
                                            int64_t context_length,
                                            std::span<const SampleSpec> specs,
                                            std::span<const int32_t> penalized,
                                            std::vector<SamplePick>& picks) = 0;
};

}  // namespace polyinfer::inline v0::detail
