// SPDX-License-Identifier: Apache-2.0
// CPU feature detection, the ISA level in use, the matmul kernel registry, PackedMatrix, matmul().
#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kernels/cpu/matmul_kernel.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "kernels/ops.hpp"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace polyinfer::inline v0::detail {

// Levels this compiler did not build (see kernels/CMakeLists.txt) have empty tables.
#if !defined(POLYINFER_KERNELS_AVX2)
MatmulKernelTable matmul_kernels_avx2() noexcept {
  return {nullptr, 0};
}
#endif
#if !defined(POLYINFER_KERNELS_AVX512)
MatmulKernelTable matmul_kernels_avx512() noexcept {
  return {nullptr, 0};
}
#endif
#if !defined(POLYINFER_KERNELS_AVX512VNNI)
MatmulKernelTable matmul_kernels_avx512vnni() noexcept {
  return {nullptr, 0};
}
#endif
#if !defined(POLYINFER_KERNELS_AMX)
MatmulKernelTable matmul_kernels_amx() noexcept {
  return {nullptr, 0};
}
#endif
#if !defined(POLYINFER_KERNELS_ONEDNN)
MatmulKernelTable matmul_kernels_onednn() noexcept {
  return {nullptr, 0};
}
#endif

namespace {

// ---- CPU features --------------------------------------------------------------------------

struct CpuFeatures {
  Isa level = Isa::kScalar;
  bool avx512_bf16 = false;
};

#if defined(__x86_64__)
uint64_t read_xcr0() {
  uint32_t eax = 0;
  uint32_t edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t{edx} << 32) | eax;
}

// Linux keeps AMX tile data off until a process asks (arch_prctl ARCH_REQ_XCOMP_PERM).
bool request_amx_permission() {
#if defined(__linux__)
  constexpr long kArchGetXcompPerm = 0x1022;
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return false;
  unsigned long bitmask = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &bitmask) != 0) return false;
  return (bitmask & (1ul << kXfeatureXtiledata)) != 0;
#else
  return false;
#endif
}

CpuFeatures query_cpu() {
  CpuFeatures out;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return out;
  __cpuid_count(1, 0, eax, ebx, ecx, edx);
  const bool fma = (ecx >> 12) & 1;
  const bool osxsave = (ecx >> 27) & 1;
  const bool avx = (ecx >> 28) & 1;
  const bool f16c = (ecx >> 29) & 1;
  if (!osxsave || !avx) return out;
  const uint64_t xcr0 = read_xcr0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;          // SSE and AVX state
  const bool os_avx512 = (xcr0 & 0xE6) == 0xE6;     // + opmask, ZMM_Hi256, Hi16_ZMM
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;  // XTILECFG, XTILEDATA
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool avx2 = (ebx >> 5) & 1;
  const bool avx512f = (ebx >> 16) & 1;
  const bool avx512dq = (ebx >> 17) & 1;
  const bool avx512bw = (ebx >> 30) & 1;
  const bool avx512vl = (ebx >> 31) & 1;
  const bool avx512vnni = (ecx >> 11) & 1;
  const bool amx_bf16 = (edx >> 22) & 1;
  const bool amx_tile = (edx >> 24) & 1;
  const bool amx_int8 = (edx >> 25) & 1;
  __cpuid_count(7, 1, eax, ebx, ecx, edx);
  const bool avx512bf16 = (eax >> 5) & 1;

  if (!(os_avx && avx2 && fma && f16c)) return out;
  out.level = Isa::kAvx2;
  if (!(os_avx512 && avx512f && avx512dq && avx512bw && avx512vl)) return out;
  out.level = Isa::kAvx512;
  out.avx512_bf16 = avx512bf16;
  if (!avx512vnni) return out;
  out.level = Isa::kAvx512Vnni;
  if (os_amx && amx_tile && amx_int8 && amx_bf16 && avx512bf16 && request_amx_permission()) {
    out.level = Isa::kAmx;
  }
  return out;
}
#else
CpuFeatures query_cpu() {
  return {};
}
#endif

const CpuFeatures& cpu() {
  static const CpuFeatures features = query_cpu();
  return features;
}

// Parses $POLYINFER_ISA; an unknown name leaves the level alone.
Isa env_isa(Isa detected) {
  const char* value = std::getenv("POLYINFER_ISA");
  if (value == nullptr) return detected;
  for (int level = 0; level <= static_cast<int>(Isa::kAmx); ++level) {
    if (isa_name(static_cast<Isa>(level)) == value) {
      return std::min(detected, static_cast<Isa>(level));
    }
  }
  return detected;
}

