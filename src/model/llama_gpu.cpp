// SPDX-License-Identifier: Apache-2.0
// GpuLlama: the Llama forward pass over kernels/cuda, with fused QKV and gate/up projections,
// a device-memory KV cache, batched attention across sequences and CUDA graphs for decode.
#include "model/llama_gpu.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "common/fail.hpp"

#if defined(POLYINFER_HAVE_CUDA)
#include <dlfcn.h>

#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/ref/quant_ref.hpp"
#endif

namespace polyinfer::inline v0::detail {

#if !defined(POLYINFER_HAVE_CUDA)

std::unique_ptr<GpuLlama> GpuLlama::create(const LlamaModel& /*model*/, int ordinal) {
  fail(ErrorCode::kUnsupported, fmt::format("cuda:{}", ordinal),
       "this build has no CUDA backend (configure with POLYINFER_WITH_CUDA=ON)");
}

std::unique_ptr<GpuLlama> GpuLlama::create(const LlamaModel& model, std::span<const int> ordinals) {
  return create(model, ordinals.empty() ? 0 : ordinals[0]);
}

#else

namespace {

using gpu::Status;

// Throws for a failed GPU call, naming the step.
void check(Status status, std::string_view what) {
  if (status == Status::kOk) return;
  const ErrorCode code = status == Status::kOutOfMemory   ? ErrorCode::kOutOfMemory
                         : status == Status::kUnsupported ? ErrorCode::kUnsupported
                                                          : ErrorCode::kDevice;
  fail(code, "cuda", "{}: {}", what, gpu::status_name(status));
}

// Grows a device buffer to `bytes` (never shrinks).
void reserve(gpu::DeviceBuffer& buffer, uint64_t bytes, std::string_view what) {
  if (buffer.bytes() >= bytes) return;
  gpu::DeviceBuffer fresh;
  check(gpu::DeviceBuffer::allocate(std::max<uint64_t>(bytes, 256), &fresh), what);
  buffer = std::move(fresh);
}

gpu::DeviceBuffer upload_floats(std::span<const float> values, gpu::Stream stream,
                                std::string_view what) {
  gpu::DeviceBuffer buffer;
  check(gpu::DeviceBuffer::allocate(std::max<uint64_t>(values.size_bytes(), 4), &buffer), what);
  check(gpu::copy_to_device(buffer.data(), values.data(), values.size_bytes(), stream), what);
  return buffer;
}

// Several weight matrices over the same input whose outputs sit side by side in one row
// (q|k|v, gate|up): one matrix, one GEMV, when their formats agree.
struct Stack {
  struct Part {
    gpu::DeviceMatrix weight;
    int64_t offset = 0;  // first output column
  };
  std::vector<Part> parts;
  int64_t rows = 0;  // outputs in all
  gpu::DeviceBuffer bias;
  bool has_bias = false;
};

// The format a matrix is uploaded in: its own when the GPU kernels read it, else Q8_0 (Q6_K of
// Q4_K_M files and other k-quants), else F32.
DType gpu_dtype(const PackedMatrix& m) {
  if (gpu::matmul_supports(m.dtype(), m.cols())) return m.dtype();
  if (m.cols() % 32 == 0) return DType::kQ8_0;
  return DType::kF32;
}

// The matrix's bytes in `target` (GGUF layout), converted through f32 when it differs.
void append_bytes(const PackedMatrix& m, DType target, std::vector<std::byte>& out) {
  const uint64_t bytes = dtype_bytes(target, m.rows() * m.cols());
  const size_t at = out.size();
  out.resize(at + bytes);
  if (target == m.dtype()) {
    std::memcpy(out.data() + at, m.data(), bytes);
    return;
  }
  const uint64_t in_row = dtype_bytes(m.dtype(), m.cols());
  const uint64_t out_row = dtype_bytes(target, m.cols());
  std::vector<float> row(static_cast<size_t>(m.cols()));
  for (int64_t r = 0; r < m.rows(); ++r) {
    if (!ref::dequantize(m.dtype(), m.data() + r * in_row, row.data(), m.cols()) ||
        !ref::quantize(target, row.data(), out.data() + at + r * out_row, m.cols())) {
      fail(ErrorCode::kUnsupported, "cuda", "cannot convert {} weights to {}",
           dtype_name(m.dtype()), dtype_name(target));
    }
  }
}

// Rows [first, first + count) of a stored matrix (zero copy: GGUF rows are contiguous).
PackedMatrix row_slice(const PackedMatrix& m, int64_t first, int64_t count) {
  const uint64_t row = dtype_bytes(m.dtype(), m.cols());
  return PackedMatrix(m.dtype(), count, m.cols(), m.data() + first * row, false);
}

// Columns [first, first + count) of a stored matrix, copied into `storage`; both must be
// multiples of the format's block (checked by the caller's plan).
PackedMatrix column_slice(const PackedMatrix& m, int64_t first, int64_t count,
                          std::vector<std::byte>& storage) {
  const uint64_t row = dtype_bytes(m.dtype(), m.cols());
  const uint64_t skip = dtype_bytes(m.dtype(), first);
  const uint64_t take = dtype_bytes(m.dtype(), count);
  storage.resize(take * static_cast<uint64_t>(m.rows()));
  for (int64_t r = 0; r < m.rows(); ++r) {
    std::memcpy(storage.data() + r * take, m.data() + r * row + skip, take);
  }
  return PackedMatrix(m.dtype(), m.rows(), count, storage.data(), false);
}

std::vector<float> part(const std::vector<float>& bias, int64_t first, int64_t count) {
  if (bias.empty()) return {};
  return {bias.begin() + first, bias.begin() + first + count};
}

/// Sums a tensor-parallel group's partial results: every rank calls all_reduce() from its own
/// thread at the same points of the forward pass, with its buffer on its stream.
class Reducer {
 public:
  virtual ~Reducer() = default;
  virtual void all_reduce(int rank, float* data, int64_t count, gpu::Stream stream) = 0;
  /// Whether the ranks share one stream (every rank on one GPU).
  [[nodiscard]] virtual bool shared_stream() const noexcept = 0;
};

/// One rank's slice of a tensor-parallel group: attention heads and MLP columns split evenly;
/// rank 0 alone computes the logits.
struct ShardPlan {
  int rank = 0;
  int ranks = 1;
  Reducer* reducer = nullptr;
  gpu::Stream stream;  ///< the group's shared stream when reducer->shared_stream()
  /// Rank 0's KV block address → this rank's (every rank's KV memory mirrors rank 0's).
  std::function<std::byte*(std::byte*)> translate;
};

class KvDeviceMemory final : public KvMemory {
 public:
  KvDeviceMemory(int ordinal, gpu::Stream stream) : ordinal_(ordinal), stream_(stream) {}
  std::byte* allocate(uint64_t bytes) noexcept override {
    if (gpu::use_device(ordinal_) != Status::kOk) return nullptr;
    gpu::DeviceBuffer buffer;
    if (gpu::DeviceBuffer::allocate(bytes, &buffer) != Status::kOk) return nullptr;
    auto* data = static_cast<std::byte*>(buffer.data());
    buffers_.emplace(data, std::move(buffer));
    return data;
  }
  void release(std::byte* data) noexcept override { buffers_.erase(data); }
  void copy(std::byte* dst, const std::byte* src, uint64_t bytes) override {
    check(gpu::copy_on_device(dst, src, bytes, stream_), "kv cache block copy");
  }

