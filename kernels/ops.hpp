// SPDX-License-Identifier: Apache-2.0
// The CPU operations models are built from: weight-format matmul and the transformer ops. Each
// entry point dispatches once (at first use) to the best kernel the CPU supports; every kernel
// has a scalar reference in kernels/ref with the same signature (ops_ref.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "polyinfer/tensor.hpp"

namespace polyinfer::inline v0::detail {

class ThreadPool;

/// Instruction-set levels of the x86 CPU kernels, in increasing order.
enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Vnni = 3, kAmx = 4 };

/// "scalar", "avx2", "avx512", "avx512vnni", "amx".
[[nodiscard]] std::string_view isa_name(Isa isa) noexcept;
/// The best level this CPU and OS support (CPUID + XCR0; AMX after the Linux permission request).
[[nodiscard]] Isa detect_isa() noexcept;
/// The level kernels use: detect_isa(), lowered by $POLYINFER_ISA (e.g. "avx2") or force_isa().
[[nodiscard]] Isa active_isa() noexcept;
/// Caps the level for this process (tests and benchmarks); clamped to detect_isa().
void force_isa(Isa isa) noexcept;

/// A weight matrix of `rows` × `cols` (y = W·x has `rows` outputs) ready for the CPU kernels.
/// Stored formats are used in place (zero copy) unless a kernel wants them repacked, which
/// happens once here. Immutable after construction.
class PackedMatrix {
 public:
  /// `data` holds rows × cols values of `dtype`, row-major (GGUF layout); it must outlive the
  /// PackedMatrix when it is used in place. `repack` false keeps only the stored layout (for
  /// weights another device computes with).
  PackedMatrix(DType dtype, int64_t rows, int64_t cols, const std::byte* data, bool repack = true);
  ~PackedMatrix();
  PackedMatrix(PackedMatrix&&) noexcept;
  PackedMatrix& operator=(PackedMatrix&&) noexcept;

  [[nodiscard]] DType dtype() const noexcept { return dtype_; }
  [[nodiscard]] int64_t rows() const noexcept { return rows_; }
  [[nodiscard]] int64_t cols() const noexcept { return cols_; }
  /// The stored (GGUF-layout) bytes.
  [[nodiscard]] const std::byte* data() const noexcept { return data_; }
  /// Bytes of the stored matrix (what a GEMV streams).
  [[nodiscard]] uint64_t bytes() const noexcept;
  /// Extra bytes held by repacked copies (0 when used in place).
  [[nodiscard]] uint64_t packed_bytes() const noexcept;
  /// Whether the kernels may read the stored bytes: no repacked copy, or a kernel of the stored
  /// layout may be picked. When false the stored pages can leave memory (read back on demand).
  [[nodiscard]] bool reads_stored() const noexcept;
  /// Kernel-private state (repacked layouts); null when none.
  [[nodiscard]] const void* packed() const noexcept { return packed_.get(); }

 private:
  DType dtype_;
  int64_t rows_;
  int64_t cols_;
  const std::byte* data_;
  std::shared_ptr<void> packed_;
};

/// Whether matmul() handles this weight format (cols must be a multiple of its block size).
[[nodiscard]] bool matmul_supports(DType dtype) noexcept;

/// y[t][r] = Σ_c W[r][c] · x[t][c] for t < tokens, r < rows: x is tokens × cols (row stride
/// `x_stride` floats), y is tokens × rows (row stride `y_stride`). Activations are quantized on
/// the fly to 8-bit blocks for integer kernels. Splits work over `pool` (null: calling thread).
void matmul(const PackedMatrix& w, const float* x, int64_t tokens, int64_t x_stride, float* y,
            int64_t y_stride, ThreadPool* pool);

/// Name of the kernel matmul() runs for `w` and `tokens` at the active level, e.g.
/// "q4_0_avx512vnni_x16" (tests and benchmarks); "none" when no kernel applies.
[[nodiscard]] std::string_view matmul_kernel_name(const PackedMatrix& w, int64_t tokens) noexcept;

/// y = x / sqrt(mean(x²) + eps) · weight, per row of `cols`.
void rms_norm(const float* x, const float* weight, float eps, int64_t rows, int64_t cols, float* y);
/// y = (x − mean) / sqrt(var + eps) · weight + bias, per row (bias may be null).
void layer_norm(const float* x, const float* weight, const float* bias, float eps, int64_t rows,
                int64_t cols, float* y);

/// RoPE layout: kInterleaved rotates adjacent pairs (2i, 2i+1) (llama GGUF, ggml "normal");
/// kHalf rotates (i, i + d/2) (HF rotate_half, ggml "NeoX", qwen2).
enum class RopeLayout { kInterleaved, kHalf };

/// Per-dimension inverse frequencies θ_i (head_dim / 2 values), Llama-3 scaling included.
struct RopeTable {
  int64_t head_dim = 0;
  std::unique_ptr<float[]> inv_freq;
};

