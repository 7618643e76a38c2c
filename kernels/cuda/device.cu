// SPDX-License-Identifier: Apache-2.0
// Devices, owned buffers, copies and the per-stream Context (cuBLAS handle, scratch).
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <utility>

#include "kernels/cuda/context.cuh"

namespace polyinfer::inline v0::detail::gpu {

std::string_view status_name(Status status) noexcept {
  switch (status) {
    case Status::kOk:
      return "ok";
    case Status::kNoDevice:
      return "no device";
    case Status::kUnsupported:
      return "unsupported";
    case Status::kInvalidArgument:
      return "invalid argument";
    case Status::kOutOfMemory:
      return "out of memory";
    case Status::kDeviceError:
      return "device error";
  }
  return "unknown";
}

bool programmatic_launches() noexcept {
  static const bool enabled = env_switch("POLYINFER_GPU_PDL");
  return enabled;
}

void prefer_carveout(const void* kernel, int percent) noexcept {
#if POLYINFER_GPU_HIP
  (void)kernel;
  (void)percent;
#else
  static const int forced = [] {
    const char* env = std::getenv("POLYINFER_GPU_CARVEOUT");
    return env == nullptr || *env == '\0' ? -2 : std::atoi(env);
  }();
  if (forced == -1) return;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    (void)cudaGetLastError();
    return;
  }
  static std::mutex mutex;
  static std::set<std::pair<const void*, int> > done;
  const std::lock_guard<std::mutex> lock(mutex);
  if (!done.emplace(kernel, device).second) return;
  (void)cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                             forced >= 0 ? forced : percent);
  (void)cudaGetLastError();
#endif
}

Status allow_shared_bytes(const void* kernel, int bytes) noexcept {
#if POLYINFER_GPU_HIP
  (void)kernel;
  (void)bytes;
  return Status::kOk;
#else
  if (bytes <= 48 * 1024) return Status::kOk;
  int device = 0;
  POLYINFER_CUDA_TRY(cudaGetDevice(&device));
  static std::mutex mutex;
  static std::map<std::pair<const void*, int>, int> allowed;  // the most set so far
  const std::lock_guard<std::mutex> lock(mutex);
  int& most = allowed[{kernel, device}];
  if (bytes <= most) return Status::kOk;
  POLYINFER_CUDA_TRY(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  most = bytes;
  return Status::kOk;
#endif
}

Status occupancy(const void* kernel, int threads, int shared_bytes, int* blocks) noexcept {
  *blocks = 0;
  int device = 0;
  POLYINFER_CUDA_TRY(cudaGetDevice(&device));
  static std::mutex mutex;
  static std::map<std::tuple<const void*, int, int, int>, int> known;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_tuple(kernel, device, threads, shared_bytes);
  if (const auto found = known.find(key); found != known.end()) {
    *blocks = found->second;
    return Status::kOk;
  }
  // The carveout launch() will ask for (the calculator reads it from the kernel's attributes);
  // set once per kernel and device, so only a first lookup needs it.
  prefer_carveout(kernel, kCarveout);
  int count = 0;
  POLYINFER_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &count, kernel, threads, static_cast<size_t>(shared_bytes)));
  known[key] = count;
  *blocks = count;
  return Status::kOk;
}

DeviceTraits current_device_traits() noexcept {
  DeviceTraits traits;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0) {
    (void)cudaGetLastError();
    return traits;
  }
  // 0: not looked up yet; else multiprocessors · 2 + bulk copies.
  static std::array<std::atomic<int>, 64> known{};
  std::atomic<int>* slot = device < 64 ? &known[static_cast<size_t>(device)] : nullptr;
  int code = slot != nullptr ? slot->load(std::memory_order_relaxed) : 0;
  if (code == 0) {
    int multiprocessors = 1;
    int major = 0;
    if (cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device) !=
        cudaSuccess) {
      multiprocessors = 1;
    }
#if !POLYINFER_GPU_HIP
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
      major = 0;
    }
#endif
    (void)cudaGetLastError();
    code = std::max(multiprocessors, 1) * 2 + (major >= 9 ? 1 : 0);
    if (slot != nullptr) slot->store(code, std::memory_order_relaxed);
  }
  traits.multiprocessors = code / 2;
  traits.bulk_copies = (code & 1) != 0;
  traits.clusters = traits.bulk_copies;  // both come with sm_90
  return traits;
}

int device_count() noexcept {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or no device: not an error for callers
    return 0;
  }
  return count;
}

