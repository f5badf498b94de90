// Study metrics: the formulas are stated in study_metrics.h; this file keeps them in one place so
// that a figure, a table and a CSV column are the same number.
#include "eval/study_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "ops/token_nll.h"

namespace cascade {

namespace {

// log-softmax of one row in double.
void log_softmax(const float* x, int64_t V, std::vector<double>& out) {
  out.resize(size_t(V));
  double mx = x[0];
  for (int64_t v = 1; v < V; ++v) mx = std::max(mx, double(x[v]));
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(double(x[v]) - mx);
  const double lse = mx + std::log(sum);
  for (int64_t v = 0; v < V; ++v) out[size_t(v)] = double(x[v]) - lse;
}

int64_t argmax(const float* x, int64_t V) {
  return std::max_element(x, x + V) - x;  // the first of equal maxima
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  int64_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) s += x, ++n;
  return n ? s / double(n) : kNaN;
}

size_t key_index(const std::vector<std::string>& keys, std::string_view key) {
  const auto it = std::find(keys.begin(), keys.end(), key);
  if (it == keys.end()) fail("unknown study metric '", key, "'");
  return size_t(it - keys.begin());
}

}  // namespace

// Both sums below run their rows in parallel (a study's configurations each score a [M, V] logits
// matrix, V = 49152 for SmolLM2: three exponentials per entry, most of a GPU study's host time when
// serial) and add the per-row values in row order afterwards, so the result is the serial one.
double mean_next_token_nll(const Tensor& logits, std::span<const int32_t> tokens) {
  const int64_t T = int64_t(tokens.size()), V = logits.dim(1);
  std::vector<double> nll(size_t(std::max<int64_t>(0, T - 1)));
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T - 1; ++t) nll[size_t(t)] = ops::token_nll(logits.row(t), V, tokens[size_t(t + 1)]);
  double s = 0;
  for (double x : nll) s += x;
  return s / double(T - 1);
}

Agreement agreement(const Tensor& exact, const Tensor& ada) {
  const int64_t T = exact.dim(0), V = exact.dim(1);
  std::vector<double> kl(size_t(std::max<int64_t>(0, T - 1)));
  std::vector<char> same(kl.size());
#pragma omp parallel
  {
    std::vector<double> lp, lq;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < T - 1; ++t) {
      same[size_t(t)] = argmax(exact.row(t), V) == argmax(ada.row(t), V);
      log_softmax(exact.row(t), V, lp);
      log_softmax(ada.row(t), V, lq);
      double k = 0;
      for (int64_t v = 0; v < V; ++v) k += std::exp(lp[size_t(v)]) * (lp[size_t(v)] - lq[size_t(v)]);
      kl[size_t(t)] = k;
    }
  }
  Agreement a;
  for (size_t t = 0; t < kl.size(); ++t) a.top1 += same[t] ? 1.0 : 0.0, a.kl += kl[t];
  a.top1 /= double(T - 1);
  a.kl /= double(T - 1);
  return a;
}

double projection_flops(int64_t n, const ArchSpec& a) {
  const double d = double(a.d_model), dq = double(a.n_heads * a.head_dim), dkv = double(a.n_kv_heads * a.head_dim);
  return 2.0 * double(n) * d * (dq + 2 * dkv) + 2.0 * double(n) * dq * d;
}

double attention_flops(int64_t n, const ArchSpec& a) {
  return 2.0 * 2.0 * double(a.n_heads * a.head_dim) * double(n) * double(n + 1) / 2.0;
}

double flops_kept(const std::vector<std::vector<int32_t>>& reps_per_layer, int64_t T, AdaQueries q,
                  const ArchSpec& a) {
  double kept = 0;
  for (const auto& reps : reps_per_layer) {
    if (q == AdaQueries::reps) {
      kept += projection_flops(int64_t(reps.size()), a) + attention_flops(int64_t(reps.size()), a);
      continue;
    }
    double keys = 0;  // sum over t of the keys query t sees
    size_t seen = 0;
    for (int64_t t = 0; t < T; ++t) {
      const bool rep = seen < reps.size() && reps[seen] == t;
      if (rep) ++seen;
      keys += double(seen) + (rep ? 0.0 : 1.0);
    }
    kept += projection_flops(T, a) + 2.0 * 2.0 * double(a.n_heads * a.head_dim) * keys;
  }
  const double exact = double(reps_per_layer.size()) * (projection_flops(T, a) + attention_flops(T, a));
  return kept / exact;
}