// The level in use; −1 until first asked (then detection and the environment fill it in).
std::atomic<int> g_active_isa{-1};

// ---- kernel registry -------------------------------------------------------------------------

// Every kernel of every unit, in registration order.
const std::vector<const MatmulKernel*>& all_kernels() {
  static const std::vector<const MatmulKernel*> kernels = [] {
    std::vector<const MatmulKernel*> out;
    for (MatmulKernelTable table :
         {matmul_kernels_scalar(), matmul_kernels_avx2(), matmul_kernels_avx512(),
          matmul_kernels_avx512vnni(), matmul_kernels_amx(), matmul_kernels_amx_bf16(),
          matmul_kernels_onednn()}) {
      for (int i = 0; i < table.count; ++i) out.push_back(&table.kernels[i]);
    }
    return out;
  }();
  return kernels;
}

constexpr int kLevels = static_cast<int>(Isa::kAmx) + 1;
constexpr int kDTypes = 32;  // ggml type ids we index by (all < 32)

// Candidates per (level, dtype), computed once: the kernels of that format at or below the
// level, best score first (for a GEMV shape; whole-call kernels are re-scored per shape).
struct Candidates {
  std::vector<const MatmulKernel*> kernels;
  PackLayout layout = PackLayout::kNone;  // the layout PackedMatrix prepares at this level
};

double score_of(const MatmulKernel& kernel, int64_t rows, int64_t cols, int64_t tokens) {
  if (kernel.score != nullptr) return kernel.score(rows, cols, tokens);
  return 10.0 * static_cast<int>(kernel.isa);
}

const Candidates& candidates(Isa level, DType dtype) {
  static const auto table = [] {
    auto out = std::make_unique<Candidates[]>(kLevels * kDTypes);
    for (int l = 0; l < kLevels; ++l) {
      for (const MatmulKernel* kernel : all_kernels()) {
        const auto type = static_cast<uint32_t>(kernel->dtype);
        if (static_cast<int>(kernel->isa) > l || type >= kDTypes) continue;
        if (kernel->isa != Isa::kScalar && l > static_cast<int>(cpu().level)) continue;
        out[l * kDTypes + type].kernels.push_back(kernel);
      }
      for (int t = 0; t < kDTypes; ++t) {
        Candidates& entry = out[l * kDTypes + t];
        std::stable_sort(entry.kernels.begin(), entry.kernels.end(),
                         [](const MatmulKernel* a, const MatmulKernel* b) {
                           return score_of(*a, 4096, 4096, 1) > score_of(*b, 4096, 4096, 1);
                         });
        for (const MatmulKernel* kernel : entry.kernels) {
          if (kernel->layout != PackLayout::kNone && kernel->run == nullptr) {
            entry.layout = kernel->layout;
            break;
          }
        }
      }
    }
    return out;
  }();
  const auto type = static_cast<uint32_t>(dtype);
  static const Candidates kNoCandidates;
  if (type >= kDTypes) return kNoCandidates;
  return table[static_cast<int>(level) * kDTypes + static_cast<int>(type)];
}

// Block geometry of the weight formats (kept here: kernels do not link the format layer).
struct Geometry {
  int64_t elements;
  int64_t bytes;
};

Geometry geometry(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return {1, 4};
    case DType::kF16:
    case DType::kBF16:
      return {1, 2};
    case DType::kQ4_0:
      return {32, 18};
    case DType::kQ4_1:
      return {32, 20};
    case DType::kQ5_0:
      return {32, 22};
    case DType::kQ5_1:
      return {32, 24};
    case DType::kQ8_0:
      return {32, 34};
    case DType::kQ8_1:
      return {32, 36};
    case DType::kQ2_K:
      return {256, 84};
    case DType::kQ3_K:
      return {256, 110};
    case DType::kQ4_K:
      return {256, 144};
    case DType::kQ5_K:
      return {256, 176};
    case DType::kQ6_K:
      return {256, 210};
    case DType::kQ8_K:
      return {256, 292};
    default:
      return {0, 0};
  }
}

// Per calling thread: activation scratch, grown as needed, 64-byte aligned.
std::byte* scratch(uint64_t bytes) {
  struct Buffer {
    std::byte* data = nullptr;
    uint64_t size = 0;
    ~Buffer() { ::operator delete (data, std::align_val_t{64}); }
  };
  thread_local Buffer buffer;
  if (bytes > buffer.size) {
    ::operator delete (buffer.data, std::align_val_t{64});
    buffer.size = std::max<uint64_t>(bytes, buffer.size * 3 / 2);
    buffer.data = static_cast<std::byte*>(::operator new (buffer.size, std::align_val_t{64}));
  }
  return buffer.data;
}