 private:
  int ordinal_;
  gpu::Stream stream_;
  std::map<std::byte*, gpu::DeviceBuffer> buffers_;
};

struct GpuLayer {
  gpu::DeviceBuffer attn_norm, ffn_norm;
  Stack qkv, o, gate_up, down;
};

class CudaLlama final : public GpuLlama {
 public:
  CudaLlama(const LlamaModel& model, int ordinal, ShardPlan plan = {})
      : model_(model), ordinal_(ordinal), plan_(std::move(plan)) {
    const std::string where = fmt::format("cuda:{}", ordinal);
    if (ordinal >= gpu::device_count()) {
      fail(ErrorCode::kDevice, where, "no such GPU ({} visible)", gpu::device_count());
    }
    check(gpu::use_device(ordinal), "select device");
    if (plan_.reducer == nullptr || !plan_.reducer->shared_stream()) {
      check(gpu::DeviceStream::create(&stream_), "create stream");
    }
    check(gpu::Context::create(gpu_stream(), &context_), "create context");
    const LlamaShape& s = model.shape();
    const int ranks = plan_.ranks;
    if (s.heads % ranks != 0 || s.kv_heads % ranks != 0 || s.ffn % ranks != 0) {
      fail(ErrorCode::kUnsupported, where,
           "{} heads, {} kv heads and {} MLP columns do not split over {} GPUs", s.heads,
           s.kv_heads, s.ffn, ranks);
    }
    heads_ = s.heads / ranks;
    kv_heads_ = s.kv_heads / ranks;
    ffn_ = s.ffn / ranks;
    if (ranks > 1) graphs_enabled_ = false;  // a step spans the group: replayed eagerly
    gpu::DeviceKvView probe{KvType::kF16, s.kv_heads, s.head_dim, 16, nullptr, 0};
    std::vector<void*> one(1, nullptr);
    probe.blocks = one.data();
    if (!gpu::attention_supports(probe)) {
      fail(ErrorCode::kUnsupported, where,
           "head_dim {} has no GPU attention kernel (32, 64, 96, "
           "128, 256)",
           s.head_dim);
    }
    const gpu::Stream stream = gpu_stream();
    const int64_t q0 = plan_.rank * heads_ * s.head_dim;
    const int64_t qn = heads_ * s.head_dim;
    const int64_t k0 = plan_.rank * kv_heads_ * s.head_dim;
    const int64_t kn = kv_heads_ * s.head_dim;
    const int64_t f0 = plan_.rank * ffn_;
    for (const LlamaLayer& layer : model.layers()) {
      GpuLayer g;
      g.attn_norm = upload_floats(layer.attn_norm, stream, "attn_norm");
      g.ffn_norm = upload_floats(layer.ffn_norm, stream, "ffn_norm");
      if (ranks == 1) {
        g.qkv = stack({&layer.q, &layer.k, &layer.v});
        g.o = stack({&layer.o});
        g.gate_up = stack({&layer.gate, &layer.up});
        g.down = stack({&layer.down});
      } else {
        // This rank's heads (q, k, v rows) and MLP columns (gate, up rows); o and down read
        // the matching input columns and give partial sums, reduced over the group. Biases
        // of o and down are added by rank 0 only.
        for (const PackedMatrix* m : {&layer.o.weight, &layer.down.weight}) {
          const int64_t block = dtype_info(m->dtype())->block_elements;
          const int64_t width = m == &layer.o.weight ? qn : ffn_;
          if (width % block != 0) {
            fail(ErrorCode::kUnsupported, where,
                 "{} columns per GPU are not whole {} blocks of {}: choose fewer GPUs", width,
                 dtype_name(m->dtype()), block);
          }
        }
        const Linear q{row_slice(layer.q.weight, q0, qn), part(layer.q.bias, q0, qn)};
        const Linear k{row_slice(layer.k.weight, k0, kn), part(layer.k.bias, k0, kn)};
        const Linear v{row_slice(layer.v.weight, k0, kn), part(layer.v.bias, k0, kn)};
        g.qkv = stack({&q, &k, &v});
        std::vector<std::byte> columns;
        const Linear o{column_slice(layer.o.weight, q0, qn, columns),
                       plan_.rank == 0 ? layer.o.bias : std::vector<float>{}};
        g.o = stack({&o});
        const Linear gate{row_slice(layer.gate.weight, f0, ffn_), part(layer.gate.bias, f0, ffn_)};
        const Linear up{row_slice(layer.up.weight, f0, ffn_), part(layer.up.bias, f0, ffn_)};
        g.gate_up = stack({&gate, &up});
        const Linear down{column_slice(layer.down.weight, f0, ffn_, columns),
                          plan_.rank == 0 ? layer.down.bias : std::vector<float>{}};
        g.down = stack({&down});
      }
      layers_.push_back(std::move(g));
    }
    for (const GpuLayer& l : layers_) {
      for (const Stack* stack : {&l.qkv, &l.o, &l.gate_up, &l.down}) {
        for (const Stack::Part& part : stack->parts) {
          const DType t = part.weight.dtype();
          if (t == DType::kQ4_0 || t == DType::kQ8_0 || t == DType::kQ4_K) integer_dtype_ = t;
        }
      }
    }
    // Residual + RMSNorm folded into the GEMVs around them (fold_norms()) where every layer
    // matrix reads 8-bit input and o / down are one matrix without bias, on one GPU.
    // (A producer has at most hidden / 4 blocks, each writing one partial sum.)
    foldable_ = plan_.ranks == 1 && model.shape().hidden % 32 == 0 &&
                model.shape().hidden <= 4 * gpu::kNormFoldPartials;
    for (const GpuLayer& l : layers_) {
      for (const Stack* stack : {&l.qkv, &l.o, &l.gate_up, &l.down}) {
        for (const Stack::Part& part : stack->parts) {
          const DType t = part.weight.dtype();
          foldable_ = foldable_ && (t == DType::kQ4_0 || t == DType::kQ8_0 || t == DType::kQ4_K);
        }
      }
      for (const Stack* stack : {&l.o, &l.down}) {
        foldable_ = foldable_ && stack->parts.size() == 1 && !stack->has_bias;
      }
    }
    // The MLP's residual too, except for Q4_0 layers. llama-3-8b batch-1 decode on an H200
    // (docs/measurements/gpu-2026-11-26-session16.txt, call 3; tok/s, both folds / the attention
    // block's alone / neither): Q4_0 551 / 556 / 536, Q4_K 541 / 521 / 521, Q8_0 385 / 378 / 362.
    fold_down_ = integer_dtype_ != DType::kQ4_0;
    // POLYINFER_GPU_FOLD_NORMS: 0 neither, o the attention block's alone, 1 both (comparisons).
    if (const char* env = std::getenv("POLYINFER_GPU_FOLD_NORMS"); env != nullptr) {
      if (*env == '0') foldable_ = false;
      if (*env == 'o') fold_down_ = false;
      if (*env == '1') fold_down_ = true;
    }
    output_norm_ = upload_floats(model.output_norm(), stream, "output_norm");
    if (plan_.rank == 0) {  // the logits: rank 0 alone
      const Linear output{PackedMatrix(model.output().dtype(), model.output().rows(),
                                       model.output().cols(), model.output().data(), false),
                          {}};
      output_ = stack({&output});
    }
    inv_freq_ = upload_floats(std::span(model.rope_table().inv_freq.get(),
                                        static_cast<size_t>(model.rope_table().head_dim / 2)),
                              stream, "rope");
    upload_embedding();
    check(gpu::synchronize(stream), "upload");
    if (const char* env = std::getenv("POLYINFER_GPU_PROFILE"); env != nullptr && *env == '1') {
      profile_ = true;
      graphs_enabled_ = false;
    }
    if (const char* env = std::getenv("POLYINFER_GPU_FUSE"); env != nullptr && *env == '0') {
      fuse_ = false;
    }
    if (const char* env = std::getenv("POLYINFER_GPU_GRAPHS"); env != nullptr && *env == '0') {
      graphs_enabled_ = false;  // A/B measurements of graph replay
    }
    if (const char* env = std::getenv("POLYINFER_GPU_SKIP"); env != nullptr) {
      for (std::string_view list = env; !list.empty();) {
        const size_t comma = std::min(list.find(','), list.size());
        if (comma > 0) skipped_.emplace(list.substr(0, comma));
        list.remove_prefix(std::min(comma + 1, list.size()));
      }
    }
  }

