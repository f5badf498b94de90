// The GEMV kernel's body (ops/gemv_cuda.cu instantiates it; bench/gemv_sweep_cuda_bench.cu times its
// shapes of block and pieces in flight): y = act(x W^T + b) for a decoding step's few rows. Such a step
// reads each weight once, so its pace is the memory's: a warp per output reads W's row (contiguous in the stored [out, in] layout) in 16-byte
// pieces, U pieces a lane in flight before they are used, streamed past L1 (read once), while the
// rows of x, which every warp reads, stay in L1; float32 sums, a warp reduction, the bias and the
// activation in float32 and one rounding, as cuBLASLt's epilogue. cuBLASLt's kernels for these shapes
// reached 1.5-2.7 TB/s of the H100's 3.0 (BENCHMARKS.md, "Where a step's time goes").
// The GLU form (linear_glu) gives each warp output o of both the gate and the up projection: the two
// rows' pieces in flight together, each sum in the order of the plain form, each product rounded to T as
// the plain form writes it, then the activation as activation() computes it: the same values as two
// linears and the activation kernel, one launch and no pass over the [n, out] products instead of three.
#pragma once
#include "ops/cuda_common.cuh"
#include "ops/cuda_ops.h"

namespace cascade::ops::gpu::gemv_detail {

struct GemvParams {
  const void *x, *w, *bias;
  void* y;
  int64_t ldx, in, out, ldy;
  Epilogue act;
  const void *up_w = nullptr, *up_bias = nullptr;  // the GLU form's second projection
  Activation glu_act = Activation::SiluGlu;
};

// Adds row o's pieces [j0, j0 + 32 U) (every 32nd from j0) times the NR rows of x to acc, the loads
// issued before any is used.
template <typename T, int NR, int U>
__device__ __forceinline__ void accumulate(const uint4 (&wv)[U], const T* x, int64_t ldx, int64_t j0, int64_t pieces,
                                           float (&acc)[NR]) {
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int64_t j = j0 + 32 * u;
    if (j >= pieces) break;
    float wf[8];
    unpack8<T>(wv[u], wf);
#pragma unroll
    for (int r = 0; r < NR; ++r) {
      float xf[8];
      unpack8<T>(*reinterpret_cast<const uint4*>(x + r * ldx + 8 * j), xf);
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[r] += wf[e] * xf[e];
    }
  }
}

template <int U>
__device__ __forceinline__ void load_pieces(const uint4* w, int64_t j0, int64_t pieces, uint4 (&wv)[U]) {
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int64_t j = j0 + 32 * u;
    wv[u] = j < pieces ? __ldcs(w + j) : make_uint4(0, 0, 0, 0);
  }
}

// The bias (of dtype YT, or none) and the epilogue on a warp-summed value, in float32.
template <typename YT>
__device__ __forceinline__ float epilogue(float v, const void* bias, int64_t o, Epilogue act) {
  v += bias ? to_float(static_cast<const YT*>(bias)[o]) : 0.f;
  if (act == Epilogue::Relu) v = v > 0.f ? v : 0.f;
  else if (act == Epilogue::GeluTanh) v = gelu_tanh(v);
  return v;
}

// W warps a block, a warp an output; U 16-byte pieces a lane in flight.
template <typename T, typename YT, int NR, bool kGlu, int W, int U>
__global__ void __launch_bounds__(32 * W) gemv_kernel(GemvParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t o = int64_t(blockIdx.x) * W + (threadIdx.x >> 5);
  if (o >= p.out) return;
  const uint4* w = reinterpret_cast<const uint4*>(static_cast<const T*>(p.w) + o * p.in);
  const uint4* w2 = kGlu ? reinterpret_cast<const uint4*>(static_cast<const T*>(p.up_w) + o * p.in) : nullptr;
  const T* x = static_cast<const T*>(p.x);
  const int64_t pieces = p.in / 8;
  float acc[NR] = {}, acc2[NR] = {};
  for (int64_t j0 = lane; j0 < pieces; j0 += 32 * U) {
    uint4 wv[U], wv2[U];
    load_pieces<U>(w, j0, pieces, wv);
    if constexpr (kGlu) load_pieces<U>(w2, j0, pieces, wv2);
    accumulate<T, NR, U>(wv, x, p.ldx, j0, pieces, acc);
    if constexpr (kGlu) accumulate<T, NR, U>(wv2, x, p.ldx, j0, pieces, acc2);
  }
#pragma unroll
  for (int r = 0; r < NR; ++r) {
    acc[r] = warp_sum(acc[r]);
    if constexpr (kGlu) acc2[r] = warp_sum(acc2[r]);
  }
  if (lane != 0) return;
#pragma unroll
  for (int r = 0; r < NR; ++r) {
    const YT v = from_float<YT>(epilogue<YT>(acc[r], p.bias, o, p.act));
    if constexpr (kGlu) {
      const YT up = from_float<YT>(epilogue<YT>(acc2[r], p.up_bias, o, Epilogue::None));
      static_cast<YT*>(p.y)[r * p.ldy + o] = from_float<YT>(glu(p.glu_act, to_float(v), to_float(up)));
    } else {
      static_cast<YT*>(p.y)[r * p.ldy + o] = v;
    }
  }
}

// n rows (1 to 4) of x through gemv_kernel<..., W, U>.
template <typename T, typename YT, bool kGlu, int W, int U>
void launch_gemv(const GemvParams& p, int64_t n, cudaStream_t s) {
  const unsigned blocks = unsigned((p.out + W - 1) / W);
  switch (n) {
    case 1: gemv_kernel<T, YT, 1, kGlu, W, U><<<blocks, 32 * W, 0, s>>>(p); break;
    case 2: gemv_kernel<T, YT, 2, kGlu, W, U><<<blocks, 32 * W, 0, s>>>(p); break;
    case 3: gemv_kernel<T, YT, 3, kGlu, W, U><<<blocks, 32 * W, 0, s>>>(p); break;
    default: gemv_kernel<T, YT, 4, kGlu, W, U><<<blocks, 32 * W, 0, s>>>(p); break;
  }
  CASCADE_CUDA_LAUNCH_CHECK();
}

}  // namespace cascade::ops::gpu::gemv_detail
