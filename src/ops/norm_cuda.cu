// LayerNorm / RMSNorm on the GPU, with the residual add fused in front (h += add; y = norm(h)): one
// block per row, statistics in float32 over the row (two passes for LayerNorm: mean, then the
// centred variance, as PyTorch computes it). CPU twin: ops/norm.cc (which accumulates in double).
#include <algorithm>

#include "ops/cuda_common.cuh"
#include "ops/cuda_ops.h"

namespace cascade::ops::gpu {

namespace {

// V consecutive elements of a row, loaded and stored as one piece (V = 8 of a 16-bit type: 16 bytes).
template <typename T, int V>
struct alignas(sizeof(T) * V < 16 ? sizeof(T) * V : 16) Pack {
  T v[V];
};

// h, add, y: [n, d]; one block per row, each thread V elements at a time (V = 8 where launch_norm finds
// 16-bit rows of a width divisible by 8 and every pointer 16-byte aligned: a decoded token's row is one
// block's work, so the number of loads in a row, not the bandwidth, sets its time; a third of V = 1's
// at d = 4096). Each thread touches the same indices in every pass, so the value it wrote back to h in
// pass 1 is the one it reads later (no barrier needed for that).
template <typename T, bool kRms, int V>
__global__ void norm_kernel(T* h, const T* add, const float* gamma, const float* beta, float eps, int64_t d, T* y) {
  using P = Pack<T, V>;
  using F = Pack<float, V>;
  const int64_t row = blockIdx.x, pieces = d / V;
  P* hr = reinterpret_cast<P*>(h + row * d);
  const P* ar = add ? reinterpret_cast<const P*>(add + row * d) : nullptr;
  P* yr = reinterpret_cast<P*>(y + row * d);
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < pieces; j += blockDim.x) {
    P u = hr[j];
    if (ar) {
      const P a = ar[j];
#pragma unroll
      for (int e = 0; e < V; ++e) u.v[e] = from_float<T>(to_float(u.v[e]) + to_float(a.v[e]));
      hr[j] = u;
    }
#pragma unroll
    for (int e = 0; e < V; ++e) {
      const float x = to_float(u.v[e]);
      s += kRms ? x * x : x;
    }
  }
  s = block_sum(s);
  float mean = 0.f, inv;
  if constexpr (kRms) {
    inv = rsqrtf(s / float(d) + eps);
  } else {
    mean = s / float(d);
    float var = 0.f;
    for (int64_t j = threadIdx.x; j < pieces; j += blockDim.x) {
      const P u = hr[j];
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const float c = to_float(u.v[e]) - mean;
        var += c * c;
      }
    }
    var = block_sum(var);
    inv = rsqrtf(var / float(d) + eps);
  }
  const F* g = reinterpret_cast<const F*>(gamma);
  const F* bt = reinterpret_cast<const F*>(beta);
  for (int64_t j = threadIdx.x; j < pieces; j += blockDim.x) {
    P u = hr[j];
    const F gj = g[j];
    const F bj = bt ? bt[j] : F{};
#pragma unroll
    for (int e = 0; e < V; ++e) {
      const float x = (to_float(u.v[e]) - mean) * inv;
      u.v[e] = from_float<T>(kRms ? gj.v[e] * x : x * gj.v[e] + bj.v[e]);
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
    norm_kernel<T, kRms, 8><<<unsigned(a.n), threads, 0, s>>>(h, add, a.gamma, a.beta, eps, a.d, y);
  } else {
    const int threads = a.d >= 1024 ? 512 : a.d >= 256 ? 256 : 128;
    norm_kernel<T, kRms, 1><<<unsigned(a.n), threads, 0, s>>>(h, add, a.gamma, a.beta, eps, a.d, y);
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
