// Device allocations that survive a full stream-ordered pool. The GPU decoder tells the device's
// default pool to keep what is freed (a new sequence's KV cache then costs no driver call), so memory
// that a finished sequence held stays in the pool: a plain cudaMalloc cannot reach it, and the pool's
// free blocks may be the wrong sizes for a larger request. On out-of-memory both calls wait for the
// device, hand the pool's unused memory back to the driver (cudaMemPoolTrimTo) and try once more, as
// PyTorch's caching allocator empties its cache and retries. A second failure is a cascade::Error that
// says how much was asked and how much the device has free.
#pragma once
#include <cstddef>

#include <cuda_runtime.h>

namespace cascade::cuda {

// cudaMalloc of `bytes` (> 0), retried once after the pool is trimmed.
void* device_malloc(size_t bytes);
// cudaMallocAsync of `bytes` (> 0) on stream s from the default pool, retried once after the pool is
// trimmed; not retried while s is being captured into a graph (waiting for the device would break
// the capture).
void* pool_malloc(size_t bytes, cudaStream_t s);

}  // namespace cascade::cuda
