// SPEC 1, the full selection: form the whole causal Gram Z Z^T (lower triangle with the diagonal) and
// scan in token order. The Gram is formed in row panels (a GEMM against the rows before the panel, a
// SYRK for the panel's own triangle) and each panel is scanned as soon as it exists: the same
// T(T+1)/2 inner products as one SYRK, in O(panel * T) memory instead of O(T^2). The span rule reads
// the same row, at the representatives' columns (select/span_basis.h).
#include <cblas.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "select/scan_util.h"
#include "select/span_basis.h"

namespace cascade::select {
namespace {

constexpr int64_t kPanelRows = 512;

// Decides token t (features z_t) from its Gram row g (g[s] = rho(t, s) for s < t) and appends to out.
void decide(int32_t t, const double* g, const double* z_t, int64_t d, Rule rule, double theta, Selection& out,
            detail::SpanBasis& span, std::vector<double>& g_reps) {
  detail::Best best;
  for (int32_t s : out.reps) best.offer(g[s], s);
  double top = best.rho;
  if (rule == Rule::all_earlier && t > 0) top = *std::max_element(g, g + t);  // every earlier token
  if (rule == Rule::span) {
    g_reps.clear();
    for (int32_t s : out.reps) g_reps.push_back(g[s]);
    top = span.projection(g_reps.data());
  }
  const bool is_rep = t == 0 || !detail::reaches(top, theta);
  out.parent[size_t(t)] = is_rep ? t : best.pos;
  if (!is_rep) return;
  out.reps.push_back(t);
  if (rule == Rule::span) span.add(detail::is_zero_row(z_t, d));
}

}  // namespace

Selection run_full(const Features& z, const Options& opts, const Selection* prev) {
  const double theta = opts.theta();
  if (prev) detail::check_prev(z, *prev);
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t T = z.T, d = z.d;
  Selection out;
  out.parent.assign(size_t(T), 0);
  out.trace.full_gram = true;
  std::vector<double> gram(size_t(std::min(T, kPanelRows) * T));  // panel rows, ld = T
  detail::SpanBasis span;
  std::vector<double> g_reps;
  for (int64_t a = 0; a < T; a += kPanelRows) {
    const int64_t rows = std::min(kPanelRows, T - a);
    if (a > 0) {
      // gram[i, s] = <z_{a+i}, z_s> for s < a.
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(a), int(d), 1.0, z.row(a),
                  int(d), z.row(0), int(d), 0.0, gram.data(), int(T));
      out.cost.computed += rows * a;
    }
    // gram[i, a + j] = <z_{a+i}, z_{a+j}> for j <= i.
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, int(rows), int(d), 1.0, z.row(a), int(d), 0.0,
                gram.data() + a, int(T));
    out.cost.computed += rows * (rows + 1) / 2;
    out.cost.needed += (a + (a + rows - 1)) * rows / 2;  // row t uses its t entries s < t
    for (int64_t i = 0; i < rows; ++i)
      decide(int32_t(a + i), gram.data() + i * T, z.row(a + i), d, opts.rule, theta, out, span, g_reps);
  }
  if (prev) detail::fill_diff(prev->reps, out);
  out.cost.seconds = detail::seconds_since(t0);
  return out;
}

}  // namespace cascade::select
