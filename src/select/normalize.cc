// Feature normalisation (SPEC notation): z_t = (x_t - mean_t) / ||x_t - mean_t|| for pearson, x_t / ||x_t||
// for cosine, a zero row when that norm is 0. Float64 throughout, and the same row routine for the
// batch and for a decoded token, so a token's z does not depend on how it arrived.
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "select/scan_util.h"

namespace cascade::select {

void normalize_row(const float* x, int64_t d, Similarity similarity, double* z) {
  double mean = 0.0;
  if (similarity == Similarity::pearson) {
    for (int64_t i = 0; i < d; ++i) mean += double(x[i]);
    // A constant row sums exactly in float64 (d * x needs far fewer than 53 bits), so its centred
    // values are exactly 0 and it gets z = 0 rather than amplified rounding noise.
    mean /= double(d);
  }
  double sq = 0.0;
  for (int64_t i = 0; i < d; ++i) {
    z[i] = double(x[i]) - mean;
    sq += z[i] * z[i];
  }
  const double inv = sq > 0.0 ? 1.0 / std::sqrt(sq) : 0.0;
  for (int64_t i = 0; i < d; ++i) z[i] *= inv;
}

Features normalize(const float* x, int64_t T, int64_t d, Similarity similarity) {
  CASCADE_CHECK(T >= 1 && d >= 1, "selection features must be [T, d] with T, d >= 1, got [", T, ", ",
                d, "]");
  const auto t0 = std::chrono::steady_clock::now();
  Features f;
  f.T = T;
  f.d = d;
  f.z.resize(size_t(T * d));
  // Rows are independent and each is computed by the same sequential loop, so threads change nothing.
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t) normalize_row(x + t * d, d, similarity, f.z.data() + t * d);
  f.seconds = detail::seconds_since(t0);
  return f;
}

}  // namespace cascade::select