  std::shared_ptr<KvMemory> kv_memory() override {
    return std::make_shared<KvDeviceMemory>(ordinal_, gpu_stream());
  }
  KvCacheShape kv_shape(KvType type) const noexcept override {
    KvCacheShape shape = model_.kv_shape(type);
    shape.kv_heads = kv_heads_;
    return shape;
  }
  uint64_t device_weight_bytes() const noexcept override { return weight_bytes_; }

  bool forward(std::span<const BatchEntry> batch, KvCache& cache, int64_t context_length,
               std::vector<float>& logits) override {
    return pass(batch, cache, context_length, [&](int64_t rows) { copy_logits(rows, logits); });
  }

  bool forward_greedy(std::span<const BatchEntry> batch, KvCache& cache, int64_t context_length,
                      std::vector<GreedyPick>& picks) override {
    return pass(batch, cache, context_length, [&](int64_t rows) { copy_picks(rows, picks); });
  }

  bool forward_sample(std::span<const BatchEntry> batch, KvCache& cache, int64_t context_length,
                      std::span<const SampleSpec> specs, std::span<const int32_t> penalized,
                      std::vector<SamplePick>& picks) override {
    return pass(batch, cache, context_length,
                [&](int64_t rows) { copy_samples(rows, specs, penalized, picks); });
  }

  // run(), then `copy` of the results, then finish(); false when the KV cache has no room.
  template <typename Copy>
  bool pass(std::span<const BatchEntry> batch, KvCache& cache, int64_t context_length,
            const Copy& copy) {
    const int64_t rows = run(batch, cache, context_length);
    if (rows < 0) return false;
    copy(rows);
    finish(batch, cache);
    return true;
  }

  // ---- The steps of forward(), also driven by a tensor-parallel group.

  // The forward pass up to the logits (rows × vocab in logits_, on the stream); the number of
  // logits rows, or −1 when the KV cache has no room.
  int64_t run(std::span<const BatchEntry> batch, KvCache& cache, int64_t context_length);

  void copy_logits(int64_t rows, std::vector<float>& logits) {
    logits.resize(static_cast<size_t>(rows * model_.shape().vocab));
    check(gpu::copy_to_host(logits.data(), logits_.data(), logits.size() * sizeof(float),
                            gpu_stream()),
          "logits");
  }

  void copy_picks(int64_t rows, std::vector<GreedyPick>& picks) {
    picks.resize(static_cast<size_t>(rows));
    reserve(picks_, std::max<uint64_t>(picks.size(), 1) * sizeof(GreedyPick), "greedy picks");
    check(gpu::greedy_rows(logits_.as<float>(), rows, model_.shape().vocab, picks_.as<GreedyPick>(),
                           gpu_stream()),
          "greedy picks");
    check(gpu::copy_to_host(picks.data(), picks_.data(), picks.size() * sizeof(GreedyPick),
                            gpu_stream()),
          "greedy picks");
  }

  void copy_samples(int64_t rows, std::span<const SampleSpec> specs,
                    std::span<const int32_t> penalized, std::vector<SamplePick>& picks) {
    if (static_cast<int64_t>(specs.size()) != rows) {
      fail(ErrorCode::kInvalidArgument, "sampling",
           "{} sampling specs for {} logits rows (one per row)", specs.size(), rows);
    }
    const int64_t vocab = model_.shape().vocab;
    picks.resize(static_cast<size_t>(rows));
    if (rows == 0) return;
    reserve(sample_specs_, specs.size_bytes(), "sampling specs");
    reserve(penalized_, std::max<uint64_t>(penalized.size_bytes(), 4), "penalized ids");
    reserve(sample_scratch_, static_cast<uint64_t>(rows * vocab) * sizeof(float),
            "sampling scratch");
    reserve(picks_, picks.size() * sizeof(SamplePick), "sampled picks");
    check(gpu::copy_to_device(sample_specs_.data(), specs.data(), specs.size_bytes(), gpu_stream()),
          "sampling specs");
    if (!penalized.empty()) {
      check(gpu::copy_to_device(penalized_.data(), penalized.data(), penalized.size_bytes(),
                                gpu_stream()),
            "penalized ids");
    }
    check(gpu::sample_rows(logits_.as<float>(), rows, vocab, sample_specs_.as<SampleSpec>(),
                           penalized_.as<int32_t>(), sample_scratch_.as<float>(),
                           picks_.as<SamplePick>(), gpu_stream()),
          "sampled picks");
    check(gpu::copy_to_host(picks.data(), picks_.data(), picks.size() * sizeof(SamplePick),
                            gpu_stream()),
          "sampled picks");
    // Rows whose kept candidates outgrow the device's: their logits, sampled here.
    for (int64_t r = 0; r < rows; ++r) {
      if (picks[static_cast<size_t>(r)].deferred == 0) continue;
      deferred_row_.resize(static_cast<size_t>(vocab));
      check(gpu::copy_to_host(deferred_row_.data(), logits_.as<float>() + r * vocab,
                              deferred_row_.size() * sizeof(float), gpu_stream()),
            "logits");
      picks[static_cast<size_t>(r)] =
          sample_pick(deferred_row_.data(), vocab, specs[static_cast<size_t>(r)], penalized.data(),
                      host_scratch_);
    }
  }

  // After the results are copied: profile bookkeeping, the cache takes the tokens (a group's
  // ranks leave that to the group).
  void finish(std::span<const BatchEntry> batch, KvCache& cache) {
    if (profile_) {
      collect_profile();
      profiled_wall_ms_ +=
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall_start_)
              .count();
    }
    if (plan_.ranks > 1) return;
    for (const BatchEntry& entry : batch) cache.commit(entry.sequence, entry.tokens);
  }

  void synchronize() { check(gpu::synchronize(gpu_stream()), "synchronize"); }

 private:
  Stack stack(std::initializer_list<const Linear*> linears) {
    Stack result;
    std::vector<DType> types;
    for (const Linear* l : linears) types.push_back(gpu_dtype(l->weight));
    const bool same =
        std::all_of(types.begin(), types.end(), [&](DType t) { return t == types[0]; });
    std::vector<float> bias;
    for (const Linear* l : linears) {
      if (!l->bias.empty()) result.has_bias = true;
    }
    const gpu::Stream stream = gpu_stream();
    std::vector<std::byte> bytes;
    int64_t offset = 0;
    int64_t group_first = 0;  // output offset of the bytes gathered so far
    int64_t group_rows = 0;
    size_t index = 0;
    const auto flush = [&](DType dtype, int64_t cols) {
      if (group_rows == 0) return;
      Stack::Part part;
      check(gpu::DeviceMatrix::upload(dtype, group_rows, cols, bytes.data(), stream, &part.weight),
            "upload weights");
      part.offset = group_first;
      weight_bytes_ += part.weight.bytes();
      result.parts.push_back(std::move(part));
      check(gpu::synchronize(stream), "upload weights");  // `bytes` is reused
      bytes.clear();
      group_rows = 0;
    };
    for (const Linear* l : linears) {
      const PackedMatrix& w = l->weight;
      if (!same && group_rows > 0) flush(types[index - 1], w.cols());
      if (group_rows == 0) group_first = offset;
      append_bytes(w, types[index], bytes);
      group_rows += w.rows();
      if (result.has_bias) {
        if (l->bias.empty()) {
          bias.insert(bias.end(), static_cast<size_t>(w.rows()), 0.0f);
        } else {
          bias.insert(bias.end(), l->bias.begin(), l->bias.end());
        }
      }
      offset += w.rows();
      ++index;
    }
    flush(types.back(), (*linears.begin())->weight.cols());
    result.rows = offset;
    if (result.has_bias) result.bias = upload_floats(bias, stream, "bias");
    return result;
  }

