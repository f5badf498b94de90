// ops::gpu::token_nll: one block per row, the row's max in float32 (exact), the sum of exponentials
// in float64 as the CPU twin (ops/token_nll.cc) sums it; only the order of the sum differs.
#include <cfloat>

#include "ops/cuda_common.cuh"
#include "ops/cuda_ops.h"

namespace cascade::ops::gpu {

namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) token_nll_kernel(const float* logits, int64_t vocab, const int32_t* targets,
                                                             double* out) {
  __shared__ float smax[kThreads / 32];
  __shared__ double ssum[kThreads / 32];
  const float* x = logits + int64_t(blockIdx.x) * vocab;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float mx = -FLT_MAX;
  for (int64_t v = threadIdx.x; v < vocab; v += kThreads) mx = fmaxf(mx, x[v]);
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (lane == 0) smax[warp] = mx;
  __syncthreads();
  mx = smax[0];
  for (int w = 1; w < kThreads / 32; ++w) mx = fmaxf(mx, smax[w]);
  double sum = 0;
  for (int64_t v = threadIdx.x; v < vocab; v += kThreads) sum += exp(double(x[v]) - double(mx));
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (lane == 0) ssum[warp] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    sum = 0;
    for (int w = 0; w < kThreads / 32; ++w) sum += ssum[w];
    out[blockIdx.x] = -(double(x[targets[blockIdx.x]]) - double(mx) - log(sum));
  }
}

}  // namespace

void token_nll(const float* logits, int64_t rows, int64_t vocab, const int32_t* targets, double* out, Stream s) {
  if (rows == 0) return;
  token_nll_kernel<<<unsigned(rows), kThreads, 0, s>>>(logits, vocab, targets, out);
  CASCADE_CUDA_LAUNCH_CHECK();
}

}  // namespace cascade::ops::gpu
