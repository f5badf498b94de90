// SpanBasis (span_basis.h): forward substitution on the packed incremental Cholesky factor.
#include "select/span_basis.h"

#include <algorithm>
#include <cmath>

namespace cascade::select::detail {

double SpanBasis::projection(const double* g) {
  const int64_t r = size();
  y_.resize(size_t(r));
  double sq = 0;
  const double* row = l_.data();
  for (int64_t j = 0; j < r; ++j, row += j) {  // row j starts after rows 0..j-1 (j(j+1)/2 entries)
    double y = 0;
    if (diag_[size_t(j)] > 0) {
      double s = g[j];
      for (int64_t k = 0; k < j; ++k) s -= row[k] * y_[size_t(k)];
      y = s / diag_[size_t(j)];
    }
    y_[size_t(j)] = y;
    sq += y * y;
  }
  proj_ = sq;
  return sq;
}

void SpanBasis::add(bool zero_row) {
  // The residual's squared norm <z_t, z_t> - ||y||^2; a representative's is above tau^2 > 0 up to
  // rounding, so the clamp only guards a zero row's 0 - 0.
  const double diag = zero_row ? 0.0 : std::sqrt(std::max(0.0, 1.0 - proj_));
  l_.insert(l_.end(), y_.begin(), y_.end());
  l_.push_back(diag);
  diag_.push_back(diag);
}

bool is_zero_row(const double* z, int64_t d) {
  return std::all_of(z, z + d, [](double v) { return v == 0.0; });
}

}  // namespace cascade::select::detail
