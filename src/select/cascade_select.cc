// SPEC 2, the exact cascade, and its capped variant. The causal cross-Gram against the layer below's
// representatives (cross_gram.cc), formed panel by panel as the scan reaches it, gives each token's
// correlation with them; the greedy scan decides each t against the representatives chosen so far in
// this scan. A kept representative reads its column from the cross-Gram; an added one (a token not in
// the layer below's set) gets its column on the spot with one GEMV over the rows after it, which is
// all the later scan can ask of it. The decisions use exactly the rule and the tie order of run_full,
// so the set and the parents are the same. The span rule is exact here too: its decision for t needs
// only t's inner products with the representatives chosen before it (select/span_basis.h), the
// values the greedy scan reads.
#include <cblas.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "select/scan_util.h"
#include "select/span_basis.h"

namespace cascade::select {
namespace {

void require_reps_rule(const Options& opts) {
  CASCADE_CHECK(opts.rule != Rule::all_earlier,
                "the cascade needs the greedy or the span rule: under all-earlier a token's decision "
                "depends on its correlation with every earlier token, not only with representatives, "
                "so a cross-Gram against the layer below's representatives cannot decide it (use mode "
                "full with all-earlier)");
}

// The cascade scan; cap < 0 means no cap. Returns false, with out holding the cost so far, as soon as
// an addition would exceed cap.
bool cascade_scan(const Features& z, const Selection& prev, Rule rule, double theta, int64_t cap, Selection& out) {
  const int64_t T = z.T, d = z.d;
  detail::CrossGram cross(z, prev.reps, out);
  std::vector<int32_t> prev_index(size_t(T), -1);  // position -> column of cross, or -1
  for (size_t j = 0; j < prev.reps.size(); ++j) prev_index[size_t(prev.reps[j])] = int32_t(j);
  // Per chosen representative (aligned with out.reps): its cross column, or -1 and a spot column.
  std::vector<int32_t> cross_col;
  std::vector<std::vector<double>> spot;  // spot[k][u - s - 1] = rho(u, s) for u > s = out.reps[k]
  int64_t additions = 0;
  detail::SpanBasis span;
  std::vector<double> g;  // span: rho(t, s) for the representatives s chosen so far, in order
  out.parent.assign(size_t(T), 0);
  for (int64_t a = 0; a < T; a += detail::CrossGram::kPanelRows) {
    const int64_t b = std::min(T, a + detail::CrossGram::kPanelRows);
    cross.fill(a, b);
    for (int64_t t = a; t < b; ++t) {
      detail::Best best;
      g.clear();
      for (size_t k = 0; k < out.reps.size(); ++k) {
        const int32_t s = out.reps[k];
        const double rho = cross_col[k] >= 0 ? cross.at(t, cross_col[k]) : spot[k][size_t(t - s - 1)];
        best.offer(rho, s);
        g.push_back(rho);
      }
      const double top = rule == Rule::span ? span.projection(g.data()) : best.rho;
      if (t > 0 && detail::reaches(top, theta)) {
        out.parent[size_t(t)] = best.pos;
        continue;
      }
      out.parent[size_t(t)] = int32_t(t);
      out.reps.push_back(int32_t(t));
      if (rule == Rule::span) span.add(detail::is_zero_row(z.row(t), d));
      cross_col.push_back(prev_index[size_t(t)]);
      spot.emplace_back();
      if (cross_col.back() >= 0) continue;  // kept from the layer below
      if (cap >= 0 && ++additions > cap) return false;
      const int64_t n = detail::rows_after(T, t);
      spot.back().resize(size_t(n));
      if (n > 0)
        cblas_dgemv(CblasRowMajor, CblasNoTrans, int(n), int(d), 1.0, z.row(t + 1), int(d), z.row(t),
                    1, 0.0, spot.back().data(), 1);
      out.cost.computed += n;
      out.cost.needed += n;
      out.trace.spot_columns.push_back(int32_t(t));
    }
  }
  detail::fill_diff(prev.reps, out);
  return true;
}

}  // namespace

Selection run_cascade(const Features& z, const Selection& prev, const Options& opts) {
  const double theta = opts.theta();
  require_reps_rule(opts);
  detail::check_prev(z, prev);
  const auto t0 = std::chrono::steady_clock::now();
  Selection out;
  cascade_scan(z, prev, opts.rule, theta, -1, out);
  out.cost.seconds = detail::seconds_since(t0);
  return out;
}

Selection run_capped(const Features& z, const Selection& prev, const Options& opts, int64_t cap) {
  const double theta = opts.theta();
  require_reps_rule(opts);
  detail::check_prev(z, prev);
  CASCADE_CHECK(cap >= 0, "the cap of capped:K must be >= 0, got ", cap);
  const auto t0 = std::chrono::steady_clock::now();
  Selection partial;
  if (cascade_scan(z, prev, opts.rule, theta, cap, partial)) {
    partial.cost.seconds = detail::seconds_since(t0);
    return partial;
  }
  // Refresh: the full selection's answer, paying for both the abandoned scan and the full Gram.
  Selection out = run_full(z, opts, &prev);
  out.refreshed = true;
  out.cost += partial.cost;
  out.trace = std::move(partial.trace);  // the columns evaluated before the stop ...
  out.trace.full_gram = true;            // ... and the full selection's Gram
  out.cost.seconds = detail::seconds_since(t0);
  return out;
}

}  // namespace cascade::select
