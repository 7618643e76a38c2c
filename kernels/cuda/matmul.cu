// SPDX-License-Identifier: Apache-2.0
// matmul(): GEMV kernels for up to 8 activation rows; for more, the tensor-core GEMM on
// quantized weights (integer form up to 16 rows, f16 form up to mmq_half_max_tokens(); the
// integer form up to mmq_max_tokens() where the f16 one is off) or cuBLAS after conversion to f16.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <type_traits>

#include "kernels/cuda/context.cuh"
#include "kernels/cuda/dequantize.cuh"
#include "kernels/cuda/gemv.cuh"

namespace polyinfer::inline v0::detail::gpu {
namespace {

// Must match the shapes gemv_kernel.cuh compiles (pick_gemv) × 4 or 8 warps.
constexpr GemvConfig kSingleTokenVariants[] = {
    {1, 2, 8, 1},
    {1, 4, 8, 1},
    {1, 8, 8, 1},
    {2, 2, 8, 1},
    {2, 4, 8, 1},
    {4, 2, 8, 1},
    {1, 4, 4, 1},
    {2, 2, 4, 1},
    {1, 8, 4, 1},
    {2, 4, 4, 1},
    {1, 8, 8, 2},
    {2, 2, 8, 2},
    {2, 4, 8, 2},
    {2, 2, 8, 4},
    {2, 4, 4, 2},
    // Bulk copies into shared-memory stages (pick_gemv_bulk).
    {1, 4, 8, 1, 4},
    {1, 2, 8, 1, 8},
    {1, 2, 16, 1, 4},
    {1, 2, 16, 1, 6},
    {1, 1, 16, 1, 8},
    {1, 2, 16, 1, 3},
    {1, 1, 16, 1, 6},
};

bool is_quantized(DType dtype) noexcept {
  return dtype == DType::kQ4_0 || dtype == DType::kQ8_0 || dtype == DType::kQ4_K;
}

/// Bytes of f16 weights the GEMM path dequantizes per cuBLAS call (bounds the scratch). 64 MB
/// measured faster than an L2-sized 16 MB on an H200 (fewer, larger cuBLAS calls: batch-32
/// decode 1678 vs 1301 tok/s, docs/benchmarks.md). POLYINFER_GPU_TILE_MB overrides.
uint64_t weight_tile_bytes() noexcept {
  static const uint64_t bytes = static_cast<uint64_t>(env_positive("POLYINFER_GPU_TILE_MB", 64))
                                << 20;
  return bytes;
}

Status check_product(const DeviceMatrix& w, const float* x, int64_t tokens, int64_t x_stride,
                     const float* y, int64_t y_stride) noexcept {
  if (w.quants() == nullptr || x == nullptr || y == nullptr || tokens < 1) {
    return Status::kInvalidArgument;
  }
  if ((tokens > 1 && x_stride < w.cols()) || (tokens > 1 && y_stride < w.rows())) {
    return Status::kInvalidArgument;
  }
  if (w.rows() > INT32_MAX || w.cols() > INT32_MAX || tokens > INT32_MAX) {
    return Status::kUnsupported;  // cuBLAS takes int sizes
  }
  return Status::kOk;
}

#if !POLYINFER_GPU_BLAS
// The GEMM path where no BLAS library is installed (Debian's HIP has no hipBLAS): 16 × 16 tiles
// of y through shared memory, f32 accumulation. Correct, not tuned.
template <typename T>
__device__ __forceinline__ float element(const void* data, int64_t index) {
  const T value = static_cast<const T*>(data)[index];
  if constexpr (std::is_same_v<T, float>) {
    return value;
  } else if constexpr (std::is_same_v<T, __half>) {
    return __half2float(value);
  } else {
    return __uint_as_float(static_cast<uint32_t>(value) << 16);  // bfloat16 bits
  }
}

template <typename T>
__global__ void fallback_gemm_kernel(int64_t rows, int64_t tokens, int64_t cols,
                                     const void* weights, const void* x, int64_t x_stride, float* y,
                                     int64_t y_stride) {
  constexpr int kTile = 16;
  __shared__ float w_tile[kTile][kTile + 1];
  __shared__ float x_tile[kTile][kTile + 1];
  const int tx = static_cast<int>(threadIdx.x);
  const int ty = static_cast<int>(threadIdx.y);
  const int64_t row = int64_t{blockIdx.x} * kTile + tx;
  const int64_t token = int64_t{blockIdx.y} * kTile + ty;
  float sum = 0.0f;
  for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
    const int64_t w_row = int64_t{blockIdx.x} * kTile + ty;
    const int64_t x_token = int64_t{blockIdx.y} * kTile + ty;
    w_tile[ty][tx] =
        w_row < rows && c0 + tx < cols ? element<T>(weights, w_row * cols + c0 + tx) : 0.0f;
    x_tile[ty][tx] =
        x_token < tokens && c0 + tx < cols ? element<T>(x, x_token * x_stride + c0 + tx) : 0.0f;
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kTile; ++k) sum += w_tile[tx][k] * x_tile[ty][k];
    __syncthreads();
  }
  if (row < rows && token < tokens) y[token * y_stride + row] = sum;
}
#endif