  void upload_embedding() {
    const LlamaShape& s = model_.shape();
    embedding_dtype_ = model_.embedding_dtype();
    const gpu::Stream stream = gpu_stream();
    if (gpu::embed_supports(embedding_dtype_) &&
        ((embedding_dtype_ != DType::kQ8_0 && embedding_dtype_ != DType::kQ4_0) ||
         s.hidden % 32 == 0)) {
      const uint64_t bytes = dtype_bytes(embedding_dtype_, s.vocab * s.hidden);
      check(gpu::DeviceBuffer::allocate(bytes, &embedding_), "upload embedding");
      check(gpu::copy_to_device(embedding_.data(), model_.embedding_data(), bytes, stream),
            "upload embedding");
      return;
    }
    // Other formats (k-quants): dequantized once to f32 rows.
    embedding_dtype_ = DType::kF32;
    const uint64_t in_row = dtype_bytes(model_.embedding_dtype(), s.hidden);
    check(gpu::DeviceBuffer::allocate(static_cast<uint64_t>(s.vocab * s.hidden) * 4, &embedding_),
          "upload embedding");
    std::vector<float> rows(static_cast<size_t>(std::min<int64_t>(s.vocab, 4096) * s.hidden));
    for (int64_t first = 0; first < s.vocab; first += 4096) {
      const int64_t count = std::min<int64_t>(4096, s.vocab - first);
      for (int64_t r = 0; r < count; ++r) {
        if (!ref::dequantize(model_.embedding_dtype(),
                             model_.embedding_data() + (first + r) * in_row,
                             rows.data() + r * s.hidden, s.hidden)) {
          fail(ErrorCode::kUnsupported, "cuda", "cannot read {} token embeddings",
               dtype_name(model_.embedding_dtype()));
        }
      }
      check(gpu::copy_to_device(embedding_.as<float>() + first * s.hidden, rows.data(),
                                static_cast<uint64_t>(count * s.hidden) * 4, stream),
            "upload embedding");
      check(gpu::synchronize(stream), "upload embedding");
    }
  }

  // xq: x in 8-bit blocks (quantized_inputs()), or null.
  void matmul(const Stack& stack, const float* x, int64_t tokens, float* y,
              const void* xq = nullptr) {
    const int64_t cols = stack.parts.front().weight.cols();
    for (const Stack::Part& part : stack.parts) {
      check(gpu::matmul(*context_, part.weight, x, xq, tokens, cols, y + part.offset, stack.rows),
            "matmul");
    }
    if (stack.has_bias) {
      check(gpu::add_bias(y, stack.bias.as<float>(), tokens, stack.rows, gpu_stream()), "bias");
    }
  }

  // The GEMVs of a stack on the input a gemv_add_residual() left in `fold` (fold_norms()).
  void matmul_normed(const Stack& stack, const gpu::NormFold& fold, float* y) {
    for (const Stack::Part& part : stack.parts) {
      check(gpu::gemv_normed(*context_, part.weight, fold, y + part.offset), "matmul (normed)");
    }
    if (stack.has_bias) {
      check(gpu::add_bias(y, stack.bias.as<float>(), 1, stack.rows, gpu_stream()), "bias");
    }
  }

  // Whether a step of `tokens` folds each residual connection and the RMSNorm after it into the
  // GEMVs around them (gpu::gemv_add_residual(), gpu::gemv_normed()): one-token decode on 8-bit
  // inputs. POLYINFER_GPU_FOLD_NORMS=0 keeps the add_rms_norm launches (comparisons).
  [[nodiscard]] bool fold_norms(int64_t tokens) const noexcept {
    return foldable_ && tokens == 1 && quantized_inputs(tokens) && skipped_.empty();
  }

  // Whether a step of `tokens` has the producers of GEMV inputs quantize them: the layers have
  // 8-bit-activation matrices (F16 / F32 ones read f32), every width is a multiple of 32, and
  // the step is small enough for the GEMV (the GEMM path reads f32).
  [[nodiscard]] bool quantized_inputs(int64_t tokens) const noexcept {
    const LlamaShape& s = model_.shape();
    return fuse_ && integer_dtype_.has_value() &&
           gpu::matmul_reads_quantized(*context_, *integer_dtype_, tokens) && s.hidden % 32 == 0 &&
           ffn_ % 32 == 0 && (heads_ * s.head_dim) % 32 == 0;
  }

  // Everything between the uploaded metadata and the logits, on the stream.
  void run_layers(int64_t tokens, int64_t rows, int64_t max_positions, const KvCacheShape& kv);

  [[nodiscard]] gpu::Stream gpu_stream() const noexcept {
    return stream_.get().native != nullptr ? stream_.get() : plan_.stream;
  }

  const LlamaModel& model_;
  int ordinal_;
  ShardPlan plan_;
  int64_t heads_ = 0, kv_heads_ = 0, ffn_ = 0;  // this rank's share
  gpu::DeviceStream stream_;                    // own stream, unless the group shares one
  std::unique_ptr<gpu::Context> context_;
  std::vector<GpuLayer> layers_;
  gpu::DeviceBuffer output_norm_, inv_freq_, embedding_;
  DType embedding_dtype_ = DType::kF32;
  Stack output_;
  uint64_t weight_bytes_ = 0;

  // Scratch, grown to the largest batch.
  gpu::DeviceBuffer x_, x_next_, normed_, qkv_, attn_, projected_, gate_up_, act_, last_, logits_;
  gpu::DeviceBuffer meta_, tables_, picks_;
  gpu::DeviceBuffer sample_specs_, penalized_, sample_scratch_;
  std::vector<float> deferred_row_;  // a row sampled on the host
  SampleScratch host_scratch_;
  // The next GEMV's input in 8-bit blocks, written by the kernel that makes it (norm, attention,
  // SiLU·mul) for steps of up to kGemvMaxTokens tokens: no separate quantization launches.
  gpu::DeviceBuffer quantized_;
  std::chrono::steady_clock::time_point wall_start_;
  std::vector<int32_t> host_meta_;
  std::vector<void*> host_tables_;

  // Decode graphs by batch size: captured on a second decode step of that size (the first
  // warms the scratch up), valid while the scratch buffers stay where they are.
  struct DecodeGraph {
    int seen = 0;
    uint64_t generation = 0;  // the context's scratch generation at capture
    gpu::Graph graph;
  };
  std::map<int64_t, DecodeGraph> graphs_;
  bool graphs_enabled_ = true;
  // POLYINFER_GPU_FUSE=0: the separate launches the fused ones replace (quantization before
  // each GEMV, RoPE then the KV store), for comparisons.
  bool fuse_ = true;
  std::optional<DType> integer_dtype_;  // a layer matrix's Q4_0 / Q8_0 / Q4_K (set at upload)
  bool foldable_ = false;               // fold_norms() can apply (set at upload)
  bool fold_down_ = true;  // fold_norms() also folds the MLP's residual (down, then qkv)
  // fold_norms(): the next norm's input x·weight and the producer blocks' Σ x².
  gpu::DeviceBuffer fold_normed_, fold_partials_;

