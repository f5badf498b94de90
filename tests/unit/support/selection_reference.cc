#include "support/selection_reference.h"

#include <algorithm>
#include <cmath>

namespace cascade::test {

namespace {

using LD = long double;

template <typename F>
PlainSelection greedy(const F* x, int64_t T, int64_t d, bool pearson, double tau) {
  std::vector<LD> z(size_t(T * d));
  for (int64_t t = 0; t < T; ++t) {
    LD mean = 0, sq = 0;
    if (pearson) {
      for (int64_t i = 0; i < d; ++i) mean += LD(x[t * d + i]);
      mean /= LD(d);
    }
    for (int64_t i = 0; i < d; ++i) sq += (LD(x[t * d + i]) - mean) * (LD(x[t * d + i]) - mean);
    for (int64_t i = 0; i < d; ++i) z[size_t(t * d + i)] = sq > 0 ? (LD(x[t * d + i]) - mean) / std::sqrt(sq) : 0;
  }
  const LD theta = LD(1) - LD(tau) * LD(tau);
  PlainSelection out;
  out.parent.assign(size_t(T), 0);
  out.reps = {0};
  LD margin = 10;
  for (int64_t t = 1; t < T; ++t) {
    LD best = -10;
    int32_t at = -1;
    for (int32_t s : out.reps) {
      LD rho = 0;
      for (int64_t i = 0; i < d; ++i) rho += z[size_t(t * d + i)] * z[size_t(s * d + i)];
      if (rho > best) best = rho, at = s;
    }
    const LD threshold = theta - LD(1e-10);  // the engine's slack for float64 rounding (select::kRhoSlack)
    margin = std::min(margin, std::fabs(best - threshold));
    if (best >= threshold) {
      out.parent[size_t(t)] = at;
    } else {
      out.parent[size_t(t)] = int32_t(t);
      out.reps.push_back(int32_t(t));
    }
  }
  out.margin = double(margin);
  return out;
}

}  // namespace

PlainSelection plain_greedy(const float* x, int64_t T, int64_t d, bool pearson, double tau) {
  return greedy(x, T, d, pearson, tau);
}
PlainSelection plain_greedy(const double* x, int64_t T, int64_t d, bool pearson, double tau) {
  return greedy(x, T, d, pearson, tau);
}

}  // namespace cascade::test
