// The GEMV kernel's shapes of block and pieces in flight (ops/gemv_cuda_kernel.cuh) at a decoding step's
// projections (Llama-3-8B's, one bf16 row), timed with CUDA events: median of 50 launches after warm-up
// (cuda_bench_support.h),
// as GB/s of weights read. W warps a block in {4, 8, 16}, U 16-byte pieces a lane in flight in {2, 4, 8};
// the engine runs W = 8, U = 4 (ops/gemv_cuda.cu), so that row also checks bench/linear_cuda_bench's
// figure. Compare with the read bound scripts/bench_gpu_decode.py measures on the same GPU.
#include <benchmark/benchmark.h>

#include "benchmark_main.h"
#include "cuda_bench_support.h"
#include "cuda/buffer.h"
#include "cuda/context.h"
#include "cuda/runtime.h"
#include "ops/gemv_cuda_kernel.cuh"

namespace {

using namespace cascade;
using ops::gpu::gemv_detail::GemvParams;
using Launch = void (*)(const GemvParams&, int64_t, cudaStream_t);

template <bool kGlu, int W, int U>
constexpr Launch launcher() {
  return ops::gpu::gemv_detail::launch_gemv<__nv_bfloat16, __nv_bfloat16, kGlu, W, U>;
}

// [glu][w index][u index]: W 4, 8, 16; U 2, 4, 8.
constexpr int kWs[] = {4, 8, 16}, kUs[] = {2, 4, 8};
template <bool kGlu>
constexpr Launch kLaunch[3][3] = {{launcher<kGlu, 4, 2>(), launcher<kGlu, 4, 4>(), launcher<kGlu, 4, 8>()},
                                  {launcher<kGlu, 8, 2>(), launcher<kGlu, 8, 4>(), launcher<kGlu, 8, 8>()},
                                  {launcher<kGlu, 16, 2>(), launcher<kGlu, 16, 4>(), launcher<kGlu, 16, 8>()}};

struct Projection {
  int64_t in, out;
  bool glu;
};
// Llama-3-8B: Q|K|V, O, gate and up, down, the head.
constexpr Projection kProjections[] = {{4096, 6144, false}, {4096, 4096, false}, {4096, 14336, true},
                                       {14336, 4096, false}, {4096, 128256, false}};

// {projection, W index, U index}.
void BM_gemv(benchmark::State& state) {
  if (!cuda::gpu_available()) {
    state.SkipWithError("no GPU");
    return;
  }
  const Projection pr = kProjections[state.range(0)];
  const int wi = int(state.range(1)), ui = int(state.range(2));
  cudaStream_t s = cuda::context().stream;
  // Weights of one repeated byte (0x3c3c: 0.0115 in bf16); the values do not change a read's pace. Launches
  // rotate over copies of them (copies_past_l2).
  const size_t elems = size_t(pr.in * pr.out);
  const size_t copies = bench::copies_past_l2(double(elems) * 2 * (pr.glu ? 2 : 1));
  cuda::Buffer<uint16_t> w(elems * copies), w2(pr.glu ? elems * copies : 1), x(size_t(pr.in)), y(size_t(pr.out));
  CASCADE_CUDA_CHECK(cudaMemsetAsync(w.data(), 0x3c, w.size() * 2, s));
  CASCADE_CUDA_CHECK(cudaMemsetAsync(w2.data(), 0x3c, w2.size() * 2, s));
  CASCADE_CUDA_CHECK(cudaMemsetAsync(x.data(), 0x3c, x.size() * 2, s));
  GemvParams p{.x = x.data(), .w = w.data(), .bias = nullptr, .y = y.data(), .ldx = pr.in, .in = pr.in, .out = pr.out,
               .ldy = pr.out, .act = ops::gpu::Epilogue::None};
  const Launch run = pr.glu ? kLaunch<true>[wi][ui] : kLaunch<false>[wi][ui];
  size_t next = 0;
  const double med = bench::median_ms(state, [&] {
    const size_t c = next++ % copies;
    p.w = w.data() + c * elems;
    if (pr.glu) p.up_w = w2.data() + c * elems;
    run(p, 1, s);
  });
  const double bytes = double(pr.in * pr.out) * 2.0 * (pr.glu ? 2 : 1);
  state.counters["W"] = kWs[wi];
  state.counters["U"] = kUs[ui];
  state.counters["GB/s"] = bytes / (med * 1e-3) / 1e9;
}

BENCHMARK(BM_gemv)
    ->ArgsProduct({{0, 1, 2, 3, 4}, {0, 1, 2}, {0, 1, 2}})
    ->UseManualTime()
    ->Iterations(50)
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) { return cascade::bench::run_benchmarks("gemv_sweep_cuda_bench", argc, argv); }