Status device_info(int ordinal, DeviceInfo* info) noexcept {
  if (info == nullptr) return Status::kInvalidArgument;
  cudaDeviceProp properties = {};
  POLYINFER_CUDA_TRY(cudaGetDeviceProperties(&properties, ordinal));
  int memory_clock_khz = 0;
  int bus_bits = 0;
  POLYINFER_CUDA_TRY(
      cudaDeviceGetAttribute(&memory_clock_khz, cudaDevAttrMemoryClockRate, ordinal));
  POLYINFER_CUDA_TRY(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, ordinal));
  try {
    info->name = properties.name;
  } catch (...) {
    return Status::kOutOfMemory;
  }
  info->ordinal = ordinal;
  info->multiprocessors = properties.multiProcessorCount;
  info->compute_capability = properties.major * 10 + properties.minor;
  info->memory_bytes = properties.totalGlobalMem;
  info->l2_bytes = static_cast<uint64_t>(properties.l2CacheSize);
  info->memory_clock_mhz = memory_clock_khz / 1000.0;
  info->memory_bus_bits = bus_bits;
  return Status::kOk;
}

Status use_device(int ordinal) noexcept {
  return status_of(cudaSetDevice(ordinal));
}

DeviceBuffer::~DeviceBuffer() {
  if (data_ != nullptr) (void)cudaFree(data_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) (void)cudaFree(data_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

Status DeviceBuffer::allocate(uint64_t bytes, DeviceBuffer* out) noexcept {
  if (out == nullptr) return Status::kInvalidArgument;
  void* data = nullptr;
  if (bytes > 0) {
    const cudaError_t error = cudaMalloc(&data, bytes);
    if (error != cudaSuccess) {
      (void)cudaGetLastError();
      return status_of(error);
    }
  }
  DeviceBuffer fresh;
  fresh.data_ = data;
  fresh.bytes_ = bytes;
  *out = std::move(fresh);
  return Status::kOk;
}

DeviceStream::~DeviceStream() {
  if (native_ != nullptr) (void)cudaStreamDestroy(static_cast<cudaStream_t>(native_));
}

DeviceStream::DeviceStream(DeviceStream&& other) noexcept
    : native_(std::exchange(other.native_, nullptr)) {}

DeviceStream& DeviceStream::operator=(DeviceStream&& other) noexcept {
  if (this != &other) {
    if (native_ != nullptr) (void)cudaStreamDestroy(static_cast<cudaStream_t>(native_));
    native_ = std::exchange(other.native_, nullptr);
  }
  return *this;
}

Status DeviceStream::create(DeviceStream* out) noexcept {
  if (out == nullptr) return Status::kInvalidArgument;
  cudaStream_t stream = nullptr;
  POLYINFER_CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  DeviceStream fresh;
  fresh.native_ = stream;
  *out = std::move(fresh);
  return Status::kOk;
}

Status copy_to_device(void* dst, const void* host_src, uint64_t bytes, Stream stream) noexcept {
  if (bytes == 0) return Status::kOk;
  if (dst == nullptr || host_src == nullptr) return Status::kInvalidArgument;
  return status_of(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, native(stream)));
}

Status copy_to_host(void* host_dst, const void* src, uint64_t bytes, Stream stream) noexcept {
  if (bytes == 0) return Status::kOk;
  if (host_dst == nullptr || src == nullptr) return Status::kInvalidArgument;
  POLYINFER_CUDA_TRY(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, native(stream)));
  return status_of(cudaStreamSynchronize(native(stream)));
}

Status copy_on_device(void* dst, const void* src, uint64_t bytes, Stream stream) noexcept {
  if (bytes == 0) return Status::kOk;
  if (dst == nullptr || src == nullptr) return Status::kInvalidArgument;
  return status_of(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, native(stream)));
}

Timeline::~Timeline() {
  for (void* e : events_) (void)cudaEventDestroy(static_cast<cudaEvent_t>(e));
  for (void* e : spare_) (void)cudaEventDestroy(static_cast<cudaEvent_t>(e));
}

Status Timeline::mark(Stream stream) noexcept {
  cudaEvent_t event = nullptr;
  if (!spare_.empty()) {
    event = static_cast<cudaEvent_t>(spare_.back());
    spare_.pop_back();
  } else {
    POLYINFER_CUDA_TRY(cudaEventCreate(&event));
  }
  events_.push_back(event);
  return status_of(cudaEventRecord(event, native(stream)));
}

Status Timeline::intervals(std::vector<float>* out) noexcept {
  if (out == nullptr) return Status::kInvalidArgument;
  out->clear();
  for (size_t i = 1; i < events_.size(); ++i) {
    float ms = 0;
    POLYINFER_CUDA_TRY(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(events_[i - 1]),
                                            static_cast<cudaEvent_t>(events_[i])));
    out->push_back(ms);
  }
  spare_.insert(spare_.end(), events_.begin(), events_.end());
  events_.clear();
  return Status::kOk;
}

Graph::~Graph() {
  if (exec_ != nullptr) (void)cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
}

Graph::Graph(Graph&& other) noexcept : exec_(std::exchange(other.exec_, nullptr)) {}