// Packed weights are streamed once per token: on 2 MiB pages (transparent huge pages, asked for
// with madvise) a GEMV takes no TLB miss per 4 KiB. Only whole huge pages are asked for: a
// partial last one would make up to 2 MiB per matrix resident that holds nothing.
std::byte* allocate_packed(uint64_t bytes) {
  constexpr uint64_t kHuge = uint64_t{2} << 20;
  if (bytes >= 2 * kHuge) {
    const uint64_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
    void* data = std::aligned_alloc(kHuge, rounded);
#if defined(__linux__)
    if (data != nullptr) madvise(data, bytes / kHuge * kHuge, MADV_HUGEPAGE);
#endif
    return static_cast<std::byte*>(data);
  }
  return static_cast<std::byte*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
}

}  // namespace

// ---- ISA level -------------------------------------------------------------------------------

std::string_view isa_name(Isa isa) noexcept {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx512Vnni:
      return "avx512vnni";
    case Isa::kAmx:
      return "amx";
  }
  return "unknown";
}

Isa detect_isa() noexcept {
  return cpu().level;
}

Isa active_isa() noexcept {
  int level = g_active_isa.load(std::memory_order_relaxed);
  if (level < 0) {
    int expected = -1;
    const int from_env = static_cast<int>(env_isa(detect_isa()));
    g_active_isa.compare_exchange_strong(expected, from_env, std::memory_order_relaxed);
    level = g_active_isa.load(std::memory_order_relaxed);
  }
  return static_cast<Isa>(level);
}

void force_isa(Isa isa) noexcept {
  g_active_isa.store(static_cast<int>(std::min(isa, detect_isa())), std::memory_order_relaxed);
}

bool cpu_has_avx512_bf16() noexcept {
  return cpu().avx512_bf16;
}

// ---- PackedMatrix ----------------------------------------------------------------------------

PackedMatrix::PackedMatrix(DType dtype, int64_t rows, int64_t cols, const std::byte* data,
                           bool repack)
    : dtype_(dtype), rows_(rows), cols_(cols), data_(data) {
  const Geometry geo = geometry(dtype);
  if (!repack || rows <= 0 || cols <= 0 || geo.elements == 0 || cols % geo.elements != 0) return;
  const PackLayout layout = candidates(active_isa(), dtype).layout;
  if (layout == PackLayout::kNone) return;
  const uint64_t bytes = pack_bytes(layout, rows, cols);
  std::byte* buffer = allocate_packed(bytes);
  if (buffer == nullptr) return;  // out of memory: the stored bytes serve (lower levels)
  pack_weights(layout, data, rows, cols, buffer);
  auto* weights = new PackedWeights{layout, buffer, bytes};
  packed_ = std::shared_ptr<void>(weights, [](void* p) {
    auto* packed = static_cast<PackedWeights*>(p);
    std::free(const_cast<std::byte*>(packed->data));
    delete packed;
  });
}

PackedMatrix::~PackedMatrix() = default;
PackedMatrix::PackedMatrix(PackedMatrix&&) noexcept = default;
PackedMatrix& PackedMatrix::operator=(PackedMatrix&&) noexcept = default;

uint64_t PackedMatrix::bytes() const noexcept {
  const Geometry geo = geometry(dtype_);
  if (geo.elements == 0) return 0;
  return static_cast<uint64_t>(rows_ * (cols_ / geo.elements) * geo.bytes);
}

uint64_t PackedMatrix::packed_bytes() const noexcept {
  return packed_ ? static_cast<const PackedWeights*>(packed_.get())->bytes : 0;
}

bool PackedMatrix::reads_stored() const noexcept {
  if (!packed_) return true;
  const PackLayout layout = static_cast<const PackedWeights*>(packed_.get())->layout;
  // Measured kernels (oneDNN) read the stored layout, as does a native kernel ranked above the
  // packed ones; $POLYINFER_MATMUL_KERNEL or a lowered level may still read it (paged back in).
  bool packed_seen = false;
  for (const MatmulKernel* kernel : candidates(active_isa(), dtype_).kernels) {
    if (kernel->layout == layout && kernel->supports == nullptr) packed_seen = true;
    if (kernel->layout == PackLayout::kNone && (kernel->run != nullptr || !packed_seen)) {
      return true;
    }
  }
  return !packed_seen;
}

// ---- matmul ----------------------------------------------------------------------------------

