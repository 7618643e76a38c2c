// SPDX-License-Identifier: Apache-2.0
// Host API of the GPU kernels (CUDA; HIP through hip_compat.hpp): plain C++ over device pointers.
//
// No CUDA or HIP type appears here, so code compiled by the ordinary C++ compiler (the backend,
// tests) includes it. Streams travel as an opaque `Stream` (a cudaStream_t / hipStream_t cast to
// void*). Every call is asynchronous on its stream unless it says otherwise, returns a Status and
// never throws; pointers named `x`, `y`, `q`, … are device pointers.
//
//   gpu::DeviceMatrix w;
//   if (gpu::DeviceMatrix::upload(DType::kQ4_0, rows, cols, gguf_bytes, stream, &w) != kOk) …
//   gpu::matmul(*context, w, x_device, 1, cols, y_device, rows);   // decode: the GEMV kernels
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/ops.hpp"
#include "polyinfer/tensor.hpp"

namespace polyinfer::inline v0::detail::gpu {

/// What a call did.
enum class Status : int {
  kOk = 0,
  kNoDevice,         ///< no GPU or no driver
  kUnsupported,      ///< this format / shape / layout has no kernel (ask *_supports first)
  kInvalidArgument,  ///< null pointer, negative size, mismatched shapes
  kOutOfMemory,      ///< a device allocation failed
  kDeviceError,      ///< any other runtime or cuBLAS error (a failed launch, a lost device)
};

/// "ok", "no device", "unsupported", …
[[nodiscard]] std::string_view status_name(Status status) noexcept;

/// An opaque stream: a cudaStream_t (hipStream_t) as void*; null is the legacy default stream.
struct Stream {
  void* native = nullptr;
};

/// What the kernels read off the device at start-up.
struct DeviceInfo {
  std::string name;
  int ordinal = 0;
  int multiprocessors = 0;
  int compute_capability = 0;  ///< major·10 + minor (90 for Hopper)
  uint64_t memory_bytes = 0;
  uint64_t l2_bytes = 0;
  double memory_clock_mhz = 0;
  int memory_bus_bits = 0;
};

/// GPUs visible to this process; 0 when there is no GPU or no driver (never an error).
[[nodiscard]] int device_count() noexcept;
[[nodiscard]] Status device_info(int ordinal, DeviceInfo* info) noexcept;
/// Makes `ordinal` current for this thread (allocations and launches go there).
[[nodiscard]] Status use_device(int ordinal) noexcept;

/// Owned device memory (cudaMalloc), released by the destructor.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  /// Allocates `bytes` (256-byte aligned) on the current device; `out` keeps its old memory on
  /// failure.
  [[nodiscard]] static Status allocate(uint64_t bytes, DeviceBuffer* out) noexcept;

  [[nodiscard]] void* data() const noexcept { return data_; }
  [[nodiscard]] uint64_t bytes() const noexcept { return bytes_; }
  template <typename T>
  [[nodiscard]] T* as() const noexcept {
    return static_cast<T*>(data_);
  }

 private:
  void* data_ = nullptr;
  uint64_t bytes_ = 0;
};

/// An owned non-blocking stream (it does not wait for the legacy default stream), destroyed
/// with the object after its queued work.
class DeviceStream {
 public:
  DeviceStream() = default;
  ~DeviceStream();
  DeviceStream(DeviceStream&& other) noexcept;
  DeviceStream& operator=(DeviceStream&& other) noexcept;
  DeviceStream(const DeviceStream&) = delete;
  DeviceStream& operator=(const DeviceStream&) = delete;

  [[nodiscard]] static Status create(DeviceStream* out) noexcept;
  [[nodiscard]] Stream get() const noexcept { return Stream{native_}; }

 private:
  void* native_ = nullptr;
};

/// Host → device copy, ordered on `stream` (returns once the host memory may be reused).
[[nodiscard]] Status copy_to_device(void* dst, const void* host_src, uint64_t bytes,
                                    Stream stream) noexcept;
/// Device → host copy; returns after the data has arrived (synchronizes `stream`).
[[nodiscard]] Status copy_to_host(void* host_dst, const void* src, uint64_t bytes,
                                  Stream stream) noexcept;
/// Device → device copy, ordered on `stream`.
[[nodiscard]] Status copy_on_device(void* dst, const void* src, uint64_t bytes,
                                    Stream stream) noexcept;
