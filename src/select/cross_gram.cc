// The causal cross-Gram (SPEC 2 step 1: only the entries row t, column s, t > s), one panel of rows
// at a time: rows a .. b-1 against the columns s < b-1, one GEMM, so the kernels evaluate the causal
// entries plus one small triangle per panel (about kPanelRows * r / 2 in all) instead of the whole
// T x r rectangle, whose entries above the diagonal are about as many as the causal ones. The panel's
// shape (kPanelRows x up to r, inner dimension d) is the full selection's, which BLAS runs well.
#include <cblas.h>

#include <algorithm>

#include "select/scan_util.h"

namespace cascade::select::detail {

CrossGram::CrossGram(const Features& z, const std::vector<int32_t>& cols, Selection& out)
    : z_(z), cols_(cols), out_(out), r_(int64_t(cols.size())), col_rows_(size_t(r_ * z.d)),
      panel_(size_t(std::min(kPanelRows, z.T) * r_)) {
  for (int64_t j = 0; j < r_; ++j)
    std::copy(z.row(cols[size_t(j)]), z.row(cols[size_t(j)]) + z.d, col_rows_.begin() + j * z.d);
  out.trace.cross_columns = cols;
}

void CrossGram::fill(int64_t a, int64_t b) {
  a_ = a;
  // Columns s < b - 1 have a causal row in the panel; cols is sorted.
  const int64_t n = std::lower_bound(cols_.begin(), cols_.end(), int32_t(b - 1)) - cols_.begin();
  const int64_t rows = b - a;
  if (n == 0) return;
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(n), int(z_.d), 1.0, z_.row(a),
              int(z_.d), col_rows_.data(), int(z_.d), 0.0, panel_.data(), int(r_));
  out_.cost.computed += rows * n;
  for (int64_t j = 0; j < n; ++j) out_.cost.needed += b - std::max(a, int64_t(cols_[size_t(j)]) + 1);
  out_.trace.cross_panels.push_back({int32_t(a), int32_t(rows), int32_t(n)});
}

}  // namespace cascade::select::detail