Status blas_gemm(Context::Impl& impl, int64_t rows, int64_t tokens, int64_t cols,
                 const void* weights, cudaDataType_t weight_type, const void* x,
                 cudaDataType_t x_type, int64_t x_stride, float* y, int64_t y_stride) noexcept {
#if !POLYINFER_GPU_BLAS
  if (weight_type != x_type) return Status::kUnsupported;
  const dim3 grid(static_cast<unsigned>(ceil_div(rows, int64_t{16})),
                  static_cast<unsigned>(ceil_div(tokens, int64_t{16})));
  const dim3 block(16, 16);
  const auto kernel = weight_type == CUDA_R_32F   ? &fallback_gemm_kernel<float>
                      : weight_type == CUDA_R_16F ? &fallback_gemm_kernel<__half>
                                                  : &fallback_gemm_kernel<uint16_t>;
  return launch(kernel, grid, block, 0, impl.stream, false, rows, tokens, cols, weights, x,
                x_stride, y, y_stride);
#else
  // Row-major W (rows × cols) is column-major Wᵀ: y (column-major rows × tokens) = Wᵀᵀ·x.
  const float one = 1.0f;
  const float zero = 0.0f;
  return status_of(cublasGemmEx(
      impl.blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), static_cast<int>(tokens),
      static_cast<int>(cols), &one, weights, weight_type, static_cast<int>(cols), x, x_type,
      static_cast<int>(x_stride), &zero, y, CUDA_R_32F, static_cast<int>(y_stride),
      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
#endif
}

}  // namespace

std::span<const GemvConfig> gemv_variants() noexcept {
  return kSingleTokenVariants;
}

namespace {

/// A single-token shape from the environment variable `name`
/// ("rows,unroll,warps[,splits[,stages]]", one of kSingleTokenVariants), else rows 0.
GemvConfig forced_shape(const char* name) noexcept {
  GemvConfig config{};
  if (const char* env = std::getenv(name); env != nullptr) {
    GemvConfig parsed{};
    if (std::sscanf(env, "%d,%d,%d,%d,%d", &parsed.rows_per_warp, &parsed.unroll,
                    &parsed.warps_per_block, &parsed.splits, &parsed.stages) >= 3 &&
        std::find_if(std::begin(kSingleTokenVariants), std::end(kSingleTokenVariants),
                     [&](const GemvConfig& c) {
                       return c.rows_per_warp == parsed.rows_per_warp &&
                              c.unroll == parsed.unroll && c.splits == parsed.splits &&
                              c.warps_per_block == parsed.warps_per_block &&
                              c.stages == parsed.stages;
                     }) != std::end(kSingleTokenVariants)) {
      config = parsed;
    }
  }
  return config;
}

}  // namespace

