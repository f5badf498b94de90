// Rotary position embedding on the GPU: one thread per (token, head, rotated pair). Angles as
// ops::Rotary computes them: float32 angle = float(pos) * inv_freq (the same float32 inverse
// frequencies, scaling included), then cos/sin in double, rounded to float32. CPU twin: ops/rotary.cc.
#include "ops/cuda_common.cuh"
#include "ops/cuda_ops.h"

namespace cascade::ops::gpu {

namespace {

template <typename T, bool kInterleaved>
__global__ void rotary_kernel(const float* inv_freq, T* x, int64_t n, int64_t ld, int64_t heads, int64_t hd,
                              int64_t half, const int64_t* pos) {
  const int64_t total = n * heads * half;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < total; g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = g % half, h = (g / half) % heads, t = g / (half * heads);
    const float ang = float(pos[t]) * inv_freq[i];
    double sd, cd;
    sincos(double(ang), &sd, &cd);
    const float c = float(cd), sn = float(sd);
    T* v = x + t * ld + h * hd;
    const int64_t a = kInterleaved ? 2 * i : i, b = kInterleaved ? 2 * i + 1 : i + half;
    const float xa = to_float(v[a]), xb = to_float(v[b]);
    v[a] = from_float<T>(xa * c - xb * sn);
    v[b] = from_float<T>(xb * c + xa * sn);
  }
}

}  // namespace

void rotary(const RotaryArgs& a, Stream s) {
  const DType t = a.t;
  const RotaryStyle style = a.style;
  const int64_t rotary_dim = a.rotary_dim, n = a.n, ld = a.ld, heads = a.heads, head_dim = a.head_dim;
  const float* inv_freq = a.inv_freq;
  void* x = a.x;
  const int64_t* pos = a.pos;
  if (style == RotaryStyle::None || n == 0) return;
  const int64_t half = rotary_dim / 2, total = n * heads * half;
  const unsigned grid = unsigned(std::min<int64_t>((total + 255) / 256, 65536));
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    if (style == RotaryStyle::Interleaved)
      rotary_kernel<T, true><<<grid, 256, 0, s>>>(inv_freq, static_cast<T*>(x), n, ld, heads, head_dim, half, pos);
    else
      rotary_kernel<T, false><<<grid, 256, 0, s>>>(inv_freq, static_cast<T*>(x), n, ld, heads, head_dim, half, pos);
  });
  CASCADE_CUDA_LAUNCH_CHECK();
}

}  // namespace cascade::ops::gpu
