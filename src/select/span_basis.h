// The `span` rule's state (SPEC 6): token t is redundant when ||P z_t||^2 >= 1 - tau^2, P the
// orthogonal projection onto span{z_s : s a representative before t}. Internal to the selection
// (full_select.cc, cascade_select.cc, incremental.cc); not part of the public API.
//
// Design: an incremental Cholesky factor L of the representatives' Gram G = Z_S Z_S^T, grown in token
// order, so that a decision needs only g = Z_S z_t, the inner products of t with the representatives
// chosen so far: exactly the columns that the greedy rule reads (a full Gram row, or the exact
// cascade's cross-Gram and spot columns), hence the same full / cascade / incremental scans decide
// both rules. With L y = g, ||P z_t||^2 = ||y||^2; a new representative appends the row
// [y, sqrt(<z_t, z_t> - ||y||^2)]. Each decision costs r^2 / 2 multiply-adds of the triangular solve
// besides the r inner products (not Gram operations, so not in GramCounts). Rows of z are unit or zero
// (normalize()), so <z_t, z_t> is 1, or 0 for a zero row: a zero row projects to 0, is a
// representative (it correlates with nothing, as under greedy), and adds nothing to the span (its row
// of L is zero with a unit diagonal, so the solve gives it 0). Every representative of a positive tau
// has a residual above tau, so L's diagonal is bounded below by tau and the solve stays well
// conditioned; at tau = 0 the bound is sqrt(kRhoSlack).
//
// With one representative s, ||P z_t||^2 = rho(t, s)^2: span decides |rho| >= sqrt(1 - tau^2), not the
// greedy rule's rho >= 1 - tau^2 (the same only at tau = 0), and an anti-correlated token is redundant.
#pragma once
#include <cstdint>
#include <vector>

namespace cascade::select::detail {

class SpanBasis {
 public:
  int64_t size() const { return n_; }
  // g[j] = <z_t, z_{s_j}> for the size() representatives s_0 < s_1 < ... chosen so far; returns
  // ||P z_t||^2 and keeps the solve for add().
  double projection(const double* g);
  // Appends t, the token of the last projection(), as a representative; zero_row: z_t = 0.
  void add(bool zero_row);

 private:
  std::vector<double> l_;  // rows of L packed (BLAS's packed lower triangle): row j holds its j + 1 entries
  int64_t n_ = 0;          // representatives so far
  std::vector<double> y_;     // the last projection's solve
  double proj_ = 0;
};

// True when every entry of z [d] is 0 (a zero row of normalize()).
bool is_zero_row(const double* z, int64_t d);

}  // namespace cascade::select::detail
