// LayerNorm / RMSNorm on the GPU, with the residual add fused in front (h += add; y = norm(h)): one
// block per row, statistics in float32 over the row (two passes for LayerNorm: mean, then the
// centred variance, as PyTorch computes it). CPU twin: ops/norm.cc (which accumulates in double).
#include "ops/cuda_common.cuh"
#include "ops/cuda_ops.h"

namespace cascade::ops::gpu {

namespace {

// h, add, y: [n, d]; one block per row. Each thread touches the same indices in every pass, so the
// value it wrote back to h in pass 1 is the one it reads later (no barrier needed for that).
template <typename T, bool kRms>
__global__ void norm_kernel(T* h, const T* add, const float* gamma, const float* beta, float eps, int64_t d, T* y) {
  const int64_t row = blockIdx.x;
  T* hr = h + row * d;
  T* yr = y + row * d;
  float s = 0.f;
  if (add) {
    const T* ar = add + row * d;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      const T v = from_float<T>(to_float(hr[j]) + to_float(ar[j]));
      hr[j] = v;
      s += kRms ? to_float(v) * to_float(v) : to_float(v);
    }
  } else {
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      const float v = to_float(hr[j]);
      s += kRms ? v * v : v;
    }
  }
  s = block_sum(s);
  float mean = 0.f, inv;
  if constexpr (kRms) {
    inv = rsqrtf(s / float(d) + eps);
  } else {
    mean = s / float(d);
    float var = 0.f;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      const float c = to_float(hr[j]) - mean;
      var += c * c;
    }
    var = block_sum(var);
    inv = rsqrtf(var / float(d) + eps);
  }
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const float v = (to_float(hr[j]) - mean) * inv;
    yr[j] = from_float<T>(kRms ? gamma[j] * v : v * gamma[j] + (beta ? beta[j] : 0.f));
  }
}

}  // namespace

void norm(const NormArgs& a, Stream s) {
  const DType t = a.t;
  const int64_t n = a.n, d = a.d;
  void *h = a.h, *y = a.y;
  const void* add = a.add;
  const float *gamma = a.gamma, *beta = a.beta;
  const double eps = a.eps;
  const NormKind kind = a.kind;
  if (n == 0) return;
  const int threads = d >= 1024 ? 512 : d >= 256 ? 256 : 128;
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    if (kind == NormKind::RMSNorm)
      norm_kernel<T, true><<<unsigned(n), threads, 0, s>>>(static_cast<T*>(h), static_cast<const T*>(add), gamma, beta,
                                                             float(eps), d, static_cast<T*>(y));
    else
      norm_kernel<T, false><<<unsigned(n), threads, 0, s>>>(static_cast<T*>(h), static_cast<const T*>(add), gamma, beta,
                                                              float(eps), d, static_cast<T*>(y));
  });
  CASCADE_CUDA_LAUNCH_CHECK();
}

}  // namespace cascade::ops::gpu