GemvConfig gemv_default(DType dtype, int64_t tokens, int64_t cols, int64_t rows) noexcept {
  // POLYINFER_GPU_GEMV: one single-token shape for every format; POLYINFER_GPU_GEMV_LONG /
  // _SHORT: for rows of more / at most 4096 columns only (an 8B Llama's down projection / the
  // others). Tuning.
  static const GemvConfig forced = forced_shape("POLYINFER_GPU_GEMV");
  static const GemvConfig forced_long = forced_shape("POLYINFER_GPU_GEMV_LONG");
  static const GemvConfig forced_short = forced_shape("POLYINFER_GPU_GEMV_SHORT");
  if (tokens <= 1 && dtype != DType::kF32) {
    if (forced.rows_per_warp != 0) return forced;
    if (forced_long.rows_per_warp != 0 && cols > 4096) return forced_long;
    if (forced_short.rows_per_warp != 0 && cols <= 4096) return forced_short;
  }
  if (tokens <= 1 || tokens > kGemvMaxTokens) {
    // Chosen on an H200 (docs/measurements/gpu_*-2026-11-25-session5.txt): batch-1 decode of
    // llama-3-8b with each shape forced (POLYINFER_GPU_GEMV; every matrix of an 8B Llama has up
    // to 14336 columns), and gpu_check's per-variant table for the matrices of 100 MB and more.
    // - Q4_0: two rows × four chunks in flight per lane inside the model (445 tok/s; launched
    //   early, each GEMV loads its first chunks while the kernel before it runs); past 14336
    //   columns, see below.
    // - Q4_K (32-byte chunks): two rows × two, 4 warps, everywhere (438 tok/s; 78–80 % and
    //   88–89 % on the two large matrices).
    // - Q8_0: rows of 4097–14336 columns split over four warps (337 against 317 tok/s unsplit).
    // - F16: eight chunks of one row per lane past 4096 columns (86–91 %); rows of 4096: below.
    const bool long_rows = cols > 14336;
    // Vocabulary-sized matrices of short rows (an output projection): four rows × two chunks,
    // unsplit. 128256×4096, three H200 runs each (docs/measurements/gpu-2026-11-26-session15.txt,
    // calls 1, 3, 4): Q4_0 90.1–92.0 % of streaming against 83.9–85.5 % for (2,4,8), Q8_0
    // 94.5–96.7 against 91.6–93.2 for (2,2,8,4), F16 92.7–94.7 against 86.4–88.2 (BF16 runs
    // the same kernel); Q4_K's (2,2,4) stays (87.9–89.2 against 73.1–74.2). Matrices between
    // 14336 and 65536 rows were not measured and keep the shapes below.
    const bool vocabulary = rows >= 65536 && cols <= 4096;
    if (vocabulary && dtype != DType::kQ4_K && dtype != DType::kF32) return GemvConfig{4, 2, 8};
    switch (dtype) {
      case DType::kQ4_0:
        // Rows of 4097..14336 columns (an 8B Llama's down projection) split over four warps:
        // batch-1 decode 536 against 525 tok/s, twice (session 13, POLYINFER_GPU_GEMV_LONG;
        // Q4_K lost 2 % with it). Longer rows: two rows × two chunks, 4 warps, ahead of
        // (4,2,8) by 0.7–2.0 points in all 16 runs of sessions 10 and 15 on 8192×28672.
        if (long_rows) return GemvConfig{2, 2, 4};
        return cols > 4096 ? GemvConfig{2, 2, 8, 4} : GemvConfig{2, 4, 8};
      case DType::kQ4_K:
        return GemvConfig{2, 2, 4};
      case DType::kQ8_0:
        // Past 14336 columns, four rows × two unsplit: the split (2,2,8,4) was the
        // slowest of the four common shapes on 8192×28672 in all 16 runs of sessions 10 and 15
        // (82.4–86.3 % of streaming; (4,2,8) 86.8–89.6 %, docs/measurements).
        if (long_rows) return GemvConfig{4, 2, 8};
        // Rows of up to 4096 columns (qkv, o, gate_up: the folded kernels at batch 1): two rows
        // × four chunks, unsplit: the best of the four folded shapes in batch-1 decode, 399.3
        // against 392.6 tok/s for (2,2,8,4) (session 20, call 9); medians of the same call
        // 397.0 against 389.7 (call 10).
        return cols <= 4096 ? GemvConfig{2, 4, 8} : GemvConfig{2, 2, 8, 4};
      case DType::kF16:
      case DType::kBF16:
        // Rows of 14336 columns and more on Hopper: the bulk-copy kernel (4096×14336: 90 %
        // against 86–88 %; 8192×28672: 97 % against 91–93 %); on rows of 4096 it loses.
        if (cols >= 14336 && current_device_traits().bulk_copies) return GemvConfig{1, 2, 16, 1, 4};
        if (cols > 4096) return GemvConfig{1, 8, 8};
        // Rows of up to 4096 columns (session 20, three H200 calls, % of streaming): more than
        // 8192 rows unsplit, two rows × two chunks, 4 warps (14336×4096: 86.7–87.3 against
        // 82.7–83.9 for (2,2,8,4)); fewer split over two warps, (2,4,8,2) (4096×4096:
        // 76.2–78.8 against 71.4–73.2).
        return rows > 8192 ? GemvConfig{2, 2, 4} : GemvConfig{2, 4, 8, 2};
      default:
        return {1, 4, 8};
    }
  }
  const GemvShape shape = kMultiTokenShapes[tokens];
  return {shape.rows_per_warp, shape.unroll, kMultiTokenWarps};
}

