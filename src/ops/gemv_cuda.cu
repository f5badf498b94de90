// The linear op's path for a decoding step's few 16-bit rows and the GLU feed-forward's
// (ops/gemv_cuda.cuh): the body in ops/gemv_cuda_kernel.cuh, here its shape and the dispatch.
#include "ops/gemv_cuda.cuh"
#include "ops/gemv_cuda_kernel.cuh"

namespace cascade::ops::gpu {

namespace {

using gemv_detail::GemvParams;

// 8 warps a block, 4 pieces a lane in flight (64 bytes).
constexpr int kWarps = 8, kUnroll = 4;

template <typename T, typename YT, bool kGlu>
void launch(const GemvParams& p, int64_t n, Stream s) {
  gemv_detail::launch_gemv<T, YT, kGlu, kWarps, kUnroll>(p, n, s);
}

GemvParams params_of(const LinearArgs& a) {
  return {.x = a.x, .w = a.w, .bias = a.bias, .y = a.y, .ldx = a.ldx, .in = a.in, .out = a.out, .ldy = a.ldy, .act = a.act};
}

}  // namespace

bool gemv_fits(const LinearArgs& a) {
  return a.t != DType::F32 && a.n >= 1 && a.n <= kGemvMaxRows && a.in % 8 == 0 && a.ldx % 8 == 0 && aligned16(a.x) &&
         aligned16(a.w);
}

void gemv(const LinearArgs& a, Stream s) {
  const GemvParams p = params_of(a);
  dispatch_dtype(a.t, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (sizeof(T) == 2) {
      if (a.yt == DType::F32) launch<T, float, false>(p, a.n, s);
      else launch<T, T, false>(p, a.n, s);
    }
  });
}

bool gemv_glu_fits(const GluArgs& a) {
  return gemv_fits(a.gate) && a.gate.yt == a.gate.t && a.gate.act == Epilogue::None && aligned16(a.up_w);
}

void gemv_glu(const GluArgs& a, Stream s) {
  GemvParams p = params_of(a.gate);
  p.up_w = a.up_w;
  p.up_bias = a.up_bias;
  p.glu_act = a.act;
  dispatch_dtype(a.gate.t, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (sizeof(T) == 2) launch<T, T, true>(p, a.gate.n, s);
  });
}

}  // namespace cascade::ops::gpu
