// The study's variants (SPEC 2) and the per-layer dispatch. inherit and random impose a set and only
// re-choose parents, parent(t) = the best earlier member, from the causal cross-Gram against that set.
// random is a control: a uniformly random set of the size the layer below chose, fixed by
// (seed, layer) with a generator and sampler spelled out here so that runs compare across platforms.
#include <algorithm>
#include <chrono>
#include <random>
#include <unordered_set>

#include "core/error.h"
#include "select/scan_util.h"

namespace cascade::select {
namespace {

// Fills out.parent (and out.cost, out.trace) for the imposed set out.reps: members are their own
// parents, any other t takes the best member s < t, read from the causal cross-Gram.
void parents_among(const Features& z, Selection& out) {
  const int64_t T = z.T, r = int64_t(out.reps.size());
  detail::CrossGram cross(z, out.reps, out);
  out.parent.assign(size_t(T), 0);
  int64_t below = 0;  // members at positions < t
  for (int64_t a = 0; a < T; a += detail::CrossGram::kPanelRows) {
    const int64_t b = std::min(T, a + detail::CrossGram::kPanelRows);
    cross.fill(a, b);
    for (int64_t t = a; t < b; ++t) {
      if (below < r && out.reps[size_t(below)] == t) {
        out.parent[size_t(t)] = int32_t(t);
        ++below;
        continue;
      }
      detail::Best best;
      for (int64_t j = 0; j < below; ++j) best.offer(cross.at(t, j), out.reps[size_t(j)]);
      out.parent[size_t(t)] = best.pos;
    }
  }
}

// Uniform in [0, n) from raw 64-bit draws by rejection (std::uniform_int_distribution is
// implementation-defined, so it would tie the control's sets to one standard library).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do v = rng();
  while (v >= limit);
  return v % n;
}

// splitmix64 finaliser: distinct (seed, layer) pairs give unrelated generator states.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

Selection run_inherit(const Features& z, const Selection& prev, const Options& opts) {
  opts.theta();  // validates tau even though nothing is compared with theta
  detail::check_prev(z, prev);
  const auto t0 = std::chrono::steady_clock::now();
  Selection out;
  out.reps = prev.reps;
  parents_among(z, out);
  out.cost.seconds = detail::seconds_since(t0);
  return out;
}

Selection run_random(const Features& z, const Selection& prev, const Options& opts, uint64_t seed,
                     int layer) {
  opts.theta();
  detail::check_prev(z, prev);
  const auto t0 = std::chrono::steady_clock::now();
  // Floyd's sampler: m = r - 1 distinct positions from 1 .. T-1, each subset equally likely.
  std::mt19937_64 rng(mix(seed ^ mix(uint64_t(layer))));
  const uint64_t n = uint64_t(z.T - 1), m = prev.reps.size() - 1;
  std::unordered_set<int32_t> chosen;
  for (uint64_t j = n - m; j < n; ++j) {
    const int32_t pick = int32_t(1 + uniform_below(rng, j + 1));  // in 1 .. j+1
    chosen.insert(chosen.count(pick) ? int32_t(j + 1) : pick);
  }
  Selection out;
  out.reps.assign(chosen.begin(), chosen.end());
  out.reps.push_back(0);
  std::sort(out.reps.begin(), out.reps.end());
  parents_among(z, out);
  detail::fill_diff(prev.reps, out);
  out.cost.seconds = detail::seconds_since(t0);
  return out;
}

Selection run_layer(const Features& z, const Selection* prev, const Options& opts,
                    const ModeSpec& mode, int layer) {
  if (!prev) return run_full(z, opts);
  switch (mode.mode) {
    case Mode::full: return run_full(z, opts, prev);
    case Mode::cascade: return run_cascade(z, *prev, opts);
    case Mode::inherit: return run_inherit(z, *prev, opts);
    case Mode::capped: return run_capped(z, *prev, opts, mode.cap);
    case Mode::random: return run_random(z, *prev, opts, mode.seed, layer);
  }
  fail("unknown selection mode");  // unreachable: every enumerator returns above
}

}  // namespace cascade::select