Graph& Graph::operator=(Graph&& other) noexcept {
  if (this != &other) {
    if (exec_ != nullptr) (void)cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
    exec_ = std::exchange(other.exec_, nullptr);
  }
  return *this;
}

Status Graph::begin_capture(Stream stream) noexcept {
  if (stream.native == nullptr) return Status::kInvalidArgument;  // the legacy stream can't
  return status_of(cudaStreamBeginCapture(native(stream), cudaStreamCaptureModeThreadLocal));
}

Status Graph::end_capture(Stream stream, Graph* out) noexcept {
  if (out == nullptr) return Status::kInvalidArgument;
  *out = Graph();
  cudaGraph_t graph = nullptr;
  POLYINFER_CUDA_TRY(cudaStreamEndCapture(native(stream), &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t error = cudaGraphInstantiate(&exec, graph, 0);
  (void)cudaGraphDestroy(graph);
  POLYINFER_CUDA_TRY(error);
  out->exec_ = exec;
  return Status::kOk;
}

Status Graph::launch(Stream stream) const noexcept {
  if (exec_ == nullptr) return Status::kInvalidArgument;
  return status_of(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), native(stream)));
}

Status fill_bytes(void* dst, int value, uint64_t bytes, Stream stream) noexcept {
  if (bytes == 0) return Status::kOk;
  if (dst == nullptr) return Status::kInvalidArgument;
  return status_of(cudaMemsetAsync(dst, value, bytes, native(stream)));
}

Status synchronize(Stream stream) noexcept {
  return status_of(cudaStreamSynchronize(native(stream)));
}

Context::Impl::~Impl() {
#if POLYINFER_GPU_BLAS
  if (blas != nullptr) (void)cublasDestroy(blas);
#endif
}

Status Context::Impl::reserve(DeviceBuffer& buffer, uint64_t bytes) noexcept {
  if (buffer.bytes() >= bytes) return Status::kOk;
  POLYINFER_CUDA_TRY(cudaStreamSynchronize(native(stream)));
  // Round up so that slowly growing shapes do not reallocate every call.
  uint64_t rounded = uint64_t{1} << 20;
  while (rounded < bytes) rounded *= 2;
  buffer = DeviceBuffer();
  ++generation;
  return DeviceBuffer::allocate(rounded, &buffer);
}

Status Context::Impl::reserve_counters(DeviceBuffer& buffer, uint64_t bytes) noexcept {
  const void* old = buffer.data();
  POLYINFER_GPU_TRY(reserve(buffer, bytes));
  if (buffer.data() == old) return Status::kOk;
  return fill_bytes(buffer.data(), 0, buffer.bytes(), stream);
}

Context::Context(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Context::~Context() = default;

uint64_t Context::scratch_generation() const noexcept {
  return impl_->generation;
}

Stream Context::stream() const noexcept {
  return impl_->stream;
}
int Context::multiprocessors() const noexcept {
  return impl_->multiprocessors;
}

Status Context::create(Stream stream, std::unique_ptr<Context>* out) noexcept {
  if (out == nullptr) return Status::kInvalidArgument;
  if (device_count() == 0) return Status::kNoDevice;
  std::unique_ptr<Impl> impl;
  try {
    impl = std::make_unique<Impl>();
  } catch (...) {
    return Status::kOutOfMemory;
  }
  impl->stream = stream;
  POLYINFER_CUDA_TRY(cudaGetDevice(&impl->device));
  POLYINFER_CUDA_TRY(
      cudaDeviceGetAttribute(&impl->multiprocessors, cudaDevAttrMultiProcessorCount, impl->device));
#if !POLYINFER_GPU_HIP
  POLYINFER_CUDA_TRY(cudaDeviceGetAttribute(&impl->compute_major, cudaDevAttrComputeCapabilityMajor,
                                            impl->device));
#endif
#if POLYINFER_GPU_BLAS
  POLYINFER_GPU_TRY(status_of(cublasCreate(&impl->blas)));
  POLYINFER_GPU_TRY(status_of(cublasSetStream(impl->blas, native(stream))));
#endif
#if !POLYINFER_GPU_HIP
  // A workspace of our own keeps cuBLAS from allocating inside graph captures.
  constexpr uint64_t kBlasWorkspaceBytes = uint64_t{32} << 20;
  POLYINFER_GPU_TRY(DeviceBuffer::allocate(kBlasWorkspaceBytes, &impl->blas_workspace));
  POLYINFER_GPU_TRY(
      status_of(cublasSetWorkspace(impl->blas, impl->blas_workspace.data(), kBlasWorkspaceBytes)));
#endif
  try {
    out->reset(new Context(std::move(impl)));
  } catch (...) {
    return Status::kOutOfMemory;
  }
  return Status::kOk;
}

}  // namespace polyinfer::inline v0::detail::gpu
