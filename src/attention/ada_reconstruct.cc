#include "attention/ada_reconstruct.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace cascade {

MixRow lstsq_mix(const double* reps_z, int64_t k, int64_t d, const double* z_t) {
  MixRow m;
  std::fill(m.rep, m.rep + kMixTerms, -1);
  std::fill(m.coef, m.coef + kMixTerms, 0.f);
  if (k <= 0) return m;
  std::vector<double> rho(static_cast<size_t>(k));
  cblas_dgemv(CblasRowMajor, CblasNoTrans, int(k), int(d), 1.0, reps_z, int(d), z_t, 1, 0.0, rho.data(), 1);
  std::vector<int32_t> order(static_cast<size_t>(k));
  std::iota(order.begin(), order.end(), 0);
  const int64_t n = std::min<int64_t>(k, kMixTerms);
  std::partial_sort(order.begin(), order.begin() + n, order.end(), [&](int32_t a, int32_t b) {
    return rho[size_t(a)] != rho[size_t(b)] ? rho[size_t(a)] > rho[size_t(b)] : a < b;
  });

  // Cholesky of G = Z_S Z_S^T column by column in rho order, dropping dependent columns.
  std::vector<int32_t> kept;
  std::vector<double> L;  // kept x kept lower triangle, row-major with stride n
  L.assign(size_t(n * n), 0.0);
  std::vector<double> rhs;  // b of the kept columns
  auto dot = [&](int32_t a, int32_t b) {
    return cblas_ddot(int(d), reps_z + int64_t(a) * d, 1, reps_z + int64_t(b) * d, 1);
  };
  for (int64_t i = 0; i < n; ++i) {
    const int32_t j = order[size_t(i)];
    const size_t r = kept.size();
    const double gjj = dot(j, j);
    double piv = gjj;
    for (size_t a = 0; a < r; ++a) {
      double g = dot(kept[a], j);
      for (size_t b = 0; b < a; ++b) g -= L[a * size_t(n) + b] * L[r * size_t(n) + b];
      L[r * size_t(n) + a] = g / L[a * size_t(n) + a];
      piv -= L[r * size_t(n) + a] * L[r * size_t(n) + a];
    }
    if (!(gjj > 0) || piv <= kRankTol * gjj) {
      std::fill(L.begin() + int64_t(r) * n, L.begin() + int64_t(r + 1) * n, 0.0);
      continue;
    }
    L[r * size_t(n) + r] = std::sqrt(piv);
    kept.push_back(j);
    rhs.push_back(rho[size_t(j)]);
  }
  // L y = b, then L^T c = y.
  const size_t r = kept.size();
  std::vector<double> c(rhs);
  for (size_t a = 0; a < r; ++a) {
    for (size_t b = 0; b < a; ++b) c[a] -= L[a * size_t(n) + b] * c[b];
    c[a] /= L[a * size_t(n) + a];
  }
  for (size_t a = r; a-- > 0;) {
    for (size_t b = a + 1; b < r; ++b) c[a] -= L[b * size_t(n) + a] * c[b];
    c[a] /= L[a * size_t(n) + a];
  }
  for (size_t a = 0; a < r; ++a) {
    m.rep[a] = kept[a];
    m.coef[a] = float(c[a]);
  }
  return m;
}

}  // namespace cascade
