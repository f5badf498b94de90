// cuda/allocate.h: the allocations that retry once after trimming the default pool.
#include <cstdio>

#include "core/error.h"
#include "cuda/allocate.h"
#include "cuda/check.h"

namespace cascade::cuda {

namespace {

std::string mib(size_t bytes) {
  char s[32];
  std::snprintf(s, sizeof s, "%.1f MiB", double(bytes) / double(1 << 20));
  return s;
}

// Waits for the device (a freed block returns to the pool when its stream reaches the free) and hands
// every unused byte of the default pool back to the driver.
void trim_pool() {
  int dev = 0;
  CASCADE_CUDA_CHECK(cudaGetDevice(&dev));
  cudaMemPool_t pool;
  CASCADE_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
  CASCADE_CUDA_CHECK(cudaDeviceSynchronize());
  CASCADE_CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
}

[[noreturn]] void out_of_memory(const char* call, size_t bytes) {
  size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) != cudaSuccess) free = total = 0;
  fail("CUDA: out of GPU memory: ", call, " of ", mib(bytes), " failed with ", mib(free), " free of ", mib(total),
       " (after returning the pool's unused memory to the driver)");
}

}  // namespace

void* device_malloc(size_t bytes) {
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // out of memory is not sticky: clear it before the retry
    trim_pool();
    e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      out_of_memory("cudaMalloc", bytes);
    }
  }
  CASCADE_CUDA_CHECK(e);
  return p;
}

void* pool_malloc(size_t bytes, cudaStream_t s) {
  void* p = nullptr;
  cudaError_t e = cudaMallocAsync(&p, bytes, s);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    CASCADE_CUDA_CHECK(cudaStreamIsCapturing(s, &capture));
    if (capture != cudaStreamCaptureStatusNone) out_of_memory("cudaMallocAsync (in a graph capture)", bytes);
    trim_pool();
    e = cudaMallocAsync(&p, bytes, s);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      out_of_memory("cudaMallocAsync", bytes);
    }
  }
  CASCADE_CUDA_CHECK(e);
  return p;
}

}  // namespace cascade::cuda
