// LayerNorm / RMSNorm on the GPU, with the residual add fused in front (h += add; y = norm(h)): one
// block per row, statistics in float32 over the row (two passes for LayerNorm: mean, then the
// centred variance, as PyTorch computes it). CPU twin: ops/norm.cc (which accumulates in double).
#include <algorithm>

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

// The same for 16-bit rows whose width is a multiple of 8, with every pointer 16-byte aligned: 8
// elements a load. A decoded token's row is one block's work, so the number of loads in a row, not
// the bandwidth, sets its time (a third of the scalar kernel's at d = 4096).
template <typename T, bool kRms>
__global__ void norm8_kernel(T* h, const T* add, const float* gamma, const float* beta, float eps, int64_t d, T* y) {
  const int64_t row = blockIdx.x, n8 = d / 8;
  uint4* hr = reinterpret_cast<uint4*>(h + row * d);
  const uint4* ar = add ? reinterpret_cast<const uint4*>(add + row * d) : nullptr;
  uint4* yr = reinterpret_cast<uint4*>(y + row * d);
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < n8; j += blockDim.x) {
    uint4 u = hr[j];
    T* v = reinterpret_cast<T*>(&u);
    if (ar) {
      const uint4 a = ar[j];
      const T* av = reinterpret_cast<const T*>(&a);
#pragma unroll
      for (int e = 0; e < 8; ++e) v[e] = from_float<T>(to_float(v[e]) + to_float(av[e]));
      hr[j] = u;
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) s += kRms ? to_float(v[e]) * to_float(v[e]) : to_float(v[e]);
  }
  s = block_sum(s);
  float mean = 0.f, inv;
  if constexpr (kRms) {
    inv = rsqrtf(s / float(d) + eps);
  } else {
    mean = s / float(d);
    float var = 0.f;
    for (int64_t j = threadIdx.x; j < n8; j += blockDim.x) {
      uint4 u = hr[j];
      const T* v = reinterpret_cast<const T*>(&u);
#pragma unroll
      for (int e = 0; e < 8; ++e) var += (to_float(v[e]) - mean) * (to_float(v[e]) - mean);
    }
    var = block_sum(var);
    inv = rsqrtf(var / float(d) + eps);
  }
  const float4* g4 = reinterpret_cast<const float4*>(gamma);
  const float4* b4 = reinterpret_cast<const float4*>(beta);
  for (int64_t j = threadIdx.x; j < n8; j += blockDim.x) {
    uint4 u = hr[j];
    T* v = reinterpret_cast<T*>(&u);
    const float4 ga = g4[2 * j], gb = g4[2 * j + 1];
    const float g[8] = {ga.x, ga.y, ga.z, ga.w, gb.x, gb.y, gb.z, gb.w};
    float b[8] = {};
    if (b4) {
      const float4 ba = b4[2 * j], bb = b4[2 * j + 1];
      const float bv[8] = {ba.x, ba.y, ba.z, ba.w, bb.x, bb.y, bb.z, bb.w};
#pragma unroll
      for (int e = 0; e < 8; ++e) b[e] = bv[e];
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const float x = (to_float(v[e]) - mean) * inv;
      v[e] = from_float<T>(kRms ? g[e] * x : x * g[e] + b[e]);
    }
    yr[j] = u;
  }
}

template <typename T, bool kRms>
void launch_norm(const NormArgs& a, Stream s) {
  T* h = static_cast<T*>(a.h);
  const T* add = static_cast<const T*>(a.add);
  T* y = static_cast<T*>(a.y);
  const float eps = float(a.eps);
  const bool by8 = sizeof(T) == 2 && a.d % 8 == 0 && aligned16(h) && aligned16(y) && (!add || aligned16(add)) &&
                   aligned16(a.gamma) && (!a.beta || aligned16(a.beta));
  if (by8) {
    const int threads = int(std::min<int64_t>(512, (a.d / 8 + 31) / 32 * 32));
    norm8_kernel<T, kRms><<<unsigned(a.n), threads, 0, s>>>(h, add, a.gamma, a.beta, eps, a.d, y);
  } else {
    const int threads = a.d >= 1024 ? 512 : a.d >= 256 ? 256 : 128;
    norm_kernel<T, kRms><<<unsigned(a.n), threads, 0, s>>>(h, add, a.gamma, a.beta, eps, a.d, y);
  }
  CASCADE_CUDA_LAUNCH_CHECK();
}

}  // namespace

void norm(const NormArgs& a, Stream s) {
  if (a.n == 0) return;
  dispatch_dtype(a.t, [&](auto tag) {
    using T = decltype(tag);
    if (a.kind == NormKind::RMSNorm) launch_norm<T, true>(a, s);
    else launch_norm<T, false>(a, s);
  });
}

}  // namespace cascade::ops::gpu