namespace {

/// Most activation rows the integer GEMM takes before cuBLAS on f16-dequantized weights
/// (POLYINFER_GPU_MMQ_MAX=N overrides, 0 turns it off). 64, from an H200 (llama-3-8b Q4_0
/// decode, docs/benchmarks.md): the integer GEMM is 3.0× faster at 16 sequences and 1.28× at
/// 64, and 0.89× at 128, where the f16 tensor cores' throughput wins over reading 4-bit weights.
int64_t mmq_max_tokens() noexcept {
  static const int64_t most = [] {
    const char* env = std::getenv("POLYINFER_GPU_MMQ_MAX");
    return env != nullptr ? std::max<int64_t>(0, std::strtoll(env, nullptr, 10)) : int64_t{64};
  }();
  return most;
}

/// POLYINFER_GPU_MMQ_HALF: unset, the f16 MMA form past 16 tokens; 1, for every token count the
/// integer GEMM takes; 0, never (comparisons).
int mmq_half_setting() noexcept {
  static const int half = [] {
    const char* env = std::getenv("POLYINFER_GPU_MMQ_HALF");
    return env == nullptr ? -1 : *env == '1' ? 1 : 0;
  }();
  return half;
}

/// Most activation rows the f16 MMA form takes before cuBLAS on f16-dequantized weights: 128,
/// from an H200 (docs/benchmarks.md: decode of 128 sequences, q4_0 8225 against 6252 tok/s
/// (session 10), q4_k 7366 against 6439, q8_0 7206 against 7273 (session 11)).
/// POLYINFER_GPU_MMQ_HALF_MAX=N overrides.
int64_t mmq_half_max_tokens() noexcept {
  static const int64_t most = [] {
    const char* env = std::getenv("POLYINFER_GPU_MMQ_HALF_MAX");
    return env != nullptr ? std::max<int64_t>(0, std::strtoll(env, nullptr, 10)) : int64_t{128};
  }();
  return most;
}

/// Whether quantized weights and `tokens` rows (past the GEMVs) belong to the f16 MMA form: past
/// 16 rows, up to mmq_half_max_tokens(). Measured on an H200 (docs/benchmarks.md): Q4_0
/// 14336×4096 at 32 / 64 tokens 39.9 / 59.5 µs against 46.6 / 87.5 for the integer MMA, q4_0
/// decode of 32 / 64 sequences +10 / +31 %, at 16 tokens 3–5 % slower (session 10); decode of
/// 32 / 64 sequences q4_k +10 / +42 %, q8_0 +7 / +20 % (session 11).
bool half_form(DType dtype, int64_t tokens) noexcept {
  const int half = mmq_half_setting();
  return is_quantized(dtype) && half != 0 && mmq_max_tokens() > 0 &&
         tokens <= mmq_half_max_tokens() && (half == 1 || tokens > 16);
}

bool takes_mmq(const Context& context, DType dtype, int64_t tokens) noexcept {
  if (tokens <= kGemvMaxTokens || !mmq_supported(context, dtype)) return false;
  return tokens <= mmq_max_tokens() || half_form(dtype, tokens);
}

/// The integer kernels' input: `xq` where the producer wrote it, else x (row stride x_stride)
/// quantized into the context's activation scratch; the view's quants and block metadata.
Status quantized_input(Context::Impl& impl, const float* x, const void* xq, int64_t tokens,
                       int64_t cols, int64_t x_stride, ActivationsView* activations) noexcept {
  if (xq == nullptr) {
    POLYINFER_GPU_TRY(impl.reserve(impl.activations, quantized_activation_bytes(tokens, cols)));
    POLYINFER_GPU_TRY(
        quantize_activations(x, tokens, cols, x_stride, impl.activations.data(), impl.stream));
    xq = impl.activations.data();
  }
  const QuantizedRows rows = quantized_rows(const_cast<void*>(xq), tokens, cols);
  activations->qs = rows.qs;
  activations->meta = rows.meta;
  return Status::kOk;
}

// The integer GEMM; xq: x already quantized, or null.
Status run_mmq(Context& context, const DeviceMatrix& w, const float* x, const void* xq,
               int64_t tokens, int64_t x_stride, float* y, int64_t y_stride) noexcept {
  POLYINFER_GPU_TRY(check_product(w, x, tokens, x_stride, y, y_stride));
  Context::Impl& impl = context.impl();
  if (!mmq_available(impl, w.dtype())) return Status::kUnsupported;
  if (tokens == 1) x_stride = w.cols();
  ActivationsView activations;
  activations.cols = w.cols();
  POLYINFER_GPU_TRY(quantized_input(impl, x, xq, tokens, w.cols(), x_stride, &activations));
  return launch_mmq(impl, weights_view(w), w.dtype(), activations, tokens, y, y_stride, true);
}

// The GEMV path; xq: x already quantized (quantized formats only), or null.
Status run_gemv(Context& context, const DeviceMatrix& w, const float* x, const void* xq,
                int64_t tokens, int64_t x_stride, float* y, int64_t y_stride,
                const GemvConfig& requested) noexcept {
  POLYINFER_GPU_TRY(check_product(w, x, tokens, x_stride, y, y_stride));
  if (tokens > kGemvMaxTokens) return Status::kUnsupported;
  const GemvConfig config = requested.rows_per_warp == 0
                                ? gemv_default(w.dtype(), tokens, w.cols(), w.rows())
                                : requested;
  Context::Impl& impl = context.impl();
  const WeightsView view = weights_view(w);
  const int token_count = static_cast<int>(tokens);
  if (tokens == 1) x_stride = w.cols();
  if (tokens == 1) y_stride = w.rows();
  ActivationsView activations;
  activations.cols = w.cols();
  if (is_quantized(w.dtype())) {
    POLYINFER_GPU_TRY(quantized_input(impl, x, xq, tokens, w.cols(), x_stride, &activations));
  }
  switch (w.dtype()) {
    case DType::kQ4_0:
      return gemv_q4_0(view, activations, token_count, y, y_stride, config, impl.stream, true);
    case DType::kQ8_0:
      return gemv_q8_0(view, activations, token_count, y, y_stride, config, impl.stream, true);
    case DType::kQ4_K:
      return gemv_q4_k(view, activations, token_count, y, y_stride, config, impl.stream, true);
    case DType::kF16:
    case DType::kBF16:
      activations.x = x;
      activations.x_stride = x_stride;
      return gemv_half(view, activations, w.dtype() == DType::kBF16, token_count, y, y_stride,
                       config, impl.stream);
    default:
      return Status::kUnsupported;
  }
}

}  // namespace

