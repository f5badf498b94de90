// y = act(x W^T + b) for a decoding step's few rows. Such a step reads each weight once, so its pace is
// the memory's: a warp per output reads W's row (contiguous in the stored [out, in] layout) in 16-byte
// pieces, kUnroll pieces a lane in flight before they are used, streamed past L1 (read once), while the
// rows of x, which every warp reads, stay in L1; float32 sums, a warp reduction, the bias and the
// activation in float32 and one rounding, as cuBLASLt's epilogue. cuBLASLt's kernels for these shapes
// reached 1.5-2.7 TB/s of the H100's 3.0 (BENCHMARKS.md, "Where a step's time goes").
#include "ops/cuda_common.cuh"
#include "ops/gemv_cuda.cuh"

namespace cascade::ops::gpu {

namespace {

constexpr int kWarps = 8, kUnroll = 4;

struct GemvParams {
  const void *x, *w, *bias;
  void* y;
  int64_t ldx, in, out, ldy;
  Epilogue act;
};

template <typename T, typename YT, int NR>
__global__ void __launch_bounds__(32 * kWarps) gemv_kernel(GemvParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t o = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (o >= p.out) return;
  const uint4* w = reinterpret_cast<const uint4*>(static_cast<const T*>(p.w) + o * p.in);
  const T* x = static_cast<const T*>(p.x);
  const int64_t pieces = p.in / 8;
  float acc[NR] = {};
  for (int64_t j0 = lane; j0 < pieces; j0 += 32 * kUnroll) {
    uint4 wv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t j = j0 + 32 * u;
      wv[u] = j < pieces ? __ldcs(w + j) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t j = j0 + 32 * u;
      if (j >= pieces) break;
      float wf[8];
      unpack8<T>(wv[u], wf);
#pragma unroll
      for (int r = 0; r < NR; ++r) {
        float xf[8];
        unpack8<T>(*reinterpret_cast<const uint4*>(x + r * p.ldx + 8 * j), xf);
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[r] += wf[e] * xf[e];
      }
    }
  }
#pragma unroll
  for (int r = 0; r < NR; ++r) acc[r] = warp_sum(acc[r]);
  if (lane != 0) return;
  const float b = p.bias ? to_float(static_cast<const YT*>(p.bias)[o]) : 0.f;
#pragma unroll
  for (int r = 0; r < NR; ++r) {
    float v = acc[r] + b;
    if (p.act == Epilogue::Relu) v = v > 0.f ? v : 0.f;
    else if (p.act == Epilogue::GeluTanh) v = gelu_tanh(v);
    static_cast<YT*>(p.y)[r * p.ldy + o] = from_float<YT>(v);
  }
}

template <typename T, typename YT>
void launch(const GemvParams& p, int64_t n, Stream s) {
  const unsigned blocks = unsigned((p.out + kWarps - 1) / kWarps);
  switch (n) {
    case 1: gemv_kernel<T, YT, 1><<<blocks, 32 * kWarps, 0, s>>>(p); break;
    case 2: gemv_kernel<T, YT, 2><<<blocks, 32 * kWarps, 0, s>>>(p); break;
    case 3: gemv_kernel<T, YT, 3><<<blocks, 32 * kWarps, 0, s>>>(p); break;
    default: gemv_kernel<T, YT, 4><<<blocks, 32 * kWarps, 0, s>>>(p); break;
  }
  CASCADE_CUDA_LAUNCH_CHECK();
}

}  // namespace

bool gemv_fits(const LinearArgs& a) {
  return a.t != DType::F32 && a.n >= 1 && a.n <= kGemvMaxRows && a.in % 8 == 0 && a.ldx % 8 == 0 && aligned16(a.x) &&
         aligned16(a.w);
}

void gemv(const LinearArgs& a, Stream s) {
  const GemvParams p{.x = a.x, .w = a.w, .bias = a.bias, .y = a.y, .ldx = a.ldx, .in = a.in, .out = a.out, .ldy = a.ldy,
                     .act = a.act};
  dispatch_dtype(a.t, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (sizeof(T) == 2) {
      if (a.yt == DType::F32) launch<T, float>(p, a.n, s);
      else launch<T, T>(p, a.n, s);
    }
  });
}

}  // namespace cascade::ops::gpu