  // POLYINFER_GPU_PROFILE=1: no graphs; GPU time per op kind, printed at destruction.
  bool profile_ = false;
  gpu::Timeline timeline_;
  std::vector<const char*> marks_;
  std::map<std::string, std::pair<double, int64_t> > profile_ms_;  // op → (ms, calls)
  int64_t profiled_passes_ = 0;
  double profiled_wall_ms_ = 0;

  // POLYINFER_GPU_SKIP=op[,op…] (op names as in the profile): those launches are left out, so
  // that timing the decode step without them places its time (results are wrong then).
  std::set<std::string, std::less<> > skipped_;
  [[nodiscard]] bool runs(std::string_view op) const { return !skipped_.contains(op); }

  void mark(const char* op) {
    if (!profile_) return;
    (void)timeline_.mark(gpu_stream());
    marks_.push_back(op);
  }
  void collect_profile() {
    std::vector<float> ms;
    if (timeline_.intervals(&ms) != Status::kOk) return;
    for (size_t i = 0; i < ms.size() && i + 1 < marks_.size(); ++i) {
      auto& entry = profile_ms_[marks_[i + 1]];
      entry.first += ms[i];
      entry.second += 1;
    }
    marks_.clear();
    ++profiled_passes_;
  }

 public:
  ~CudaLlama() override {
    if (!profile_ || profiled_passes_ == 0) return;
    double total = 0;
    for (const auto& [op, v] : profile_ms_) total += v.first;
    const auto passes = static_cast<double>(profiled_passes_);
    fmt::print(stderr, "gpu profile: {} passes, {:.3f} ms wall / pass, {:.3f} ms of kernels\n",
               profiled_passes_, profiled_wall_ms_ / passes, total / passes);
    for (const auto& [op, v] : profile_ms_) {
      fmt::print(stderr, "  {:<12} {:8.3f} ms / pass  {:7.1f} us / call  {:5.1f}%\n", op,
                 v.first / passes, 1e3 * v.first / static_cast<double>(v.second),
                 100 * v.first / total);
    }
  }
};

void CudaLlama::run_layers(int64_t tokens, int64_t rows, int64_t max_positions,
                           const KvCacheShape& kv) {
  const LlamaShape& s = model_.shape();
  const gpu::Stream stream = gpu_stream();
  const int64_t q_width = heads_ * s.head_dim;
  const int64_t kv_width = kv_heads_ * s.head_dim;
  const int64_t qkv_width = q_width + 2 * kv_width;
  const auto* ids = meta_.as<int32_t>();
  const int32_t* positions = ids + tokens;
  const int32_t* token_tables = positions + tokens;
  const int32_t* logit_rows = token_tables + tokens;
  // The residual stream alternates between two buffers: each residual connection writes the
  // sum to the other one, so that its norm can split rows over several blocks.
  auto* x = x_.as<float>();
  auto* x_next = x_next_.as<float>();
  auto* normed = normed_.as<float>();
  auto* qkv = qkv_.as<float>();
  auto* attn = attn_.as<float>();
  auto* projected = projected_.as<float>();
  auto* gate_up = gate_up_.as<float>();
  auto* act = act_.as<float>();
  const float* inv_freq = inv_freq_.as<float>();
  const uint64_t row_bytes = kv_row_bytes(kv.type, kv.kv_heads, kv.head_dim);
  void* xq = quantized_inputs(tokens) ? quantized_.data() : nullptr;
  // Folded norms: the residual stays in x (the producers add into it), no add_rms_norm launch.
  const bool fold = fold_norms(tokens);
  gpu::NormFold norm_fold{fold_normed_.as<float>(), fold_partials_.as<float>(), 0, s.norm_eps};

  mark("start");
  check(gpu::embed_rows(embedding_dtype_, embedding_.data(), s.hidden, ids, tokens, x, stream),
        "embedding");
  mark("embedding");
  // The first norm; later ones are fused with the residual connection before them.
  check(gpu::rms_norm(x, layers_.front().attn_norm.as<float>(), s.norm_eps, tokens, s.hidden,
                      normed, stream, xq),
        "rms_norm");
  mark("norm");
  for (int64_t l = 0; l < s.layers; ++l) {
    const GpuLayer& g = layers_[static_cast<size_t>(l)];
    // The MLP's residual connection (down's product in `projected`), then the next layer's norm;
    // after the last layer the sum alone.
    const auto residual_and_next_norm = [&] {
      if (l + 1 < s.layers) {
        if (runs("add_norm")) {
          check(gpu::add_rms_norm(x, projected, x_next,
                                  layers_[static_cast<size_t>(l + 1)].attn_norm.as<float>(),
                                  s.norm_eps, tokens, s.hidden, normed, stream, xq),
                "residual + norm");
        }
        std::swap(x, x_next);
        mark("add_norm");
      } else {
        check(gpu::add(x, projected, x, tokens * s.hidden, stream), "residual");
        mark("residual");
      }
    };
    if (!runs("qkv")) {
    } else if (fold && fold_down_ && l > 0) {
      matmul_normed(g.qkv, norm_fold, qkv);
    } else {
      matmul(g.qkv, normed, tokens, qkv, xq);
    }
    mark("qkv");
    gpu::DeviceKvView keys{
        kv.type,       kv.kv_heads, kv.head_dim, kv.block_rows, tables_.as<void*>(),
        max_positions, 0,           token_tables};
    keys.block_offset =
        static_cast<int64_t>(static_cast<uint64_t>(2 * l * kv.block_rows) * row_bytes);
    gpu::DeviceKvView values = keys;
    values.block_offset =
        static_cast<int64_t>(static_cast<uint64_t>((2 * l + 1) * kv.block_rows) * row_bytes);
    // q and k sit side by side in each row: one rotation over heads + kv_heads, then k and v
    // into the cache, in one launch.
    if (!runs("rope_kv_store")) {
    } else if (fuse_) {
      check(gpu::rope_kv_store_tokens(qkv, qkv_width, tokens, heads_, positions, inv_freq,
                                      s.rope_layout, keys, values, stream),
            "rope + kv store");
    } else {
      check(gpu::rope(qkv, tokens, heads_ + kv_heads_, s.head_dim, qkv_width, positions, inv_freq,
                      s.rope_layout, stream),
            "rope");
      check(gpu::kv_store_tokens(qkv + q_width, qkv + q_width + kv_width, qkv_width, tokens,
                                 positions, keys, values, stream),
            "kv store");
    }
    mark("rope_kv_store");
    if (runs("attention")) {
      check(gpu::attention_tokens(*context_, qkv, qkv_width, tokens, heads_, keys, values,
                                  positions, 0.0f, attn, xq),
            "attention");
    }
    mark("attention");
    if (fold) {
      if (runs("o")) {
        check(gpu::gemv_add_residual(*context_, g.o.parts.front().weight, xq, x,
                                     g.ffn_norm.as<float>(), &norm_fold),
              "o + residual");
      }
      mark("o");
      if (runs("gate_up")) matmul_normed(g.gate_up, norm_fold, gate_up);
      mark("gate_up");
      if (runs("silu_mul")) {
        check(gpu::silu_mul_rows(gate_up, tokens, ffn_, act, stream, xq), "silu_mul");
      }
      mark("silu_mul");
      if (!fold_down_) {
        if (runs("down")) matmul(g.down, act, tokens, projected, xq);
        mark("down");
        residual_and_next_norm();
        continue;
      }
      if (runs("down")) {
        const float* next_norm =
            l + 1 < s.layers ? layers_[static_cast<size_t>(l + 1)].attn_norm.as<float>() : nullptr;
        check(gpu::gemv_add_residual(*context_, g.down.parts.front().weight, xq, x, next_norm,
                                     &norm_fold),
              "down + residual");
      }
      mark("down");
      continue;
    }
    if (runs("o")) matmul(g.o, attn, tokens, projected, xq);
    if (plan_.ranks > 1)
      plan_.reducer->all_reduce(plan_.rank, projected, tokens * s.hidden, stream);
    mark("o");
    if (runs("add_norm")) {
      check(gpu::add_rms_norm(x, projected, x_next, g.ffn_norm.as<float>(), s.norm_eps, tokens,
                              s.hidden, normed, stream, xq),
            "residual + norm");
    }
    std::swap(x, x_next);
    mark("add_norm");
    if (runs("gate_up")) matmul(g.gate_up, normed, tokens, gate_up, xq);
    mark("gate_up");
    if (runs("silu_mul")) {
      check(gpu::silu_mul_rows(gate_up, tokens, ffn_, act, stream, xq), "silu_mul");
    }
    mark("silu_mul");
    if (runs("down")) matmul(g.down, act, tokens, projected, xq);
    if (plan_.ranks > 1)
      plan_.reducer->all_reduce(plan_.rank, projected, tokens * s.hidden, stream);
    mark("down");
    residual_and_next_norm();
  }
  if (rows == 0 || plan_.rank != 0) return;
  check(gpu::gather_rows(x, logit_rows, rows, s.hidden, last_.as<float>(), stream), "gather");
  void* output_xq = xq != nullptr && quantized_inputs(rows) ? xq : nullptr;
  check(gpu::rms_norm(last_.as<float>(), output_norm_.as<float>(), s.norm_eps, rows, s.hidden,
                      normed, stream, output_xq),
        "rms_norm");
  mark("norm");
  if (runs("output")) matmul(output_, normed, rows, logits_.as<float>(), output_xq);
  mark("output");
}

int64_t CudaLlama::run(std::span<const BatchEntry> batch, KvCache& cache, int64_t context_length) {
  model_.check(batch, cache, context_length);
  const KvCacheShape& kv = cache.shape();
  if (kv.type != KvType::kF16 && kv.type != KvType::kF32) {
    fail(ErrorCode::kUnsupported, "cuda", "the GPU KV cache holds f16 or f32, not {}",
         kv.type == KvType::kQ8_0 ? "q8_0" : "this type");
  }
  for (const BatchEntry& entry : batch) {  // a group reserves once, before its ranks run
    if (plan_.ranks == 1 &&
        !cache.reserve(entry.sequence, static_cast<int64_t>(entry.tokens.size()))) {
      return -1;
    }
  }
  check(gpu::use_device(ordinal_), "select device");
  const LlamaShape& s = model_.shape();
  const gpu::Stream stream = gpu_stream();

  // Metadata: ids, positions, each token's block-table start, the rows that need logits.
  int64_t tokens = 0;
  for (const BatchEntry& entry : batch) tokens += static_cast<int64_t>(entry.tokens.size());
  const int64_t rows = logits_rows(batch);
  bool decode = true;  // one token per sequence, last logits: the shape graphs replay
  host_meta_.assign(static_cast<size_t>(3 * tokens + rows), 0);
  host_tables_.clear();
  int64_t max_positions = 0;
  {
    int64_t t = 0;
    int64_t row = 0;
    for (const BatchEntry& entry : batch) {
      const int64_t start = cache.length(entry.sequence);
      const auto count = static_cast<int64_t>(entry.tokens.size());
      decode = decode && count == 1 && entry.logits == LogitsRows::kLast;
      const KvView view = cache.view(entry.sequence, 0, KvCache::Kind::kKeys, start + count);
      const auto table = static_cast<int32_t>(host_tables_.size());
      const int64_t blocks = cache.blocks_for(start + count);
      for (int64_t b = 0; b < blocks; ++b) {
        auto* block = const_cast<std::byte*>(view.blocks[b]);
        host_tables_.push_back(plan_.translate ? plan_.translate(block) : block);
      }
      for (int64_t i = 0; i < count; ++i, ++t) {
        host_meta_[static_cast<size_t>(t)] = entry.tokens[static_cast<size_t>(i)];
        host_meta_[static_cast<size_t>(tokens + t)] = static_cast<int32_t>(start + i);
        host_meta_[static_cast<size_t>(2 * tokens + t)] = table;
      }
      const int64_t take = entry.logits == LogitsRows::kAll    ? count
                           : entry.logits == LogitsRows::kLast ? 1
                                                               : 0;
      for (int64_t i = 0; i < take; ++i, ++row) {
        host_meta_[static_cast<size_t>(3 * tokens + row)] = static_cast<int32_t>(t - take + i);
      }
      max_positions = std::max(max_positions, start + count);
    }
  }
  // Decode steps bound attention by the context (fixed launch shapes for graph replay).
  if (decode) max_positions = context_length;

  // Scratch (sizes only grow; a move invalidates captured graphs).
  const int64_t q_width = heads_ * s.head_dim;
  const int64_t qkv_width = q_width + 2 * kv_heads_ * s.head_dim;
  const uint64_t f = sizeof(float);
  const auto grow = [&](gpu::DeviceBuffer& buffer, uint64_t bytes) {
    const void* old = buffer.data();
    reserve(buffer, bytes, "scratch");
    if (buffer.data() != old) graphs_.clear();
  };
  grow(x_, static_cast<uint64_t>(tokens * s.hidden) * f);
  grow(x_next_, static_cast<uint64_t>(tokens * s.hidden) * f);
  grow(normed_, static_cast<uint64_t>(std::max(tokens, rows) * s.hidden) * f);
  grow(qkv_, static_cast<uint64_t>(tokens * qkv_width) * f);
  grow(attn_, static_cast<uint64_t>(tokens * q_width) * f);
  grow(projected_, static_cast<uint64_t>(tokens * s.hidden) * f);
  grow(gate_up_, static_cast<uint64_t>(tokens * 2 * ffn_) * f);
  grow(act_, static_cast<uint64_t>(tokens * ffn_) * f);
  grow(last_, static_cast<uint64_t>(std::max<int64_t>(rows, 1) * s.hidden) * f);
  grow(logits_, static_cast<uint64_t>(std::max<int64_t>(rows, 1) * s.vocab) * f);
  if (quantized_inputs(tokens)) {
    grow(quantized_, gpu::quantized_activation_bytes(tokens, std::max({s.hidden, ffn_, q_width})));
  }
  if (fold_norms(tokens)) {
    grow(fold_normed_, static_cast<uint64_t>(s.hidden) * f);
    grow(fold_partials_, static_cast<uint64_t>(gpu::kNormFoldPartials) * f);
  }
  // Tables sized for every sequence at full context, so decode graphs keep their pointers.
  grow(meta_, host_meta_.size() * sizeof(int32_t));
  grow(tables_, std::max<uint64_t>(host_tables_.size(),
                                   static_cast<uint64_t>(static_cast<int64_t>(batch.size()) *
                                                         cache.blocks_for(context_length))) *
                    sizeof(void*));
  check(gpu::copy_to_device(meta_.data(), host_meta_.data(), host_meta_.size() * sizeof(int32_t),
                            stream),
        "metadata");
  check(gpu::copy_to_device(tables_.data(), host_tables_.data(),
                            host_tables_.size() * sizeof(void*), stream),
        "block tables");

  wall_start_ = std::chrono::steady_clock::now();
  bool ran = false;
  if (decode && graphs_enabled_) {
    DecodeGraph& entry = graphs_[tokens];
    if (!entry.graph.empty() && entry.generation != context_->scratch_generation()) {
      entry = DecodeGraph{};  // the kernels' scratch moved since the capture
    }
    if (entry.graph.empty() && ++entry.seen >= 2 &&
        gpu::Graph::begin_capture(stream) == Status::kOk) {
      // The second step of this size: its scratch is warm, so nothing allocates in capture.
      bool captured = false;
      try {
        run_layers(tokens, rows, max_positions, kv);
        captured = true;
      } catch (const Error&) {
      }
      const Status ended = gpu::Graph::end_capture(stream, &entry.graph);
      if (!captured || ended != Status::kOk) {
        entry.graph = gpu::Graph();
        graphs_enabled_ = false;  // this device or driver cannot capture: run eagerly
      }
      entry.generation = context_->scratch_generation();
    }
    if (!entry.graph.empty()) {
      check(entry.graph.launch(stream), "decode graph");
      ran = true;
    }
  }
  if (!ran) run_layers(tokens, rows, max_positions, kv);
  return rows;
}

// ---- Tensor parallelism ----------------------------------------------------------------------

// A barrier that a failing rank breaks: the others throw instead of waiting forever.
class GroupBarrier {
 public:
  explicit GroupBarrier(int count) : count_(count) {}
  void wait() {
    std::unique_lock lock(mutex_);
    if (broken_) fail(ErrorCode::kDevice, "tensor parallel", "another GPU of the group failed");
    const uint64_t phase = phase_;
    if (++arrived_ == count_) {
      arrived_ = 0;
      ++phase_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return phase_ != phase || broken_; });
    if (broken_) fail(ErrorCode::kDevice, "tensor parallel", "another GPU of the group failed");
  }
  void reset() {
    const std::lock_guard lock(mutex_);
    broken_ = false;
    arrived_ = 0;
  }
  void brake() {
    const std::lock_guard lock(mutex_);
    broken_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int count_;
  int arrived_ = 0;
  uint64_t phase_ = 0;
  bool broken_ = false;
};

// Every rank on one GPU (checks the split on one card): the ranks share a stream; at each
// reduction rank 0 sums the others' partials into its buffer and copies the sum back, between
// two barriers, so that every rank's later kernels are enqueued after it.
class LocalReducer final : public Reducer {
 public:
  explicit LocalReducer(int ranks) : barrier_(ranks), buffers_(static_cast<size_t>(ranks)) {}
  void all_reduce(int rank, float* data, int64_t count, gpu::Stream stream) override {
    buffers_[static_cast<size_t>(rank)] = data;
    barrier_.wait();
    if (rank == 0) {
      for (size_t r = 1; r < buffers_.size(); ++r) {
        check(gpu::add(data, buffers_[r], data, count, stream), "all-reduce");
      }
      for (size_t r = 1; r < buffers_.size(); ++r) {
        check(gpu::copy_on_device(buffers_[r], data, static_cast<uint64_t>(count) * 4, stream),
              "all-reduce");
      }
    }
    barrier_.wait();
  }
  bool shared_stream() const noexcept override { return true; }
  GroupBarrier& barrier() { return barrier_; }

