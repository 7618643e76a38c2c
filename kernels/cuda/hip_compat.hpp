// SPDX-License-Identifier: Apache-2.0
// Thin compatibility layer: the kernels/cuda sources spell the CUDA runtime and cuBLAS names;
// under hipcc (__HIP_PLATFORM_AMD__ / __HIPCC__) this header maps each name they use to HIP.
//
// What HIP cannot do as CUDA does, and what the sources do about it (see docs/gpu.md):
//  - __dp4a (signed 8-bit dot of 4 pairs plus an int): dot4_i8() in cuda_common.cuh calls
//    __builtin_amdgcn_sdot4 where the target has dot instructions (gfx906/908/90a/94x, gfx11
//    through sudot4), else a portable byte loop.
//  - Warps: AMD CDNA waves are 64 lanes. Every warp-level operation goes through helpers that
//    name a width of 32 (shuffles with width 32), so a "warp" is a 32-lane half wave there and
//    the kernels stay correct; blocks are multiples of 64 threads.
//  - Programmatic dependent launch (griddepcontrol, cudaLaunchKernelEx attributes): no HIP
//    equivalent; launches fall back to plain ones and the waits compile to nothing.
//  - cublasSetWorkspace: absent in hipBLAS; graph capture of hipBLAS calls is not promised.
#pragma once

#if defined(__HIP_PLATFORM_AMD__) || defined(__HIPCC__)

#define POLYINFER_GPU_HIP 1

#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>

// BLAS: hipBLAS where installed (ROCm's packages); Debian's HIP 5.2 has none, and then the GEMM
// path runs blas_fallback_gemm (matmul.cu), a plain tiled kernel: correct, not fast.
#if __has_include(<hipblas/hipblas.h>)
#define POLYINFER_GPU_BLAS 1
#ifndef HIPBLAS_V2
#define HIPBLAS_V2  // hipblasGemmEx with hipDataType and hipblasComputeType_t, as cuBLAS 11+
#endif
#include <hipblas/hipblas.h>
#else
#define POLYINFER_GPU_BLAS 0
#endif

// bfloat16: hip_bf16.h from ROCm 5.7; before it, a 16-bit struct with the conversion the
// sources use (round to nearest even, as __float2bfloat16_rn; NaN kept quiet).
#if __has_include(<hip/hip_bf16.h>)
#include <hip/hip_bf16.h>
#else
struct __hip_bfloat16 {
  unsigned short x;
};
__host__ __device__ inline __hip_bfloat16 __float2bfloat16_rn(float value) {
  const unsigned int bits = __float_as_uint(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u)
    return {static_cast<unsigned short>((bits >> 16) | 0x40u)};
  const unsigned int rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);
  return {static_cast<unsigned short>(rounded >> 16)};
}
#endif

// Runtime.
#define cudaError_t hipError_t
#define cudaSuccess hipSuccess
#define cudaErrorMemoryAllocation hipErrorOutOfMemory
#define cudaErrorNoDevice hipErrorNoDevice
#define cudaErrorInsufficientDriver hipErrorInsufficientDriver
#define cudaGetErrorString hipGetErrorString
#define cudaGetLastError hipGetLastError
#define cudaPeekAtLastError hipPeekAtLastError
#define cudaGetDeviceCount hipGetDeviceCount
#define cudaGetDevice hipGetDevice
#define cudaSetDevice hipSetDevice
#define cudaDeviceProp hipDeviceProp_t
#define cudaGetDeviceProperties hipGetDeviceProperties
#define cudaDeviceGetAttribute hipDeviceGetAttribute
#define cudaDevAttrMultiProcessorCount hipDeviceAttributeMultiprocessorCount
#define cudaDevAttrMemoryClockRate hipDeviceAttributeMemoryClockRate
#define cudaDevAttrGlobalMemoryBusWidth hipDeviceAttributeMemoryBusWidth
#define cudaMalloc hipMalloc
#define cudaFree hipFree
#define cudaMemcpyAsync hipMemcpyAsync
#define cudaMemsetAsync hipMemsetAsync
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define cudaStream_t hipStream_t
#define cudaStreamSynchronize hipStreamSynchronize
#define cudaStreamCreateWithFlags hipStreamCreateWithFlags
#define cudaStreamDestroy hipStreamDestroy
#define cudaStreamNonBlocking hipStreamNonBlocking
#define cudaStreamIsCapturing hipStreamIsCapturing
#define cudaStreamCaptureStatus hipStreamCaptureStatus
#define cudaStreamCaptureStatusNone hipStreamCaptureStatusNone
#define cudaEvent_t hipEvent_t
#define cudaEventCreate hipEventCreate
#define cudaEventDestroy hipEventDestroy
#define cudaEventRecord hipEventRecord
#define cudaEventElapsedTime hipEventElapsedTime
#define cudaGraph_t hipGraph_t
#define cudaGraphExec_t hipGraphExec_t
#define cudaStreamBeginCapture hipStreamBeginCapture
#define cudaStreamEndCapture hipStreamEndCapture
#define cudaStreamCaptureModeThreadLocal hipStreamCaptureModeThreadLocal
#define cudaGraphInstantiate hipGraphInstantiateWithFlags  // CUDA 12: (exec, graph, flags)
#define cudaGraphLaunch hipGraphLaunch
#define cudaGraphDestroy hipGraphDestroy
#define cudaGraphExecDestroy hipGraphExecDestroy
#define cudaFuncSetAttribute hipFuncSetAttribute
#define cudaOccupancyMaxActiveBlocksPerMultiprocessor hipOccupancyMaxActiveBlocksPerMultiprocessor
#define cudaFuncAttributeMaxDynamicSharedMemorySize hipFuncAttributeMaxDynamicSharedMemorySize

// Half types.
#define __nv_bfloat16 __hip_bfloat16

#if POLYINFER_GPU_BLAS
// BLAS.
#define cublasHandle_t hipblasHandle_t
#define cublasStatus_t hipblasStatus_t
#define CUBLAS_STATUS_SUCCESS HIPBLAS_STATUS_SUCCESS
#define cublasCreate hipblasCreate
#define cublasDestroy hipblasDestroy
#define cublasSetStream hipblasSetStream
#define cublasGemmEx hipblasGemmEx
#define CUBLAS_OP_N HIPBLAS_OP_N
#define CUBLAS_OP_T HIPBLAS_OP_T
#define CUBLAS_GEMM_DEFAULT HIPBLAS_GEMM_DEFAULT
#define CUBLAS_COMPUTE_32F HIPBLAS_COMPUTE_32F
#define CUDA_R_16F HIP_R_16F
#define CUDA_R_16BF HIP_R_16BF
#define CUDA_R_32F HIP_R_32F
#define cudaDataType_t hipDataType
#else
// Without a BLAS the GEMM path names its operand types itself.
enum cudaDataType_t { CUDA_R_16F, CUDA_R_16BF, CUDA_R_32F };
#endif

#else

#define POLYINFER_GPU_HIP 0
#define POLYINFER_GPU_BLAS 1

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#endif
