// SPDX-License-Identifier: Apache-2.0
// The transformer-op kernels with one-lane "vectors": the portable level below AVX2.
#include <cmath>
#include <cstring>

#include "kernels/common/block_formats.hpp"
#include "kernels/cpu/attention_ops.hpp"
#include "kernels/cpu/isa_ops.hpp"
#include "kernels/cpu/simd_ops.hpp"

namespace polyinfer::inline v0::detail {
namespace {

/// Vector traits of width 1 (see simd_ops.hpp for the interface).
struct ScalarVec {
  using F = float;
  using M = bool;
  static constexpr int kLanes = 1;

  static F zero() { return 0.0f; }
  static F set1(float v) { return v; }
  static F load(const float* p) {
    float v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(float* p, F v) { std::memcpy(p, &v, sizeof v); }
  static F load_n(const float* p, int n) { return n > 0 ? load(p) : 0.0f; }
  static void store_n(float* p, F v, int n) {
    if (n > 0) store(p, v);
  }
  static F add(F a, F b) { return a + b; }
  static F sub(F a, F b) { return a - b; }
  static F mul(F a, F b) { return a * b; }
  static F div(F a, F b) { return a / b; }
  static F fmadd(F a, F b, F c) { return a * b + c; }
  static F fnmadd(F a, F b, F c) { return c - a * b; }
  static F min(F a, F b) { return a < b ? a : b; }
  static F max(F a, F b) { return a > b ? a : b; }
  static F abs(F a) { return std::fabs(a); }
  static M lt(F a, F b) { return a < b; }
  static M ge(F a, F b) { return a >= b; }
  static F select(M m, F a, F b) { return m ? a : b; }
  static M first_n(int n) { return n > 0; }
  static float reduce_add(F v) { return v; }
  static void reduce_add4(F a, F b, F c, F d, float* out) {
    out[0] = a;
    out[1] = b;
    out[2] = c;
    out[3] = d;
  }
  static float reduce_max(F v) { return v; }
  static F round_nearest(F v) { return std::nearbyint(v); }
  static F trunc(F v) { return std::trunc(v); }
  static F pow2i(F n) { return std::ldexp(1.0f, static_cast<int>(n)); }
  static F load_f16(const Half* p) {
    Half h;
    std::memcpy(&h, p, sizeof h);
    return fp16_to_f32(h);
  }
  static void store_f16(Half* p, F v) {
    const Half h = f32_to_fp16(v);
    std::memcpy(p, &h, sizeof h);
  }
  static F load_i8(const int8_t* p) { return static_cast<float>(*p); }
  static void store_i8(int8_t* p, F v) { *p = static_cast<int8_t>(v); }
  static float half_to_float(Half h) { return fp16_to_f32(h); }
};

}  // namespace

const OpsTable& ops_table_scalar() noexcept {
  static constexpr OpsTable kTable{&rms_norm_kernel<ScalarVec>, &layer_norm_kernel<ScalarVec>,
                                   &rope_kernel<ScalarVec>,     &silu_mul_kernel<ScalarVec>,
                                   &gelu_kernel<ScalarVec>,     &softmax_kernel<ScalarVec>,
                                   &kv_store_kernel<ScalarVec>, &attention_kernel<ScalarVec>};
  return kTable;
}

}  // namespace polyinfer::inline v0::detail
