// SpanBasis (span_basis.h): forward substitution on the packed incremental Cholesky factor.
#include "select/span_basis.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

namespace cascade::select::detail {

double SpanBasis::projection(const double* g) {
  const int64_t r = size();
  y_.assign(g, g + r);
  // l_ is L row by row, packed (row j: its j + 1 entries, the diagonal last): BLAS's packed lower
  // triangle, so the forward substitution is one dtpsv (vectorised; the loop it replaced was one
  // dependent chain of multiply-adds: a third of ada+span's selection time on SmolLM2 at T = 2048).
  if (r > 0) cblas_dtpsv(CblasRowMajor, CblasLower, CblasNoTrans, CblasNonUnit, int(r), l_.data(), y_.data(), 1);
  double sq = 0;
  for (double y : y_) sq += y * y;
  proj_ = sq;
  return sq;
}

void SpanBasis::add(bool zero_row) {
  // The residual's squared norm <z_t, z_t> - ||y||^2; a representative's is above tau^2 > 0 up to
  // rounding, so the clamp only guards a zero row's 0 - 0.
  const double diag = zero_row ? 0.0 : std::sqrt(std::max(0.0, 1.0 - proj_));
  l_.insert(l_.end(), y_.begin(), y_.end());
  // A zero row z_s spans nothing: its inner product with any token is exactly 0, and so is its row of
  // y (every g it met was 0), so a unit diagonal makes the solve give y_s = 0 where a 0 would divide.
  l_.push_back(zero_row ? 1.0 : diag);
  ++n_;
}

bool is_zero_row(const double* z, int64_t d) {
  return std::all_of(z, z + d, [](double v) { return v == 0.0; });
}

}  // namespace cascade::select::detail
