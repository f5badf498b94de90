// Device helpers shared by the CUDA ops: block reductions, 16-byte pieces (the alignment test, widening)
// and the activations; the element types' conversions and switch come from cuda/element.cuh.
// Included by .cu files only.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"
#include "core/error.h"
#include "cuda/check.h"
#include "cuda/element.cuh"
#include "ops/activation.h"

namespace cascade::ops::gpu {

using cuda::dispatch_dtype;  // the element types (cuda/element.cuh)
using cuda::from_float;
using cuda::to_float;

inline unsigned blocks_for(int64_t n, int threads) { return unsigned((n + threads - 1) / threads); }

// A pointer a kernel may read or write in 16-byte pieces (uint4, float4).
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The 8 16-bit values of a 16-byte piece, widened.
template <typename T>
__device__ __forceinline__ void unpack8(const uint4& u, float (&f)[8]) {
  const T* h = reinterpret_cast<const T*>(&u);
#pragma unroll
  for (int e = 0; e < 8; ++e) f[e] = to_float(h[e]);
}

// GELU's tanh approximation (cuBLASLt's GELU epilogue computes the same).
__device__ __forceinline__ float gelu_tanh(float x) {
  const float c = 0.7978845608028654f;
  return 0.5f * x * (1.f + tanhf(c * (x + 0.044715f * x * x * x)));
}

__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.f + erff(x * 0.7071067811865476f)); }
__device__ __forceinline__ float silu(float x) { return x / (1.f + expf(-x)); }

// A GLU activation (Activation::SiluGlu or GeluTanhGlu) of the gate and up projections' values.
__device__ __forceinline__ float glu(Activation a, float gate, float up) {
  return (a == Activation::SiluGlu ? silu(gate) : gelu_tanh(gate)) * up;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float part[32];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // part[] may still be read by a previous call
  if (lane == 0) part[w] = v;
  __syncthreads();
  v = lane < nw ? part[lane] : 0.f;
  return warp_sum(v);
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Maximum over the block (as block_sum); every thread gets the result.
__device__ __forceinline__ float block_max(float v) {
  __shared__ float part[32];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) part[w] = v;
  __syncthreads();
  v = lane < nw ? part[lane] : -INFINITY;
  return warp_max(v);
}

}  // namespace cascade::ops::gpu
