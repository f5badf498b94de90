// A decoding step's projections on the GPU (ops::gpu::linear and linear_glu with one row, bf16) at
// Llama-3-8B's shapes, timed with CUDA events: median of 50 after warm-up, reported as ms and GB/s of
// weights read. BM_projection: one launch alone, the way ncu sees it but with the running clock.
// BM_layer_chain: one layer's four projections (Q|K|V, O, gate and up, down) 32 times in a row, as a
// step issues them between its small kernels: what the step's GEMVs can reach at best (launches back to
// back, no host in between since the time is taken on the device). Compare GB/s with the read bound
// scripts/bench_gpu_decode.py measures on the same GPU. Prints a skip line in a CPU-only build or
// without a GPU.
#include <benchmark/benchmark.h>

#include "benchmark_main.h"
#include "cuda/runtime.h"

#ifdef CASCADE_WITH_CUDA
#include <vector>

#include "cuda_bench_support.h"
#include "cuda/buffer.h"
#include "cuda/context.h"
#include "ops/cuda_ops.h"

namespace {

using namespace cascade;

using bench::median_ms;
using bench::random16;

// Llama-3-8B: model width 4096, Q|K|V 6144, feed-forward 14336, vocabulary 128256.
constexpr int64_t kD = 4096, kQkv = 6144, kFf = 14336, kVocab = 128256;

struct Projection {
  int64_t in, out;
  bool glu;
};

struct Weights {
  cuda::Buffer<uint16_t> w, w2, x, y, scratch;
  Projection p;
  explicit Weights(Projection p_)
      : w(random16(size_t(p_.in * p_.out))),
        w2(p_.glu ? random16(size_t(p_.in * p_.out)) : cuda::Buffer<uint16_t>(1)),
        x(random16(size_t(p_.in))),
        y(size_t(p_.out)),
        scratch(size_t(p_.out)),
        p(p_) {}
  double bytes() const { return double(p.in * p.out) * 2.0 * (p.glu ? 2 : 1); }
  void run() {
    const ops::gpu::LinearArgs a{.t = DType::BF16, .x = x.data(), .ldx = p.in, .n = 1, .w = w.data(), .in = p.in,
                                 .out = p.out, .yt = DType::BF16, .y = y.data(), .ldy = p.out};
    cudaStream_t s = cuda::context().stream;
    if (p.glu) ops::gpu::linear_glu({.gate = a, .up_w = w2.data(), .act = Activation::SiluGlu, .scratch = scratch.data()}, s);
    else ops::gpu::linear(a, s);
  }
};

const Projection kProjections[] = {
    {kD, kQkv, false}, {kD, kD, false}, {kD, kFf, true}, {kFf, kD, false}, {kD, kVocab, false}};

// {projection}: 0 Q|K|V, 1 O, 2 gate and up (GLU), 3 down, 4 the head.
void BM_projection(benchmark::State& state) {
  if (!cuda::gpu_available()) {
    state.SkipWithError("no GPU");
    return;
  }
  // Launches rotate over copies of the weights (copies_past_l2).
  const Projection p = kProjections[state.range(0)];
  const double per_copy = double(p.in * p.out) * 2.0 * (p.glu ? 2 : 1);
  const size_t n = bench::copies_past_l2(per_copy);
  std::vector<Weights> copies;
  copies.reserve(n);
  for (size_t i = 0; i < n; ++i) copies.emplace_back(p);
  size_t next = 0;
  const double med = median_ms(state, [&] { copies[next++ % copies.size()].run(); });
  state.counters["GB/s"] = per_copy / (med * 1e-3) / 1e9;
}

void BM_layer_chain(benchmark::State& state) {
  if (!cuda::gpu_available()) {
    state.SkipWithError("no GPU");
    return;
  }
  constexpr int kLayers = 32;
  // Each layer its own weights, as in a model (the chain's 7 GB do not fit in L2).
  std::vector<Weights> layers;
  layers.reserve(4 * kLayers);
  for (int l = 0; l < kLayers; ++l)
    for (int i = 0; i < 4; ++i) layers.emplace_back(kProjections[i]);
  double bytes = 0;
  for (const Weights& w : layers) bytes += w.bytes();
  const double med = median_ms(state, [&] {
    for (Weights& w : layers) w.run();
  });
  state.counters["GB/s"] = bytes / (med * 1e-3) / 1e9;
}

BENCHMARK(BM_projection)->DenseRange(0, 4)->UseManualTime()->Iterations(50)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_layer_chain)->UseManualTime()->Iterations(20)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) { return cascade::bench::run_benchmarks("linear_cuda_bench", argc, argv); }
#else
int main(int argc, char** argv) {
  return cascade::bench::run_benchmarks("linear_cuda_bench", argc, argv, cascade::cuda::describe_gpu().c_str());
}
#endif