MeanStd mean_std(const std::vector<double>& v) {
  MeanStd m;
  m.mean = mean_of(v);
  for (double x : v) m.n += std::isfinite(x) ? 1 : 0;
  if (m.n == 0) {
    m.std = kNaN;
    return m;
  }
  double ss = 0;
  for (double x : v)
    if (std::isfinite(x)) ss += (x - m.mean) * (x - m.mean);
  m.std = m.n > 1 ? std::sqrt(ss / double(m.n - 1)) : 0.0;
  return m;
}

const std::vector<std::string>& window_metric_keys(StudyProtocol p) {
  static const std::vector<std::string> continuation = {"kept_fraction", "ppl",        "ppl_ratio",
                                                        "top1",          "kl",         "time_context",
                                                        "time_continuation", "time_total", "time_selection"};
  if (p == StudyProtocol::continuation) return continuation;
  static const std::vector<std::string> k = {
      "r_over_T",         "jaccard_consecutive", "jaccard_vs_full",  "jaccard_vs_full_last",  "added",
      "removed",          "refreshed_layers",    "gram_needed",      "gram_computed",         "gram_needed_savings",
      "gram_computed_savings", "gram_seconds",   "attention_error",  "ppl",                   "ppl_ratio",
      "top1",             "kl",                  "flops_kept",       "time_selection",        "time_projections",
      "time_attention",   "time_rest",           "time_total"};
  return k;
}

std::vector<double> window_metrics(const WindowRaw& w, size_t config) {
  const ConfigRaw& c = w.configs.at(config);
  if (w.context > 0)
    return {mean_of(c.kept),
            std::exp(c.nll),
            std::exp(c.nll - w.nll_full),
            c.top1,
            c.kl,
            c.seconds_context,
            c.seconds_continuation,
            c.seconds_context + c.seconds_continuation,
            c.times.selection};
  const ConfigRaw& full = w.configs.at(0);
  const size_t L = c.layers.size();
  std::vector<double> r_T, jn, jf, add, rem;
  double refreshed = 0, needed = 0, computed = 0, full_needed = 0, full_computed = 0, gsec = 0;
  std::vector<double> err;
  for (size_t l = 0; l < L; ++l) {
    const LayerRaw& x = c.layers[l];
    r_T.push_back(double(x.r) / double(w.T));
    if (l + 1 < L) jn.push_back(x.jaccard_next);
    jf.push_back(x.jaccard_vs_full);
    if (l > 0) add.push_back(double(x.added)), rem.push_back(double(x.removed));
    refreshed += x.refreshed ? 1 : 0;
    needed += double(x.needed);
    computed += double(x.computed);
    full_needed += double(full.layers[l].needed);
    full_computed += double(full.layers[l].computed);
    gsec += x.gram_seconds;
    err.push_back(x.attention_error);
  }
  const PhaseTimes& t = c.times;
  const double ppl = std::exp(c.nll);
  return {mean_of(r_T),
          mean_of(jn),
          mean_of(jf),
          L ? c.layers.back().jaccard_vs_full : kNaN,
          add.empty() ? 0.0 : mean_of(add),
          rem.empty() ? 0.0 : mean_of(rem),
          refreshed,
          needed,
          computed,
          full_needed > 0 ? 1.0 - needed / full_needed : kNaN,
          full_computed > 0 ? 1.0 - computed / full_computed : kNaN,
          gsec,
          mean_of(err),
          ppl,
          std::exp(c.nll - w.nll_full),
          c.top1,
          c.kl,
          c.flops_kept,
          t.selection,
          t.projections,
          t.attention,
          t.total - t.selection - t.projections - t.attention,
          t.total};
}