namespace {

// One folded GEMV (gemv_add_residual(), gemv_normed()).
Status run_gemv_fold(Context& context, const DeviceMatrix& w, const void* xq, float* y,
                     bool consumer, FoldView* fold) noexcept {
  if (w.quants() == nullptr || y == nullptr || (!consumer && xq == nullptr)) {
    return Status::kInvalidArgument;
  }
  const DType dtype = w.dtype();
  if (dtype != DType::kQ4_0 && dtype != DType::kQ8_0 && dtype != DType::kQ4_K) {
    return Status::kUnsupported;
  }
  Context::Impl& impl = context.impl();
  const WeightsView view = weights_view(w);
  ActivationsView activations;
  activations.cols = w.cols();
  if (!consumer) {
    const QuantizedRows rows = quantized_rows(const_cast<void*>(xq), 1, w.cols());
    activations.qs = rows.qs;
    activations.meta = rows.meta;
  }
  const GemvConfig config = gemv_default(dtype, 1, w.cols(), w.rows());
  switch (dtype) {
    case DType::kQ4_0:
      return gemv_fold_q4_0(view, activations, y, config, consumer, fold, kNormFoldPartials,
                            impl.stream);
    case DType::kQ8_0:
      return gemv_fold_q8_0(view, activations, y, config, consumer, fold, kNormFoldPartials,
                            impl.stream);
    default:
      return gemv_fold_q4_k(view, activations, y, config, consumer, fold, kNormFoldPartials,
                            impl.stream);
  }
}

}  // namespace