/// Sets `bytes` bytes at `dst` to `value` (test poisoning, zeroing).
[[nodiscard]] Status fill_bytes(void* dst, int value, uint64_t bytes, Stream stream) noexcept;
/// Waits for everything queued on `stream`; reports an earlier asynchronous error, if any.
[[nodiscard]] Status synchronize(Stream stream) noexcept;

/// Launches captured from one stream and replayed with one launch (a CUDA graph): decode steps
/// cost one launch instead of hundreds. Capture records work without running it; allocations
/// and synchronization are not allowed meanwhile (warm every buffer up first).
class Graph {
 public:
  Graph() = default;
  ~Graph();
  Graph(Graph&& other) noexcept;
  Graph& operator=(Graph&& other) noexcept;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  /// Starts recording the launches this thread makes on `stream`.
  [[nodiscard]] static Status begin_capture(Stream stream) noexcept;
  /// Stops recording and makes `out` the executable graph (on failure `out` is left empty).
  [[nodiscard]] static Status end_capture(Stream stream, Graph* out) noexcept;
  /// Runs the recorded work on `stream`.
  [[nodiscard]] Status launch(Stream stream) const noexcept;
  [[nodiscard]] bool empty() const noexcept { return exec_ == nullptr; }

 private:
  void* exec_ = nullptr;
};

/// GPU-side timestamps (profiling): mark() records an event on a stream without waiting;
/// after the stream is synchronized, intervals() gives the milliseconds between marks.
class Timeline {
 public:
  Timeline() = default;
  ~Timeline();
  Timeline(const Timeline&) = delete;
  Timeline& operator=(const Timeline&) = delete;

  [[nodiscard]] Status mark(Stream stream) noexcept;
  /// Milliseconds from mark i to mark i + 1, for every pair recorded; forgets the marks.
  [[nodiscard]] Status intervals(std::vector<float>* out) noexcept;

 private:
  std::vector<void*> events_;  // recorded, in order
  std::vector<void*> spare_;   // created, unused
};

/// Per-stream state of the matrix kernels: the cuBLAS handle and its workspace, and scratch for
/// quantized activations, dequantized weight tiles and attention partials. Scratch grows on
/// demand (an allocation, which a graph capture forbids): run each shape once before capturing.
/// Not thread-safe; one Context per stream.
class Context {
 public:
  /// Creates a context on the current device issuing work to `stream`.
  [[nodiscard]] static Status create(Stream stream, std::unique_ptr<Context>* out) noexcept;
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  [[nodiscard]] Stream stream() const noexcept;
  /// Multiprocessors of the device (launch sizing).
  [[nodiscard]] int multiprocessors() const noexcept;
  /// Counts scratch reallocations: a graph captured before a change reads freed memory.
  [[nodiscard]] uint64_t scratch_generation() const noexcept;

  struct Impl;  // kernels/cuda/context.cuh
  [[nodiscard]] Impl& impl() noexcept { return *impl_; }
  [[nodiscard]] const Impl& impl() const noexcept { return *impl_; }