 private:
  GroupBarrier barrier_;
  std::vector<float*> buffers_;
};

// NCCL, loaded at run time (libnccl.so.2 of the CUDA toolkit or the nvidia-nccl wheel), so that
// neither the build nor single-GPU users depend on it. One communicator per GPU from
// ncclCommInitAll; each rank's thread enqueues its own all-reduce on its stream.
class NcclReducer final : public Reducer {
 public:
  explicit NcclReducer(const std::vector<int>& ordinals) {
    library_ = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (library_ == nullptr) library_ = dlopen("libnccl.so", RTLD_NOW | RTLD_LOCAL);
    if (library_ == nullptr) {
      fail(ErrorCode::kUnsupported, "tensor parallel",
           "NCCL (libnccl.so.2) is not on the library path: {}", dlerror());
    }
    init_all_ = symbol<InitAll>("ncclCommInitAll");
    all_reduce_ = symbol<AllReduce>("ncclAllReduce");
    destroy_ = symbol<Destroy>("ncclCommDestroy");
    error_string_ = symbol<ErrorString>("ncclGetErrorString");
    comms_.resize(ordinals.size());
    nccl(init_all_(comms_.data(), static_cast<int>(ordinals.size()), ordinals.data()),
         "ncclCommInitAll");
  }
  ~NcclReducer() override {
    for (void* comm : comms_) {
      if (comm != nullptr) (void)destroy_(comm);
    }
    if (library_ != nullptr) dlclose(library_);
  }
  void all_reduce(int rank, float* data, int64_t count, gpu::Stream stream) override {
    constexpr int kFloat32 = 7;  // ncclFloat32
    constexpr int kSum = 0;      // ncclSum
    nccl(all_reduce_(data, data, static_cast<size_t>(count), kFloat32, kSum,
                     comms_[static_cast<size_t>(rank)], stream.native),
         "ncclAllReduce");
  }
  bool shared_stream() const noexcept override { return false; }

