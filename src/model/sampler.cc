// Sampling from logits. Logits are checked for NaN first: nothing meaningful can be drawn from them.
#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace cascade {

Sampler::Sampler(SamplingOptions o) : o_(o), rng_(o.seed) {
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature)) fail("--temperature must be >= 0, got ", o.temperature);
  if (o.top_k < 0) fail("--top-k must be >= 0, got ", o.top_k);
  if (!(o.top_p > 0 && o.top_p <= 1)) fail("--top-p must be in (0, 1], got ", o.top_p);
}

int32_t Sampler::next(const float* logits, int64_t vocab) {
  // NaN logits come from NaN or Inf weights; they would also break the sort's ordering (undefined
  // behaviour in std::sort) and the distribution below.
  if (std::any_of(logits, logits + vocab, [](float x) { return std::isnan(x); }))
    fail("the model's logits are NaN; the checkpoint holds NaN or infinite weights");
  if (o_.temperature == 0) return int32_t(std::max_element(logits, logits + vocab) - logits);
  std::vector<int32_t> idx(static_cast<size_t>(vocab));
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  const size_t k = o_.top_k > 0 ? std::min<size_t>(size_t(o_.top_k), idx.size()) : idx.size();
  std::vector<double> p(k);
  for (size_t i = 0; i < k; ++i) p[i] = std::exp((double(logits[idx[i]]) - logits[idx[0]]) / o_.temperature);
  const double total = std::accumulate(p.begin(), p.end(), 0.0);
  size_t keep = k;
  double cum = 0;
  for (size_t i = 0; i < k; ++i) {
    cum += p[i] / total;
    if (cum >= o_.top_p) {
      keep = i + 1;
      break;
    }
  }
  std::discrete_distribution<size_t> pick(p.begin(), p.begin() + long(keep));
  return idx[pick(rng_)];
}

}  // namespace cascade