/// Builds inverse frequencies base^(−2i/d), then applies scaling ("", "linear", "llama3").
[[nodiscard]] RopeTable make_rope_table(int64_t head_dim, double theta, std::string_view scaling,
                                        double factor, double low_freq_factor,
                                        double high_freq_factor, int64_t original_max_positions);

/// Rotates `heads` heads of `head_dim` in place for each of `tokens` rows (row stride
/// `row_stride` floats) at positions `positions[t]`.
void rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t row_stride,
          const int32_t* positions, const RopeTable& table, RopeLayout layout);

/// out[i] = silu(gate[i]) · up[i].
void silu_mul(const float* gate, const float* up, float* out, int64_t count);
/// out[i] = gelu(x[i]) with erf (exact, as BERT uses).
void gelu(const float* x, float* out, int64_t count);
/// In-place softmax of each row.
void softmax(float* x, int64_t rows, int64_t cols);

/// Greedy decoding's choice from a logits row: the argmax (lowest id among equal logits) and
/// its log-softmax, which is also the row's top log-probability.
struct GreedyPick {
  int32_t id = 0;
  float logprob = 0.0f;
};
/// greedy_pick over `vocab` logits (normalizer summed in double).
[[nodiscard]] GreedyPick greedy_pick(const float* logits, int64_t vocab) noexcept;
/// The picks of every row of `logits` (rows × vocab, contiguous; a partial row is ignored).
void greedy_picks(std::span<const float> logits, int64_t vocab, std::vector<GreedyPick>& picks);

/// One logits row's sampling rules (SamplingParams) with the draw made for it: what
/// sample_pick() needs, on the host or a device.
struct SampleSpec {
  float temperature = 1.0f;         ///< 0: the top candidate after the penalty (no draw)
  int32_t top_k = 0;                ///< 0: off
  float top_p = 1.0f;               ///< 1: off
  float min_p = 0.0f;               ///< 0: off
  float repetition_penalty = 1.0f;  ///< applied to penalized[penalized_begin, + count)
  int32_t penalized_begin = 0;      ///< distinct ids, an index into the caller's id array
  int32_t penalized_count = 0;
  double uniform = 0.0;  ///< the draw in [0, 1) (unused at temperature 0)
};
/// A sampled token: its id and the log-softmax of the raw logits there and at their maximum.
struct SamplePick {
  int32_t id = 0;
  float logprob = 0.0f;
  float top_logprob = 0.0f;
  int32_t deferred = 0;  ///< device only: 1 when the row must be finished by sample_pick()
};
/// Scratch of sample_pick (kept between calls: no allocation per token once warm).
struct SampleScratch {
  struct Candidate {
    int32_t id;
    float logit;
  };
  std::vector<Candidate> candidates;
  std::vector<double> weights;
};
/// The sampler's rules over `vocab` raw logits: the penalty (HF rule) on `penalized` ids, the
/// temperature, top-k, top-p (smallest most-likely-first prefix), min-p, then the draw in the
/// order candidates were kept (sorted by logit then id when top-k or top-p is on, by id
/// otherwise); weights and sums in double.
[[nodiscard]] SamplePick sample_pick(const float* logits, int64_t vocab, const SampleSpec& spec,
                                     const int32_t* penalized, SampleScratch& scratch);

/// KV cache element types for attention.
enum class KvType { kF32, kF16, kQ8_0 };

/// A read-only view of one sequence's keys or values: `positions` rows of kv_heads × head_dim,
/// stored in fixed-size blocks (paged): block b holds rows [b·block_rows, (b+1)·block_rows).
struct KvView {
  KvType type = KvType::kF16;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_rows = 0;
  const std::byte* const* blocks = nullptr;  ///< one pointer per block
  int64_t positions = 0;                     ///< rows valid
};

/// Bytes of one KV row (kv_heads × head_dim) in `type`.
[[nodiscard]] uint64_t kv_row_bytes(KvType type, int64_t kv_heads, int64_t head_dim) noexcept;
/// Stores `rows` rows of f32 (kv_heads × head_dim each, contiguous) into `dst` rows.
void kv_store(KvType type, const float* src, int64_t rows, int64_t kv_heads, int64_t head_dim,
              std::byte* dst);

/// Causal grouped-query attention for `tokens` query rows at positions `positions[t]` (each
/// attends to cache rows 0..positions[t] inclusive): q is tokens × heads × head_dim, out the
/// same; heads share kv head h / (heads / kv_heads). scale = 1/sqrt(head_dim) when 0.
/// `causal` false attends to all cache rows (encoders; positions ignored).
void attention(const float* q, int64_t tokens, int64_t heads, const KvView& keys,
               const KvView& values, const int32_t* positions, bool causal, float scale, float* out,
               ThreadPool* pool);

}  // namespace polyinfer::inline v0::detail