 private:
  using InitAll = int (*)(void** comms, int count, const int* devices);
  using AllReduce = int (*)(const void*, void*, size_t, int, int, void*, void*);
  using Destroy = int (*)(void*);
  using ErrorString = const char* (*)(int);

  template <typename F>
  F symbol(const char* name) {
    void* address = dlsym(library_, name);
    if (address == nullptr) fail(ErrorCode::kUnsupported, "tensor parallel", "NCCL lacks {}", name);
    return reinterpret_cast<F>(address);
  }
  void nccl(int result, const char* what) {
    if (result != 0)
      fail(ErrorCode::kDevice, "tensor parallel", "{}: {}", what, error_string_(result));
  }

  void* library_ = nullptr;
  InitAll init_all_ = nullptr;
  AllReduce all_reduce_ = nullptr;
  Destroy destroy_ = nullptr;
  ErrorString error_string_ = nullptr;
  std::vector<void*> comms_;
};

// KV memory of a group: every allocation is made on every rank at once; the KvCache sees rank
// 0's addresses and each rank translates them to its own (same offsets).
class MirroredKvMemory final : public KvMemory {
 public:
  explicit MirroredKvMemory(std::vector<std::shared_ptr<KvMemory> > ranks)
      : ranks_(std::move(ranks)) {}
  std::byte* allocate(uint64_t bytes) noexcept override {
    std::vector<std::byte*> copies;
    for (const auto& rank : ranks_) {
      std::byte* data = rank->allocate(bytes);
      if (data == nullptr) {
        for (size_t r = 0; r < copies.size(); ++r) ranks_[r]->release(copies[r]);
        return nullptr;
      }
      copies.push_back(data);
    }
    const std::lock_guard lock(mutex_);
    blocks_[copies[0]] = copies;
    return copies[0];
  }
  void release(std::byte* data) noexcept override {
    std::vector<std::byte*> copies;
    {
      const std::lock_guard lock(mutex_);
      const auto found = blocks_.find(data);
      if (found == blocks_.end()) return;
      copies = std::move(found->second);
      blocks_.erase(found);
    }
    for (size_t r = 0; r < copies.size(); ++r) ranks_[r]->release(copies[r]);
  }
  void copy(std::byte* dst, const std::byte* src, uint64_t bytes) override {
    for (size_t r = 0; r < ranks_.size(); ++r) {
      ranks_[r]->copy(translate(static_cast<int>(r), dst),
                      translate(static_cast<int>(r), const_cast<std::byte*>(src)), bytes);
    }
  }
  std::byte* translate(int rank, std::byte* address) const {
    const std::lock_guard lock(mutex_);
    auto found = blocks_.upper_bound(address);
    if (found == blocks_.begin()) return address;
    --found;
    return found->second[static_cast<size_t>(rank)] + (address - found->first);
  }

