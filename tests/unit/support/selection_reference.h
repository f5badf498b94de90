// SPEC 1's greedy selection stated plainly, for the tests that check which tokens a method chose on
// a layer's features (ada_oracle_test: keys features and dense layers; kv_press_test: ada-kv's kept
// set): rows normalised and correlated in long double by plain loops, the scan in token order. The
// exact cascade returns this set too (SPEC 2), so it is the reference of every greedy mode but
// inherit and random.
#pragma once
#include <cstdint>
#include <vector>

namespace cascade::test {

struct PlainSelection {
  std::vector<int32_t> reps, parent;
  double margin = 0;  // the least |best rho - threshold| over tokens 1..T-1: a decision that close may flip
};

// x [T, d] float32 or float64 features; pearson centres each row (else cosine).
PlainSelection plain_greedy(const float* x, int64_t T, int64_t d, bool pearson, double tau);
PlainSelection plain_greedy(const double* x, int64_t T, int64_t d, bool pearson, double tau);

}  // namespace cascade::test
