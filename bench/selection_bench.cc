// Selection time of the full selection against the exact cascade for one layer (d = 768, tau = 0.3,
// pearson), at T = 512, 2048, 8192. Both time what a layer pays: normalising X and selecting.
//
// The activations imitate a trained model's: tokens around T/32 cluster centres with noise whose size
// is log-uniform over [0.05, 1] of the centre's, so about a third of the tokens are representatives at
// tau = 0.3; the cascade's layer is the previous one plus noise proportional to each token's own
// (X_{l+1} = X_l + small noise), which moves tokens near the threshold across it in both directions.
// Counters: r/T, additions, removals, the Gram counts, and the cascade's counts as a fraction of the
// full selection's. Iterations are fixed per T so that the whole run stays well under two minutes.
#include <benchmark/benchmark.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "benchmark_main.h"
#include "select/selection.h"

namespace {

using namespace cascade::select;

constexpr int64_t kD = 768;
const Options kOpts{0.30, Similarity::pearson, Rule::greedy};

// One pair of consecutive layers and the lower layer's (full) selection.
struct Layers {
  int64_t T;
  std::vector<float> upper;  // X_{l+1} [T, d]
  Selection below;           // selection of X_l
};

Layers make_layers(int64_t T, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> gauss;
  std::uniform_real_distribution<double> unit;
  const int64_t K = std::max<int64_t>(4, T / 32);
  std::vector<double> centres(static_cast<size_t>(K * kD));
  for (double& v : centres) v = gauss(rng);
  std::vector<float> lower(static_cast<size_t>(T * kD)), upper(lower.size());
  for (int64_t t = 0; t < T; ++t) {
    const int64_t k = int64_t(rng() % uint64_t(K));
    const double sigma = 0.05 * std::pow(20.0, unit(rng));
    for (int64_t i = 0; i < kD; ++i) {
      const size_t at = size_t(t * kD + i);
      lower[at] = float(centres[size_t(k * kD + i)] + sigma * gauss(rng));
      upper[at] = float(lower[at] + 0.15 * sigma * gauss(rng));
    }
  }
  return {T, std::move(upper), run_full(normalize(lower.data(), T, kD, kOpts.similarity), kOpts)};
}

const Layers& layers(int64_t T) {
  static std::map<int64_t, std::unique_ptr<Layers>> cache;
  auto& slot = cache[T];
  if (!slot) slot = std::make_unique<Layers>(make_layers(T, 1234 + uint64_t(T)));
  return *slot;
}

void report(benchmark::State& state, const Selection& s) {
  const double T = double(s.T());
  state.counters["r/T"] = double(s.reps.size()) / T;
  state.counters["added"] = double(s.added.size());
  state.counters["removed"] = double(s.removed.size());
  state.counters["needed"] = double(s.cost.needed);
  state.counters["computed"] = double(s.cost.computed);
  state.counters["needed/full"] = double(s.cost.needed) / (T * (T - 1) / 2);
  state.counters["computed/full"] = double(s.cost.computed) / (T * (T + 1) / 2);
}

void BM_Full(benchmark::State& state) {
  const Layers& L = layers(state.range(0));
  Selection s;
  for (auto _ : state) {
    s = run_full(normalize(L.upper.data(), L.T, kD, kOpts.similarity), kOpts, &L.below);
    benchmark::DoNotOptimize(s.reps.data());
  }
  report(state, s);
}

void BM_Cascade(benchmark::State& state) {
  const Layers& L = layers(state.range(0));
  Selection s;
  for (auto _ : state) {
    s = run_cascade(normalize(L.upper.data(), L.T, kD, kOpts.similarity), L.below, kOpts);
    benchmark::DoNotOptimize(s.reps.data());
  }
  report(state, s);
}

// Fixed iterations per T: the T = 8192 full selection is ~50 GFLOP in float64.
void register_all() {
  for (const auto& [T, iters] : std::vector<std::pair<int64_t, int64_t>>{{512, 30}, {2048, 5}, {8192, 1}}) {
    for (auto [name, fn] : {std::pair{"full", &BM_Full}, std::pair{"cascade", &BM_Cascade}})
      benchmark::RegisterBenchmark(name, fn)
          ->Arg(T)
          ->Iterations(iters)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();  // BLAS runs on several threads
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  return cascade::bench::run_benchmarks("selection_bench", argc, argv);
}