Status gemv_add_residual(Context& context, const DeviceMatrix& w, const void* xq, float* residual,
                         const float* next_norm_weight, NormFold* fold) noexcept {
  if (fold == nullptr ||
      (next_norm_weight != nullptr && (fold->normed == nullptr || fold->partials == nullptr))) {
    return Status::kInvalidArgument;
  }
  FoldView view{{fold->normed, fold->partials, 0, fold->eps}, next_norm_weight};
  POLYINFER_GPU_TRY(run_gemv_fold(context, w, xq, residual, false, &view));
  fold->count = next_norm_weight != nullptr ? view.count : 0;
  return Status::kOk;
}

Status gemv_normed(Context& context, const DeviceMatrix& w, const NormFold& fold,
                   float* y) noexcept {
  if (fold.normed == nullptr || fold.partials == nullptr || fold.count < 1) {
    return Status::kInvalidArgument;
  }
  FoldView view{fold, nullptr};
  return run_gemv_fold(context, w, nullptr, y, true, &view);
}

Status gemv(Context& context, const DeviceMatrix& w, const float* x, int64_t tokens,
            int64_t x_stride, float* y, int64_t y_stride, const GemvConfig& config) noexcept {
  return run_gemv(context, w, x, nullptr, tokens, x_stride, y, y_stride, config);
}

Status gemm(Context& context, const DeviceMatrix& w, const float* x, int64_t tokens,
            int64_t x_stride, float* y, int64_t y_stride) noexcept {
  POLYINFER_GPU_TRY(check_product(w, x, tokens, x_stride, y, y_stride));
  if (tokens == 1) x_stride = w.cols();
  if (tokens == 1) y_stride = w.rows();
  Context::Impl& impl = context.impl();
  const int64_t rows = w.rows();
  const int64_t cols = w.cols();
  if (w.dtype() == DType::kF32) {
    return blas_gemm(impl, rows, tokens, cols, w.quants(), CUDA_R_32F, x, CUDA_R_32F, x_stride, y,
                     y_stride);
  }
  // Activations → f16 (bf16 for BF16 weights), tokens × cols contiguous.
  const bool bf16 = w.dtype() == DType::kBF16;
  const cudaDataType_t half_type = bf16 ? CUDA_R_16BF : CUDA_R_16F;
  POLYINFER_GPU_TRY(impl.reserve(impl.activations, static_cast<uint64_t>(tokens * cols) * 2));
  POLYINFER_GPU_TRY(
      convert_activations(x, tokens, cols, x_stride, bf16, impl.activations.data(), impl.stream));
  if (!is_quantized(w.dtype())) {
    return blas_gemm(impl, rows, tokens, cols, w.quants(), half_type, impl.activations.data(),
                     half_type, cols, y, y_stride);
  }
  // Quantized weights: dequantize a tile of rows to f16, multiply, next tile.
  const int64_t tile_rows = std::clamp<int64_t>(
      static_cast<int64_t>(weight_tile_bytes() / static_cast<uint64_t>(cols * 2)), 1, rows);
  POLYINFER_GPU_TRY(impl.reserve(impl.weight_tile, static_cast<uint64_t>(tile_rows * cols) * 2));
  const WeightsView view = weights_view(w);
  for (int64_t first = 0; first < rows; first += tile_rows) {
    const int64_t count = std::min(tile_rows, rows - first);
    POLYINFER_GPU_TRY(
        dequantize_rows_f16(view, w.dtype(), first, count, impl.weight_tile.data(), impl.stream));
    POLYINFER_GPU_TRY(blas_gemm(impl, count, tokens, cols, impl.weight_tile.data(), CUDA_R_16F,
                                impl.activations.data(), CUDA_R_16F, cols, y + first, y_stride));
  }
  return Status::kOk;
}

