// Error checks for CUDA runtime, cuBLAS and cuBLASLt calls: a failure is a cascade::Error naming
// the call and the library's own message (out of memory on a 6B model is a user-facing condition).
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/error.h"

#define CASCADE_CUDA_CHECK(expr)                                                                  \
  do {                                                                                            \
    const cudaError_t cascade_err_ = (expr);                                                      \
    if (cascade_err_ != cudaSuccess)                                                              \
      ::cascade::fail("CUDA: ", #expr, ": ", cudaGetErrorString(cascade_err_), " (", __FILE__, ":", __LINE__, ")"); \
  } while (0)

#define CASCADE_CUBLAS_CHECK(expr)                                                                \
  do {                                                                                            \
    const cublasStatus_t cascade_st_ = (expr);                                                    \
    if (cascade_st_ != CUBLAS_STATUS_SUCCESS)                                                     \
      ::cascade::fail("cuBLAS: ", #expr, ": ", cublasGetStatusString(cascade_st_), " (", __FILE__, ":", __LINE__, ")"); \
  } while (0)

// After a kernel launch: reports a bad launch configuration at the launch site.
#define CASCADE_CUDA_LAUNCH_CHECK() CASCADE_CUDA_CHECK(cudaGetLastError())
