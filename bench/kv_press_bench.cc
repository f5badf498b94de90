// The peer KV methods' scoring of one layer's context on the host (press::scores, what a CPU study
// pays per layer and what the GPU study pays for expected-attention, whose scores the host computes
// from the downloaded Q, K, V), at SmolLM2-135M's layer shape: 9 query heads over 3 KV heads of width
// 64, rotary on all 64 dimensions (base 100000), context n = 2048 and 8192. Q, K and V are Gaussian:
// the work does not depend on the values. Budget 0.25.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <random>
#include <vector>

#include "benchmark_main.h"
#include "attention/kv_press_scores.h"
#include "ops/rotary.h"

namespace {

using namespace cascade;

constexpr int64_t kHeads = 9, kKvHeads = 3, kHeadDim = 64;

struct Layer {
  int64_t n;
  std::vector<float> q, k, v;
  ops::Rotary rotary{RotaryStyle::Half, kHeadDim, 100000.0, RopeScaling{}};
};

const Layer& layer(int64_t n) {
  static std::map<int64_t, std::unique_ptr<Layer>> cache;
  auto& slot = cache[n];
  if (!slot) {
    slot = std::make_unique<Layer>();
    slot->n = n;
    std::mt19937_64 rng{uint64_t(n)};
    std::normal_distribution<float> gauss;
    for (auto* x : {&slot->q, &slot->k, &slot->v}) {
      x->resize(size_t(n * (x == &slot->q ? kHeads : kKvHeads) * kHeadDim));
      for (float& e : *x) e = gauss(rng);
    }
  }
  return *slot;
}

void BM_press_scores(benchmark::State& state) {
  const auto m = press::Method(state.range(0));
  const Layer& l = layer(state.range(1));
  const press::Context c{l.n,      kHeads, kKvHeads, kHeadDim, l.q.data(), l.k.data(), 0.125, l.v.data(),
                         &l.rotary};
  const press::Params p;
  const int64_t kept = press::kept_count(0.25, l.n);
  for (auto _ : state) benchmark::DoNotOptimize(press::scores(m, c, kept, p));
  state.SetLabel(press::method_name(m));
}

void methods(benchmark::internal::Benchmark* b) {
  for (int64_t n : {2048, 8192})
    for (int m = 0; m < int(press::method_names().size()); ++m) b->Args({m, n});
}

BENCHMARK(BM_press_scores)->Apply(methods)->Unit(benchmark::kMillisecond)->MinTime(0.5);

}  // namespace

int main(int argc, char** argv) { return cascade::bench::run_benchmarks("kv_press_bench", argc, argv); }