bool matmul_supports(DType dtype) noexcept {
  return !candidates(Isa::kScalar, dtype).kernels.empty();
}

namespace {

// The best native kernel and the best measured (whole-call) kernel for a matrix and a number of
// tokens; either may be null.
struct Selection {
  const MatmulKernel* native = nullptr;
  const MatmulKernel* measured = nullptr;
};

// Whether the comma-separated list ",a,b," names `name`.
bool mentions(std::string_view list, std::string_view name) {
  for (size_t at = list.find(name); at != std::string_view::npos; at = list.find(name, at + 1)) {
    if (list[at - 1] == ',' && at + name.size() < list.size() && list[at + name.size()] == ',') {
      return true;
    }
  }
  return false;
}

Selection select_kernels(const PackedMatrix& w, int64_t tokens) noexcept {
  // $POLYINFER_MATMUL_KERNEL names kernels to prefer where they apply (comma-separated), for
  // benchmarks that compare kernels of one level side by side.
  static const std::string preferred = [] {
    const char* value = std::getenv("POLYINFER_MATMUL_KERNEL");
    std::string out;
    if (value != nullptr) (out += ',') += value;
    return out.empty() ? out : out + ',';
  }();
  const auto* packed = static_cast<const PackedWeights*>(w.packed());
  const PackLayout layout = packed != nullptr ? packed->layout : PackLayout::kNone;
  Selection out;
  double native_score = 0;
  double measured_score = 0;
  for (const MatmulKernel* kernel : candidates(active_isa(), w.dtype()).kernels) {
    if (kernel->layout != PackLayout::kNone && kernel->layout != layout) continue;
    if (kernel->supports != nullptr && !kernel->supports(w.rows(), w.cols(), tokens)) continue;
    double score = score_of(*kernel, w.rows(), w.cols(), tokens);
    if (!preferred.empty() && mentions(preferred, kernel->name)) score += 1000;
    const MatmulKernel*& best = kernel->run != nullptr ? out.measured : out.native;
    double& best_score = kernel->run != nullptr ? measured_score : native_score;
    if (best == nullptr || score > best_score) {
      best = kernel;
      best_score = score;
    }
  }
  // A preferred measured kernel runs without measuring; otherwise it must win a measurement.
  if (out.measured != nullptr && measured_score >= 1000) out.native = nullptr;
  return out;
}

MatmulCall make_call(const PackedMatrix& w, const MatmulKernel& kernel, const float* x,
                     int64_t tokens, int64_t x_stride, float* y, int64_t y_stride,
                     ThreadPool* pool) {
  const auto* packed = static_cast<const PackedWeights*>(w.packed());
  const Geometry geo = geometry(w.dtype());
  MatmulCall call{};
  call.weights = w.data();
  call.packed = (packed != nullptr && kernel.layout == packed->layout) ? packed->data : nullptr;
  call.rows = w.rows();
  call.cols = w.cols();
  call.row_bytes = w.cols() / geo.elements * geo.bytes;
  call.x = x;
  call.x_stride = x_stride;
  call.tokens = tokens;
  call.y = y;
  call.y_stride = y_stride;
  call.threads = pool != nullptr ? pool->threads() : 1;
  return call;
}

void run_native(const MatmulKernel& kernel, MatmulCall call, ThreadPool* pool) {
  const int64_t tokens = call.tokens;
  call.act = kernel.act_bytes != nullptr ? scratch(kernel.act_bytes(tokens, call.cols)) : nullptr;
  if (kernel.prepare != nullptr) {
    auto prepare = [&](int64_t begin, int64_t end) { kernel.prepare(call, begin, end); };
    // Quantizing a token row costs about as much as a short GEMV row: split only long batches.
    if (pool != nullptr) {
      pool->parallel_for(tokens, prepare, std::max<int64_t>(1, 65536 / call.cols));
    } else {
      prepare(0, tokens);
    }
  }
  const int64_t row_units = (call.rows + kernel.row_block - 1) / kernel.row_block;
  const int64_t token_units = (tokens + kernel.token_block - 1) / kernel.token_block;
  auto compute = [&](int64_t begin, int64_t end) {
    // Units run token-block-major: a thread's range covers consecutive row blocks of one
    // token block, so the weights it streams are contiguous.
    for (int64_t unit = begin; unit < end;) {
      const int64_t token_unit = unit / row_units;
      const int64_t row_unit = unit % row_units;
      const int64_t row_end = std::min(row_units, row_unit + (end - unit));
      kernel.compute(
          call, row_unit * kernel.row_block, std::min(call.rows, row_end * kernel.row_block),
          token_unit * kernel.token_block, std::min(tokens, (token_unit + 1) * kernel.token_block));
      unit += row_end - row_unit;
    }
  };
  const int64_t units = row_units * token_units;
  if (pool == nullptr) {
    compute(0, units);
    return;
  }
  // Below ~64K multiply-adds per chunk, threads cost more than they save.
  const int64_t unit_work =
      int64_t{kernel.row_block} * std::min<int64_t>(tokens, kernel.token_block) * call.cols;
  pool->parallel_for(units, compute, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, unit_work)));
}

