// IncrementalSelector (incremental.h): the decision of run_full for one more token, with the same row
// normalisation, the same threshold test and the same tie order, so decoding token by token reproduces
// the prefill's selection of the same sequence.
#include "select/incremental.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "select/scan_util.h"

namespace cascade::select {

IncrementalSelector::IncrementalSelector(int64_t d, const Options& opts)
    : opts_(opts), theta_(opts.theta()), d_(d), keep_all_(opts.rule == Rule::all_earlier),
      z_(size_t(d)) {
  CASCADE_CHECK(d >= 1, "selection features need d >= 1, got ", d);
}

IncrementalSelector::IncrementalSelector(const Features& z, const Selection& sel, const Options& opts)
    : IncrementalSelector(z.d, opts) {
  CASCADE_CHECK(sel.T() == z.T, "prefill selection covers ", sel.T(), " tokens, features ", z.T);
  reps_ = sel.reps;
  counts_.assign(reps_.size(), 1);
  for (int64_t t = 0; t < z.T; ++t) {
    const int32_t p = sel.parent[size_t(t)];
    const auto it = std::lower_bound(reps_.begin(), reps_.end(), p);
    CASCADE_CHECK(it != reps_.end() && *it == p, "prefill parent ", p, " of token ", t,
                  " is not a representative");
    const int32_t k = int32_t(it - reps_.begin());
    if (p != t) ++counts_[size_t(k)];
    if (p == t || keep_all_) {
      rows_.insert(rows_.end(), z.row(t), z.row(t) + d_);
      row_rep_.push_back(p == t ? k : -1);
    }
  }
  T_ = z.T;
  if (opts.rule != Rule::span) return;
  // The factor of the representatives' Gram, rebuilt in position order from their rows (r^2 d / 2
  // inner products once; keep_all_ is false, so rows_ holds exactly the representatives).
  std::vector<double> g(reps_.size());
  for (size_t j = 0; j < reps_.size(); ++j) {
    const double* zj = rows_.data() + j * size_t(d_);
    if (j > 0)
      cblas_dgemv(CblasRowMajor, CblasNoTrans, int(j), int(d_), 1.0, rows_.data(), int(d_), zj, 1, 0.0, g.data(), 1);
    span_.projection(g.data());
    span_.add(detail::is_zero_row(zj, d_));
  }
}

IncrementalSelector::Scores IncrementalSelector::correlate(const float* x) {
  normalize_row(x, d_, opts_.similarity, z_.data());
  const int64_t n = int64_t(row_rep_.size());
  rho_.resize(size_t(n));
  if (n > 0)
    cblas_dgemv(CblasRowMajor, CblasNoTrans, int(n), int(d_), 1.0, rows_.data(), int(d_), z_.data(), 1,
                0.0, rho_.data(), 1);
  cost_.needed += n;
  cost_.computed += n;
  detail::Best best;  // offered rep indices in position order: the same tie rule as run_full
  double top = -2.0;
  for (int64_t i = 0; i < n; ++i) {
    top = std::max(top, rho_[size_t(i)]);
    if (row_rep_[size_t(i)] >= 0) best.offer(rho_[size_t(i)], row_rep_[size_t(i)]);
  }
  return {best.pos, best.rho, top};
}

IncrementalSelector::Step IncrementalSelector::commit(bool is_rep, int32_t best_rep) {
  const int32_t t = int32_t(T_++);
  if (is_rep) {
    row_rep_.push_back(int32_t(reps_.size()));
    reps_.push_back(t);
    counts_.push_back(1);
  } else {
    ++counts_[size_t(best_rep)];
    if (keep_all_) row_rep_.push_back(-1);
  }
  if (is_rep || keep_all_) rows_.insert(rows_.end(), z_.begin(), z_.end());
  return {is_rep, is_rep ? t : reps_[size_t(best_rep)]};
}

IncrementalSelector::Step IncrementalSelector::step(const float* x) {
  const auto t0 = std::chrono::steady_clock::now();
  const Scores s = correlate(x);
  double top = keep_all_ ? s.top : s.best_rho;
  if (opts_.rule == Rule::span) top = span_.projection(rho_.data());  // rho_ is aligned with reps_
  const Step out = commit(T_ == 0 || !detail::reaches(top, theta_), s.best_rep);
  if (out.is_rep && opts_.rule == Rule::span) span_.add(detail::is_zero_row(z_.data(), d_));
  cost_.seconds += detail::seconds_since(t0);
  return out;
}

IncrementalSelector::Step IncrementalSelector::step_imposed(const float* x, bool is_rep) {
  CASCADE_CHECK(is_rep || T_ > 0, "token 0 is always a representative");
  const auto t0 = std::chrono::steady_clock::now();
  Step out;
  if (is_rep) {  // its own parent: no correlation needed
    normalize_row(x, d_, opts_.similarity, z_.data());
    out = commit(true, -1);
  } else {
    out = commit(false, correlate(x).best_rep);
  }
  cost_.seconds += detail::seconds_since(t0);
  return out;
}

}  // namespace cascade::select
