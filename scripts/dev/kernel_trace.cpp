// SPDX-License-Identifier: Apache-2.0
// A CUPTI injection library that records every kernel's GPU start and end (CUDA-graph nodes
// included, programmatic-launch overlaps kept) and writes them as CSV when the program exits,
// for machines with Nsight Compute but no Nsight Systems. scripts/dev/trace_step.py reads the CSV.
//
//   g++ -std=c++20 -O2 -shared -fPIC -I$CUDA/include scripts/dev/kernel_trace.cpp
//       -L$CUDA/lib64 -lcupti -o /tmp/libkernel_trace.so
//   CUDA_INJECTION64_PATH=/tmp/libkernel_trace.so KERNEL_TRACE_OUT=trace.csv program args…
#include <cupti.h>
#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Record {
  uint64_t start;
  uint64_t end;
  std::string name;
};

std::mutex records_mutex;
std::vector<Record>* records = new std::vector<Record>;  // left alive past static destructors

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *size = size_t{16} << 20;
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, *size));
  *max_records = 0;
}

std::string demangled(const char* name) {
  if (name == nullptr) return "?";
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> text(
      abi::__cxa_demangle(name, nullptr, nullptr, &status), &std::free);
  return status == 0 && text ? std::string(text.get()) : std::string(name);
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* record = nullptr;
  {
    const std::lock_guard lock(records_mutex);
    while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
      if (record->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) continue;
      const auto* kernel = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
      records->push_back({kernel->start, kernel->end, demangled(kernel->name)});
    }
  }
  std::free(buffer);
}

void write_records() {
  cuptiActivityFlushAll(1);
  const char* path = std::getenv("KERNEL_TRACE_OUT");
  std::FILE* out = std::fopen(path != nullptr ? path : "kernel_trace.csv", "w");
  if (out == nullptr) return;
  std::fprintf(out, "\"Start (ns)\",\"Duration (ns)\",\"Name\"\n");
  const std::lock_guard lock(records_mutex);
  for (const Record& r : *records) {
    std::string name = r.name;
    for (char& c : name) {
      if (c == '"') c = '\'';
    }
    std::fprintf(out, "%llu,%llu,\"%s\"\n", static_cast<unsigned long long>(r.start),
                 static_cast<unsigned long long>(r.end - r.start), name.c_str());
  }
  std::fclose(out);
}

}  // namespace

extern "C" int InitializeInjection() {
  if (cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS ||
      cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS) {
    std::fprintf(stderr, "kernel_trace: CUPTI activity tracing unavailable\n");
    return 0;
  }
  std::atexit(write_records);
  return 1;
}