// Which of a native and a measured kernel won, per shape class (the two kernels, rows, cols,
// and tokens rounded down to a power of two). Filled by the first call of each class.
class Measurements {
 public:
  enum class Winner { kUnknown, kNative, kMeasured };

  Winner find(const Selection& pick, int64_t rows, int64_t cols, int64_t tokens) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto found = winners_.find(key(pick, rows, cols, tokens));
    return found != winners_.end() ? found->second : Winner::kUnknown;
  }
  void record(const Selection& pick, int64_t rows, int64_t cols, int64_t tokens, Winner winner) {
    std::lock_guard<std::mutex> lock(mutex_);
    winners_[key(pick, rows, cols, tokens)] = winner;
  }

 private:
  using Key = std::tuple<const void*, const void*, int64_t, int64_t, int>;
  static Key key(const Selection& pick, int64_t rows, int64_t cols, int64_t tokens) {
    return {pick.native, pick.measured, rows, cols, std::bit_width(static_cast<uint64_t>(tokens))};
  }
  std::mutex mutex_;
  std::map<Key, Winner> winners_;
};

Measurements& measurements() {
  static Measurements instance;
  return instance;
}

}  // namespace

std::string_view matmul_kernel_name(const PackedMatrix& w, int64_t tokens) noexcept {
  const Selection pick = select_kernels(w, tokens);
  if (pick.native != nullptr && pick.measured != nullptr) {
    const auto winner = measurements().find(pick, w.rows(), w.cols(), tokens);
    if (winner == Measurements::Winner::kMeasured) return pick.measured->name;
    return pick.native->name;  // until measured, the native kernel is the one trusted
  }
  if (pick.native != nullptr) return pick.native->name;
  return pick.measured != nullptr ? pick.measured->name : "none";
}

void matmul(const PackedMatrix& w, const float* x, int64_t tokens, int64_t x_stride, float* y,
            int64_t y_stride, ThreadPool* pool) {
  if (tokens <= 0 || w.rows() <= 0) return;
  const Selection pick = select_kernels(w, tokens);
  if (pick.measured != nullptr) {
    const MatmulCall call = make_call(w, *pick.measured, x, tokens, x_stride, y, y_stride, pool);
    if (pick.native == nullptr) {
      if (pick.measured->run(call)) return;
    } else {
      using Winner = Measurements::Winner;
      Measurements& record = measurements();
      const Winner winner = record.find(pick, w.rows(), w.cols(), tokens);
      if (winner == Winner::kMeasured && pick.measured->run(call)) return;
      if (winner == Winner::kUnknown) {
        // First call of this shape class: run both, keep the faster. The measured kernel runs
        // once untimed (oneDNN makes its primitive then) into scratch; the native one twice
        // (best of two), writing y.
        using Clock = std::chrono::steady_clock;
        const MatmulCall native_call =
            make_call(w, *pick.native, x, tokens, x_stride, y, y_stride, pool);
        std::vector<float> scratch_y(static_cast<size_t>(tokens * y_stride));
        MatmulCall trial = call;
        trial.y = scratch_y.data();
        const auto start = Clock::now();
        run_native(*pick.native, native_call, pool);
        const auto native_once = Clock::now() - start;
        bool ok = pick.measured->run(trial);
        const auto trial_start = Clock::now();
        ok = ok && pick.measured->run(trial);
        const auto measured_time = Clock::now() - trial_start;
        const auto again = Clock::now();
        run_native(*pick.native, native_call, pool);
        const auto native_time = std::min(native_once, Clock::now() - again);
        record.record(pick, w.rows(), w.cols(), tokens,
                      ok && measured_time < native_time ? Winner::kMeasured : Winner::kNative);
        return;
      }
    }
  }
  if (pick.native == nullptr) return;
  run_native(*pick.native, make_call(w, *pick.native, x, tokens, x_stride, y, y_stride, pool),
             pool);
}

}  // namespace polyinfer::inline v0::detail
