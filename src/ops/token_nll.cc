#include "ops/token_nll.h"

#include <algorithm>
#include <cmath>

namespace cascade::ops {

double token_nll(const float* logits, int64_t vocab, int32_t target) {
  double mx = logits[0];
  for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, double(logits[v]));
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(logits[v]) - mx);
  return -(double(logits[target]) - mx - std::log(sum));
}

}  // namespace cascade::ops