 private:
  explicit Context(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

/// A weight matrix of rows × cols on the device (y = W·x has `rows` outputs), laid out for the
/// GPU kernels at upload: Q4_0, Q8_0 and Q4_K are split into a plane of quants (16-byte aligned
/// rows, so every load is 128 bits; Q4_K's chunks reordered within 1 KB tiles for coalesced
/// loads) and a plane of block scales; F16, BF16 and F32 stay row-major. The same number of
/// bytes as the GGUF tensor.
class DeviceMatrix {
 public:
  DeviceMatrix() = default;

  /// Uploads GGUF-layout bytes from host memory (any alignment) and repacks them on the device.
  [[nodiscard]] static Status upload(DType dtype, int64_t rows, int64_t cols,
                                     const std::byte* host_data, Stream stream,
                                     DeviceMatrix* out) noexcept;
  /// The same from GGUF-layout bytes already in device memory (left unchanged).
  [[nodiscard]] static Status import_device(DType dtype, int64_t rows, int64_t cols,
                                            const std::byte* device_data, Stream stream,
                                            DeviceMatrix* out) noexcept;

  [[nodiscard]] DType dtype() const noexcept { return dtype_; }
  [[nodiscard]] int64_t rows() const noexcept { return rows_; }
  [[nodiscard]] int64_t cols() const noexcept { return cols_; }
  /// Bytes of weights (what one GEMV reads).
  [[nodiscard]] uint64_t bytes() const noexcept { return bytes_; }
  /// The quants plane (or the whole row-major matrix for F16 / BF16 / F32).
  [[nodiscard]] const void* quants() const noexcept { return storage_.data(); }
  /// The scales plane (null for F16 / BF16 / F32).
  [[nodiscard]] const void* scales() const noexcept;

 private:
  DType dtype_ = DType::kF32;
  int64_t rows_ = 0;
  int64_t cols_ = 0;
  uint64_t bytes_ = 0;
  uint64_t scales_offset_ = 0;
  DeviceBuffer storage_;
};

/// Whether matmul() handles `dtype` with `cols` columns (Q4_0 / Q8_0: cols % 32 == 0; Q4_K:
/// cols % 256 == 0; F16, BF16, F32: any).
[[nodiscard]] bool matmul_supports(DType dtype, int64_t cols) noexcept;

/// Largest number of activation rows the GEMV kernels take; more rows go to the GEMM path.
inline constexpr int64_t kGemvMaxTokens = 8;

/// A GEMV launch shape: weight rows per warp, 16-byte chunks each lane loads before using
/// them, warps per block, and warps sharing each row's chunks (splits; 0 or 1: one warp per
/// row). Zero rows pick the tuned default for the format and token count. Stages > 0 (one
/// token, quantized weights): the weights reach shared memory by bulk copies, that many stages
/// ahead (Hopper; elsewhere the plain kernel of that shape runs).
struct GemvConfig {
  int rows_per_warp = 0;
  int unroll = 0;
  int warps_per_block = 0;
  int splits = 1;
  int stages = 0;
};

/// The launch shapes compiled for single-token GEMV (benchmarks compare them; every one is
/// also checked against the reference by the tests).
[[nodiscard]] std::span<const GemvConfig> gemv_variants() noexcept;
/// The default shape matmul() uses for `dtype`, `tokens` (1..kGemvMaxTokens) and a matrix of
/// `rows` × `cols`.
[[nodiscard]] GemvConfig gemv_default(DType dtype, int64_t tokens, int64_t cols,
                                      int64_t rows) noexcept;

/// y[t][r] = Σ_c W[r][c]·x[t][c] for t < tokens (x: tokens × cols f32, row stride `x_stride`;
/// y: tokens × rows f32, row stride `y_stride`). Up to kGemvMaxTokens rows run the GEMV
/// kernels: quantized weights with activations quantized to 8-bit blocks of 32 (ggml's q8_0
/// rounding, fp16 scale) and integer dot products (dp4a); F16 / BF16 weights in f32 arithmetic.
/// More rows: quantized weights (up to a measured row count) through the integer tensor-core
/// GEMM, mmq(), on activations quantized as for the GEMVs; otherwise the GEMM path: F16 / BF16 /
/// F32 through cuBLAS, quantized weights dequantized to f16 tiles, then cuBLAS (f32
/// accumulation).
[[nodiscard]] Status matmul(Context& context, const DeviceMatrix& w, const float* x, int64_t tokens,
                            int64_t x_stride, float* y, int64_t y_stride) noexcept;
/// Bytes of `tokens` rows of `cols` activations in 8-bit blocks of 32 (cols % 32 == 0), the
/// input of the integer GEMV kernels: quants, then per block {fp16-rounded scale, Σq}.
[[nodiscard]] uint64_t quantized_activation_bytes(int64_t tokens, int64_t cols) noexcept;
/// Quantizes `tokens` rows of x (row stride x_stride floats, cols % 32 == 0) into `scratch` as
/// ggml's quantize_row_q8_0 does (amax/127, round half away from zero, scale rounded to fp16),
/// adding Σq per block.
[[nodiscard]] Status quantize_activations(const float* x, int64_t tokens, int64_t cols,
                                          int64_t x_stride, void* scratch, Stream stream) noexcept;
/// matmul() with x also given quantized (`xq`, as quantize_activations() writes it for tokens ×
/// cols, or null): the integer GEMV path reads xq instead of quantizing x again; others read x.
/// Producers of layer inputs (the norms, SiLU·mul, attention) can write xq as they go.
[[nodiscard]] Status matmul(Context& context, const DeviceMatrix& w, const float* x, const void* xq,
                            int64_t tokens, int64_t x_stride, float* y, int64_t y_stride) noexcept;
/// A residual connection and the RMSNorm after it folded into the single-token GEMVs around
/// them (batch-1 decode; Q4_0, Q8_0, Q4_K weights): no launch of their own. `normed` (cols of
/// the next matrix floats) and `partials` (kNormFoldPartials floats) are scratch the two share.
struct NormFold {
  float* normed = nullptr;
  float* partials = nullptr;
  int count = 0;  ///< partials the last gemv_add_residual() writes (a launch-time constant)
  float eps = 0.0f;
};
inline constexpr int64_t kNormFoldPartials = 4096;
/// residual += w·xq for one token (xq as quantize_activations() writes it); with
/// `next_norm_weight`, also the next RMSNorm's input for gemv_normed() into `fold`.
[[nodiscard]] Status gemv_add_residual(Context& context, const DeviceMatrix& w, const void* xq,
                                       float* residual, const float* next_norm_weight,
                                       NormFold* fold) noexcept;
/// y = w·rms_norm(residual, weight) for one token, the norm's input left in `fold` by
/// gemv_add_residual(): each block normalizes and quantizes it itself (8-bit blocks of 32, as
/// quantize_activations() rounds).
[[nodiscard]] Status gemv_normed(Context& context, const DeviceMatrix& w, const NormFold& fold,
                                 float* y) noexcept;
/// The GEMV path with an explicit launch shape (tokens ≤ kGemvMaxTokens; F32 weights have none).
[[nodiscard]] Status gemv(Context& context, const DeviceMatrix& w, const float* x, int64_t tokens,
                          int64_t x_stride, float* y, int64_t y_stride,
                          const GemvConfig& config) noexcept;
/// The integer tensor-core GEMM for Q4_0 / Q8_0 / Q4_K weights and any number of tokens, x
/// quantized to 8-bit blocks as for the GEMVs (or given as xq); kUnsupported where the device
/// has no int8 MMA (before sm_80, HIP) or for other formats.
[[nodiscard]] Status mmq(Context& context, const DeviceMatrix& w, const float* x, const void* xq,
                         int64_t tokens, int64_t x_stride, float* y, int64_t y_stride) noexcept;
/// mmq() on f16 tensor cores: weights dequantized to f16 in registers (Q4_0 / Q8_0: d·q; Q4_K:
/// d·sc·q − dmin·m), x rounded to f16, f32 sums; kUnsupported where mmq() is.
[[nodiscard]] Status mmq_half(Context& context, const DeviceMatrix& w, const float* x,
                              int64_t tokens, int64_t x_stride, float* y,
                              int64_t y_stride) noexcept;
/// Whether matmul() of `dtype` weights and `tokens` rows takes mmq_half() (else mmq()).
[[nodiscard]] bool matmul_takes_mmq_half(const Context& context, DType dtype,
                                         int64_t tokens) noexcept;
/// Whether mmq() runs `dtype` weights on this context's device.
[[nodiscard]] bool mmq_supported(const Context& context, DType dtype) noexcept;
/// Whether matmul() of `dtype` weights and `tokens` rows reads its input quantized (xq), so a
/// producer writing xq saves a quantization pass.
[[nodiscard]] bool matmul_reads_quantized(const Context& context, DType dtype,
                                          int64_t tokens) noexcept;
/// The GEMM path for any number of tokens (tests compare it with the GEMV path).
[[nodiscard]] Status gemm(Context& context, const DeviceMatrix& w, const float* x, int64_t tokens,
                          int64_t x_stride, float* y, int64_t y_stride) noexcept;

/// y = x / sqrt(mean(x²) + eps) · weight, per row of `cols`. With `quantized` (cols % 32 == 0),
/// y is also written there as quantize_activations() would (for matmul()'s xq).
[[nodiscard]] Status rms_norm(const float* x, const float* weight, float eps, int64_t rows,
                              int64_t cols, float* y, Stream stream,
                              void* quantized = nullptr) noexcept;
/// x_out = x + delta (x_out ≠ x: the residual stream alternates between two buffers), then
/// y = rms_norm(x_out): a residual connection and the next norm in one launch. Rows are split
/// over several blocks when there are few (decode), each summing the whole row and normalizing
/// its slice; `quantized` as for rms_norm().
[[nodiscard]] Status add_rms_norm(const float* x, const float* delta, float* x_out,
                                  const float* weight, float eps, int64_t rows, int64_t cols,
                                  float* y, Stream stream, void* quantized = nullptr) noexcept;
/// y = (x − mean) / sqrt(var + eps) · weight + bias, per row (bias may be null).
[[nodiscard]] Status layer_norm(const float* x, const float* weight, const float* bias, float eps,
                                int64_t rows, int64_t cols, float* y, Stream stream) noexcept;
/// Rotates `heads` heads of `head_dim` in place in each of `tokens` rows (row stride
/// `row_stride` floats) at positions[t] (device array); inv_freq holds head_dim / 2 values
/// (RopeTable::inv_freq copied to the device). Angles and rotations in double, as the reference.
[[nodiscard]] Status rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                          int64_t row_stride, const int32_t* positions, const float* inv_freq,
                          RopeLayout layout, Stream stream) noexcept;
/// out[i] = silu(gate[i]) · up[i].
[[nodiscard]] Status silu_mul(const float* gate, const float* up, float* out, int64_t count,
                              Stream stream) noexcept;
/// out[i] = gelu(x[i]) with erf.
[[nodiscard]] Status gelu(const float* x, float* out, int64_t count, Stream stream) noexcept;
/// out[i] = a[i] + b[i] (residual connections; out may alias a or b).
[[nodiscard]] Status add(const float* a, const float* b, float* out, int64_t count,
                         Stream stream) noexcept;
/// In-place softmax of each row.
[[nodiscard]] Status softmax(float* x, int64_t rows, int64_t cols, Stream stream) noexcept;

/// Keys or values in paged device memory, as kernels/ops.hpp's KvView: block b holds rows
/// [b·block_rows, (b+1)·block_rows) of kv_heads × head_dim values (F16 or F32), starting
/// `block_offset` bytes into the block (a layer's slice of the runtime's KvCache blocks). One
/// sequence, or with `token_tables` several: token t's sequence has its blocks at
/// blocks[token_tables[t]…].
struct DeviceKvView {
  KvType type = KvType::kF16;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_rows = 0;
  void* const* blocks = nullptr;          ///< device array of device pointers, one per block
  int64_t positions = 0;                  ///< rows valid; an upper bound of every causal limit
  int64_t block_offset = 0;               ///< bytes from a block's start to its first row
  const int32_t* token_tables = nullptr;  ///< device, per token; null: one sequence
};

/// Whether attention() and kv_store() handle `view` (F16 or F32, head_dim ∈ {32, 64, 96, 128,
/// 256}).
[[nodiscard]] bool attention_supports(const DeviceKvView& view) noexcept;

/// Stores `rows` f32 rows (kv_heads × head_dim each, contiguous) into rows first_row.. of `dst`
/// (one sequence: no token_tables).
[[nodiscard]] Status kv_store(const float* src, int64_t rows, int64_t first_row,
                              const DeviceKvView& dst, Stream stream) noexcept;
/// Stores row t of keys_src and values_src (row stride src_stride) at row positions[t] of token
/// t's sequence in `keys` and `values` (one launch for both).
[[nodiscard]] Status kv_store_tokens(const float* keys_src, const float* values_src,
                                     int64_t src_stride, int64_t tokens, const int32_t* positions,
                                     const DeviceKvView& keys, const DeviceKvView& values,
                                     Stream stream) noexcept;

/// rope() over the q and k heads of each qkv row (q: `heads` heads, then k: keys.kv_heads
/// heads, then v), then kv_store_tokens() of the rotated k and of v, in one launch: the same
/// values as the two calls.
[[nodiscard]] Status rope_kv_store_tokens(float* qkv, int64_t row_stride, int64_t tokens,
                                          int64_t heads, const int32_t* positions,
                                          const float* inv_freq, RopeLayout layout,
                                          const DeviceKvView& keys, const DeviceKvView& values,
                                          Stream stream) noexcept;

/// Grouped-query attention over the paged cache, as kernels/ops.hpp's attention(): q and out are
/// tokens × heads × head_dim; token t attends to rows 0..positions[t] when `causal` (positions
/// on the device), else to every row. Split-K ("flash decoding"): each (token, kv head) pair's
/// rows are split over enough blocks to fill the GPU, partial softmax states combined after.
[[nodiscard]] Status attention(Context& context, const float* q, int64_t tokens, int64_t heads,
                               const DeviceKvView& keys, const DeviceKvView& values,
                               const int32_t* positions, bool causal, float scale,
                               float* out) noexcept;

/// Causal attention of tokens from several sequences in one launch (DeviceKvView's
/// token_tables); token t's query row starts at q + t·q_stride, out is tokens × heads × head_dim.
/// With `quantized`, out is also written there as quantize_activations() would. Decode steps
/// (≤ 8 tokens) read positions, block tables and each sequence's rows below its first position
/// in this call before the previous kernel on the stream has finished: those must not be
/// written by kernels still running (in a decode step they come from earlier steps).
[[nodiscard]] Status attention_tokens(Context& context, const float* q, int64_t q_stride,
                                      int64_t tokens, int64_t heads, const DeviceKvView& keys,
                                      const DeviceKvView& values, const int32_t* positions,
                                      float scale, float* out, void* quantized = nullptr) noexcept;

/// Whether embed_rows() reads `dtype` (F32, F16, BF16, Q8_0, Q4_0).
[[nodiscard]] bool embed_supports(DType dtype) noexcept;
/// out[t] = row ids[t] of a GGUF-layout table of `cols` columns in device memory, in f32.
[[nodiscard]] Status embed_rows(DType dtype, const void* table, int64_t cols, const int32_t* ids,
                                int64_t tokens, float* out, Stream stream) noexcept;
/// dst[i] = src[rows[i]] for i < count, rows of `cols` floats (the rows that need logits).
[[nodiscard]] Status gather_rows(const float* src, const int32_t* rows, int64_t count, int64_t cols,
                                 float* dst, Stream stream) noexcept;
/// y[r][c] += bias[c] for r < rows, c < cols (row stride cols).
[[nodiscard]] Status add_bias(float* y, const float* bias, int64_t rows, int64_t cols,
                              Stream stream) noexcept;
/// out[t][i] = silu(gu[t][i]) · gu[t][width + i]: gate and up side by side in each row. With
/// `quantized` (width % 32 == 0), out is also written there as quantize_activations() would.
[[nodiscard]] Status silu_mul_rows(const float* gate_up, int64_t tokens, int64_t width, float* out,
                                   Stream stream, void* quantized = nullptr) noexcept;

/// Greedy decoding on the device: out[r] = greedy_pick of logits row r (rows × vocab,
/// contiguous), normalizer summed in f32.
[[nodiscard]] Status greedy_rows(const float* logits, int64_t rows, int64_t vocab, GreedyPick* out,
                                 Stream stream) noexcept;

/// The largest top-k sample_rows() decides on the device.
inline constexpr int kSampleCandidates = 1024;
/// Sampling on the device: out[r] = sample_pick() of logits row r (rows × vocab, contiguous)
/// under specs[r], whose penalized ranges index `penalized` (specs, penalized, out and
/// `scratch`, rows × vocab floats, in device memory). A row with a top-k above
/// kSampleCandidates, or a nucleus (top-p) spread over more than 2 × kSampleCandidates values
/// near the top, comes back with deferred = 1, for sample_pick() on the host with the same
/// spec. Same picks as the host but for rounding: sums over the whole vocabulary add f32
/// exponentials in another order.
[[nodiscard]] Status sample_rows(const float* logits, int64_t rows, int64_t vocab,
                                 const SampleSpec* specs, const int32_t* penalized, float* scratch,
                                 SamplePick* out, Stream stream) noexcept;

/// The roofline: reads `bytes` (a multiple of 16, 16-byte aligned) once with 128-bit loads and
/// writes one word to `sink` (device). `variant` 0..stream_read_variants()−1 picks the unroll
/// depth and block size (the benchmark keeps the fastest).
[[nodiscard]] Status stream_read(const void* data, uint64_t bytes, uint64_t* sink, int variant,
                                 Stream stream) noexcept;
[[nodiscard]] int stream_read_variants() noexcept;

}  // namespace polyinfer::inline v0::detail::gpu
