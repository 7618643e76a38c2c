// SPDX-License-Identifier: Apache-2.0
// oneDNN GEMMs as registry entries: F32 weights (dnnl_sgemm) and BF16 weights (matmul primitive,
// activations rounded to bf16). matmul() times them against the best native kernel on the first
// call of each shape class and keeps the faster (dispatch.cpp); they never run otherwise.
#include <oneapi/dnnl/dnnl.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "kernels/common/block_formats.hpp"
#include "kernels/cpu/matmul_kernel.hpp"

// libdnnl runs on OpenMP (libgomp, loaded with it): its thread count is set per call so that
// oneDNN uses as many threads as the pool it stands in for.
extern "C" void omp_set_num_threads(int threads) __attribute__((weak));

namespace polyinfer::inline v0::detail {
namespace {

void set_threads(int threads) {
  if (omp_set_num_threads != nullptr) omp_set_num_threads(threads < 1 ? 1 : threads);
}

// y (tokens × rows) = x (tokens × cols) · Wᵀ.
void run_f32(const MatmulCall& call) {
  set_threads(call.threads);
  const dnnl_status_t status = dnnl_sgemm(
      'N', 'T', call.tokens, call.rows, call.cols, 1.0f, call.x, call.x_stride,
      reinterpret_cast<const float*>(call.weights), call.cols, 0.0f, call.y, call.y_stride);
  if (status != dnnl_success) throw dnnl::error(status, "dnnl_sgemm");
}

struct Bf16Primitive {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::matmul matmul;
  dnnl::memory::desc src, weights, dst;
};

// Primitives are costly to make (milliseconds): one per shape, kept for the process.
Bf16Primitive* bf16_primitive(int64_t tokens, int64_t rows, int64_t cols, int64_t y_stride) {
  static std::mutex mutex;
  static std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, std::unique_ptr<Bf16Primitive>>
      cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[{tokens, rows, cols, y_stride}];
  if (!slot) {
    using dnnl::memory;
    auto made = std::make_unique<Bf16Primitive>();
    made->src = memory::desc({tokens, cols}, memory::data_type::bf16, memory::format_tag::ab);
    // W is rows × cols row-major: as the K × N operand that is the "ba" layout (zero copy).
    made->weights = memory::desc({cols, rows}, memory::data_type::bf16, memory::format_tag::ba);
    made->dst = memory::desc({tokens, rows}, memory::data_type::f32, {y_stride, 1});
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(made->src, made->weights, made->dst),
                                          made->engine);
    made->matmul = dnnl::matmul(pd);
    slot = std::move(made);
  }
  return slot.get();
}

void run_bf16(const MatmulCall& call) {
  set_threads(call.threads);
  Bf16Primitive* primitive = bf16_primitive(call.tokens, call.rows, call.cols, call.y_stride);
  thread_local std::vector<uint16_t> x;
  x.resize(static_cast<size_t>(call.tokens * call.cols));
  for (int64_t t = 0; t < call.tokens; ++t) {
    for (int64_t c = 0; c < call.cols; ++c) {
      x[t * call.cols + c] = f32_to_bf16(call.x[t * call.x_stride + c]);
    }
  }
  dnnl::stream stream(primitive->engine);
  dnnl::memory src(primitive->src, primitive->engine, x.data());
  dnnl::memory weights(primitive->weights, primitive->engine, const_cast<std::byte*>(call.weights));
  dnnl::memory dst(primitive->dst, primitive->engine, call.y);
  primitive->matmul.execute(
      stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}});
  stream.wait();
}

// oneDNN throws on failure; kernels must not: a failure reports false and the native kernel
// runs instead.
bool run_f32_safe(const MatmulCall& call) {
  try {
    run_f32(call);
    return true;
  } catch (...) {
    return false;
  }
}
bool run_bf16_safe(const MatmulCall& call) {
  try {
    run_bf16(call);
    return true;
  } catch (...) {
    return false;
  }
}

bool supports_gemm(int64_t, int64_t, int64_t tokens) {
  return tokens >= 32;
}
// Below the native kernels: matmul() measures before it picks one of these (see dispatch.cpp).
double measured_score(int64_t, int64_t, int64_t) {
  return -1;
}

constexpr MatmulKernel kKernels[] = {
    MatmulKernel{"f32_onednn", DType::kF32, Isa::kAvx2, PackLayout::kNone, 1, 1, nullptr, nullptr,
                 nullptr, &supports_gemm, &measured_score, &run_f32_safe},
    MatmulKernel{"bf16_onednn", DType::kBF16, Isa::kAvx512, PackLayout::kNone, 1, 1, nullptr,
                 nullptr, nullptr, &supports_gemm, &measured_score, &run_bf16_safe},
};

}  // namespace

MatmulKernelTable matmul_kernels_onednn() noexcept {
  return {kKernels, static_cast<int>(sizeof(kKernels) / sizeof(kKernels[0]))};
}

}  // namespace polyinfer::inline v0::detail
