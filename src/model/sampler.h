// Next-token choice: greedy when temperature is 0, otherwise softmax(logits / T) restricted by top-k
// and then top-p (nucleus), drawn from a seeded generator so that a run is reproducible.
#pragma once
#include <cstdint>
#include <random>

namespace cascade {

struct SamplingOptions {
  double temperature = 0.0;  // 0: greedy
  int64_t top_k = 0;         // 0: no limit
  double top_p = 1.0;        // 1: no limit
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(SamplingOptions o);  // throws cascade::Error on out-of-range options
  int32_t next(const float* logits, int64_t vocab);

 private:
  SamplingOptions o_;
  std::mt19937_64 rng_;
};

}  // namespace cascade