Status mmq(Context& context, const DeviceMatrix& w, const float* x, const void* xq, int64_t tokens,
           int64_t x_stride, float* y, int64_t y_stride) noexcept {
  return run_mmq(context, w, x, xq, tokens, x_stride, y, y_stride);
}

Status mmq_half(Context& context, const DeviceMatrix& w, const float* x, int64_t tokens,
                int64_t x_stride, float* y, int64_t y_stride) noexcept {
  POLYINFER_GPU_TRY(check_product(w, x, tokens, x_stride, y, y_stride));
  Context::Impl& impl = context.impl();
  if (!mmq_available(impl, w.dtype())) return Status::kUnsupported;
  if (tokens == 1) x_stride = w.cols();
  POLYINFER_GPU_TRY(impl.reserve(impl.activations, static_cast<uint64_t>(tokens * w.cols()) * 2));
  auto* staged = static_cast<uint16_t*>(impl.activations.data());
  POLYINFER_GPU_TRY(stage_half_activations(x, tokens, w.cols(), x_stride, staged, impl.stream));
  ActivationsView activations;
  activations.cols = w.cols();
  activations.half = staged;
  return launch_mmq(impl, weights_view(w), w.dtype(), activations, tokens, y, y_stride, true, true);
}

bool mmq_supported(const Context& context, DType dtype) noexcept {
  return mmq_available(context.impl(), dtype);
}

bool matmul_takes_mmq_half(const Context& context, DType dtype, int64_t tokens) noexcept {
  return tokens > kGemvMaxTokens && mmq_supported(context, dtype) && half_form(dtype, tokens);
}

bool matmul_reads_quantized(const Context& context, DType dtype, int64_t tokens) noexcept {
  if (!is_quantized(dtype)) return false;
  if (tokens <= kGemvMaxTokens) return true;
  return takes_mmq(context, dtype, tokens) && !matmul_takes_mmq_half(context, dtype, tokens);
}

Status matmul(Context& context, const DeviceMatrix& w, const float* x, const void* xq,
              int64_t tokens, int64_t x_stride, float* y, int64_t y_stride) noexcept {
  if (tokens <= kGemvMaxTokens && w.dtype() != DType::kF32) {
    return run_gemv(context, w, x, xq, tokens, x_stride, y, y_stride, GemvConfig{});
  }
  if (takes_mmq(context, w.dtype(), tokens)) {
    if (matmul_takes_mmq_half(context, w.dtype(), tokens)) {
      return mmq_half(context, w, x, tokens, x_stride, y, y_stride);
    }
    return run_mmq(context, w, x, xq, tokens, x_stride, y, y_stride);
  }
  return gemm(context, w, x, tokens, x_stride, y, y_stride);
}

Status matmul(Context& context, const DeviceMatrix& w, const float* x, int64_t tokens,
              int64_t x_stride, float* y, int64_t y_stride) noexcept {
  return matmul(context, w, x, nullptr, tokens, x_stride, y, y_stride);
}

}  // namespace polyinfer::inline v0::detail::gpu