const std::vector<std::string>& layer_metric_keys(StudyProtocol p) {
  static const std::vector<std::string> continuation = {"kept_fraction"};
  if (p == StudyProtocol::continuation) return continuation;
  static const std::vector<std::string> k = {"r",        "r_over_T",        "added",           "removed",
                                             "needed",   "computed",        "gram_seconds",    "attention_error",
                                             "jaccard_vs_full", "jaccard_next", "refreshed"};
  return k;
}

std::vector<double> layer_metrics(const WindowRaw& w, size_t config, size_t layer) {
  if (w.context > 0) return {w.configs.at(config).kept.at(layer)};
  const LayerRaw& x = w.configs.at(config).layers.at(layer);
  return {double(x.r),
          double(x.r) / double(w.T),
          double(x.added),
          double(x.removed),
          double(x.needed),
          double(x.computed),
          x.gram_seconds,
          x.attention_error,
          x.jaccard_vs_full,
          x.jaccard_next < 0 ? kNaN : x.jaccard_next,
          x.refreshed ? 1.0 : 0.0};
}

MeanStd ConfigSummary::get(std::string_view key) const {
  return overall.at(key_index(window_metric_keys(protocol), key));
}

MeanStd ConfigSummary::layer(size_t l, std::string_view key) const {
  return per_layer.at(l).at(key_index(layer_metric_keys(protocol), key));
}

const ConfigSummary& StudySummary::config(std::string_view name) const {
  for (const auto& c : configs)
    if (c.name == name) return c;
  fail("no study configuration named '", name, "'");
}

StudySummary summarize(const StudyRun& run) {
  StudySummary s;
  s.protocol = run.params.protocol;
  s.windows = int64_t(run.windows.size());
  if (!run.windows.empty()) {
    const ConfigRaw& c0 = run.windows[0].configs.at(0);
    s.layers = int64_t(s.protocol == StudyProtocol::continuation ? c0.kept.size() : c0.layers.size());
  }
  std::vector<double> ppl, tt, ta, tp, tr;
  for (const WindowRaw& w : run.windows) {
    const PhaseTimes& t = w.exact_times;
    ppl.push_back(std::exp(w.nll_full));
    tt.push_back(t.total);
    ta.push_back(t.attention);
    tp.push_back(t.projections);
    tr.push_back(t.total - t.projections - t.attention);
  }
  s.ppl_exact = mean_std(ppl);
  s.time_exact_total = mean_std(tt);
  s.time_exact_attention = mean_std(ta);
  s.time_exact_projections = mean_std(tp);
  s.time_exact_rest = mean_std(tr);
  const size_t nk = window_metric_keys(s.protocol).size(), nl = layer_metric_keys(s.protocol).size();
  for (size_t c = 0; c < run.configs.size(); ++c) {
    const StudyConfig& sc = run.configs[c];
    ConfigSummary cs{sc.name, sc.sweep, sc.exact_trajectory, sc.ada.select.tau, s.protocol, sc.method, sc.budget, {}, {}};
    std::vector<std::vector<double>> cols(nk);
    std::vector<std::vector<std::vector<double>>> lcols(size_t(s.layers), std::vector<std::vector<double>>(nl));
    for (const WindowRaw& w : run.windows) {
      const auto v = window_metrics(w, c);
      for (size_t k = 0; k < nk; ++k) cols[k].push_back(v[k]);
      for (size_t l = 0; l < size_t(s.layers); ++l) {
        const auto lv = layer_metrics(w, c, l);
        for (size_t k = 0; k < nl; ++k) lcols[l][k].push_back(lv[k]);
      }
    }
    for (const auto& col : cols) cs.overall.push_back(mean_std(col));
    for (const auto& layer : lcols) {
      cs.per_layer.emplace_back();
      for (const auto& col : layer) cs.per_layer.back().push_back(mean_std(col));
    }
    s.configs.push_back(std::move(cs));
  }
  return s;
}

}  // namespace cascade