 private:
  std::vector<std::shared_ptr<KvMemory> > ranks_;
  mutable std::mutex mutex_;
  std::map<std::byte*, std::vector<std::byte*> > blocks_;  // rank 0's address → every rank's
};

// One decoder split over several GPUs (or several ranks on one GPU): each rank holds its heads
// and MLP columns, runs its part of every step on a thread of its own, and the partial sums
// of the attention output and the MLP are all-reduced (NCCL across GPUs).
class SplitLlama final : public GpuLlama {
 public:
  SplitLlama(const LlamaModel& model, const std::vector<int>& ordinals) : model_(model) {
    const int ranks = static_cast<int>(ordinals.size());
    const bool one_gpu =
        std::all_of(ordinals.begin(), ordinals.end(), [&](int o) { return o == ordinals[0]; });
    for (int i = 0; i < ranks; ++i) {
      for (int j = 0; j < i; ++j) {
        if (!one_gpu && ordinals[static_cast<size_t>(i)] == ordinals[static_cast<size_t>(j)]) {
          fail(ErrorCode::kInvalidArgument, "tensor parallel",
               "cuda:{} is listed twice (list distinct GPUs, or one GPU for every rank)",
               ordinals[static_cast<size_t>(i)]);
        }
      }
    }
    if (one_gpu) {
      if (ordinals[0] >= gpu::device_count()) {
        fail(ErrorCode::kDevice, fmt::format("cuda:{}", ordinals[0]), "no such GPU ({} visible)",
             gpu::device_count());
      }
      check(gpu::use_device(ordinals[0]), "select device");
      check(gpu::DeviceStream::create(&shared_stream_), "create stream");
      auto local = std::make_unique<LocalReducer>(ranks);
      barrier_ = &local->barrier();
      reducer_ = std::move(local);
    } else {
      for (const int ordinal : ordinals) {
        if (ordinal >= gpu::device_count()) {
          fail(ErrorCode::kDevice, fmt::format("cuda:{}", ordinal), "no such GPU ({} visible)",
               gpu::device_count());
        }
      }
      reducer_ = std::make_unique<NcclReducer>(ordinals);
    }
    std::vector<std::shared_ptr<KvMemory> > memories;
    for (int r = 0; r < ranks; ++r) {
      ShardPlan plan;
      plan.rank = r;
      plan.ranks = ranks;
      plan.reducer = reducer_.get();
      plan.stream = shared_stream_.get();
      plan.translate = [this, r](std::byte* address) { return kv_->translate(r, address); };
      ranks_.push_back(
          std::make_unique<CudaLlama>(model, ordinals[static_cast<size_t>(r)], std::move(plan)));
      memories.push_back(ranks_.back()->kv_memory());
    }
    kv_ = std::make_shared<MirroredKvMemory>(std::move(memories));
  }

  std::shared_ptr<KvMemory> kv_memory() override { return kv_; }
  KvCacheShape kv_shape(KvType type) const noexcept override {
    KvCacheShape shape = model_.kv_shape(type);
    shape.kv_heads /= static_cast<int64_t>(ranks_.size());
    return shape;
  }
  uint64_t device_weight_bytes() const noexcept override {
    uint64_t bytes = 0;
    for (const auto& rank : ranks_) bytes += rank->device_weight_bytes();
    return bytes;
  }

  bool forward(std::span<const BatchEntry> batch, KvCache& cache, int64_t context_length,
               std::vector<float>& logits) override {
    return step(batch, cache, context_length,
                [&](CudaLlama& first, int64_t rows) { first.copy_logits(rows, logits); });
  }
  bool forward_greedy(std::span<const BatchEntry> batch, KvCache& cache, int64_t context_length,
                      std::vector<GreedyPick>& picks) override {
    return step(batch, cache, context_length,
                [&](CudaLlama& first, int64_t rows) { first.copy_picks(rows, picks); });
  }
  bool forward_sample(std::span<const BatchEntry> batch, KvCache& cache, int64_t context_length,
                      std::span<const SampleSpec> specs, std::span<const int32_t> penalized,
                      std::vector<SamplePick>& picks) override {
    return step(batch, cache, context_length, [&](CudaLlama& first, int64_t rows) {
      first.copy_samples(rows, specs, penalized, picks);
    });
  }

 private:
  template <typename Copy>
  bool step(std::span<const BatchEntry> batch, KvCache& cache, int64_t context_length,
            const Copy& copy) {
    model_.check(batch, cache, context_length);
    for (const BatchEntry& entry : batch) {
      if (!cache.reserve(entry.sequence, static_cast<int64_t>(entry.tokens.size()))) return false;
    }
    if (barrier_ != nullptr) barrier_->reset();
    // Ranks 1.. on threads of their own, rank 0 here; a failing rank breaks the barrier.
    std::vector<std::exception_ptr> errors(ranks_.size());
    std::vector<int64_t> rows(ranks_.size(), 0);
    const auto run_rank = [&](size_t r) {
      try {
        rows[r] = ranks_[r]->run(batch, cache, context_length);
        if (r != 0) ranks_[r]->synchronize();
      } catch (...) {
        errors[r] = std::current_exception();
        if (barrier_ != nullptr) barrier_->brake();
      }
    };
    std::vector<std::thread> threads;
    for (size_t r = 1; r < ranks_.size(); ++r) threads.emplace_back(run_rank, r);
    run_rank(0);
    for (std::thread& thread : threads) thread.join();
    for (const std::exception_ptr& error : errors) {
      if (error) std::rethrow_exception(error);
    }
    copy(*ranks_[0], rows[0]);
    for (const auto& rank : ranks_) rank->finish(batch, cache);
    for (const BatchEntry& entry : batch) cache.commit(entry.sequence, entry.tokens);
    return true;
  }

  const LlamaModel& model_;
  gpu::DeviceStream shared_stream_;  // every rank on one GPU
  std::unique_ptr<Reducer> reducer_;
  GroupBarrier* barrier_ = nullptr;  // the local reducer's
  std::vector<std::unique_ptr<CudaLlama> > ranks_;
  std::shared_ptr<MirroredKvMemory> kv_;
};

}  // namespace

std::unique_ptr<GpuLlama> GpuLlama::create(const LlamaModel& model, int ordinal) {
  return std::make_unique<CudaLlama>(model, ordinal);
}

std::unique_ptr<GpuLlama> GpuLlama::create(const LlamaModel& model, std::span<const int> ordinals) {
  if (ordinals.empty()) fail(ErrorCode::kInvalidArgument, "tensor parallel", "no GPUs listed");
  if (ordinals.size() == 1) return create(model, ordinals[0]);
  return std::make_unique<SplitLlama>(model, std::vector<int>(ordinals.begin(), ordinals.end()));
}

#endif

}  // namespace polyinfer::inline v0::detail
