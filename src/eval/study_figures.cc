// The study's figures (svg_plot.h): per-layer curves of the main configurations with one-standard-
// deviation error bars over windows, and the quality-cost curve of `cascade` over the tau sweep;
// under the continuation protocol the two frontiers (quality against kept fraction and against time).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "eval/study_report.h"
#include "eval/svg_plot.h"

namespace cascade {

namespace {

// One per-layer series of configuration c: metric key at x = layer + dx (layers where it is defined).
// style: the configuration's index, so that it has one colour and marker in every figure.
svg::Series layer_series(const ConfigSummary& c, const std::string& key, const std::string& name, int style,
                         double dx = 0) {
  svg::Series s;
  s.name = name;
  s.style = style;
  for (size_t l = 0; l < c.per_layer.size(); ++l) {
    const MeanStd m = c.layer(l, key);
    if (m.n == 0) continue;
    s.x.push_back(double(l) + dx);
    s.y.push_back(m.mean);
    s.err.push_back(m.std);
  }
  return s;
}

std::string window_note(const StudySummary& s) {
  return "mean ± std over " + std::to_string(s.windows) + " windows";
}

// The continuation protocol's frontier: ppl ratio against a cost `xkey` of each configuration, one
// series per method item (its points the budgets or taus), on a log axis when the ratios span more
// than a factor of 10.
svg::Plot frontier(const StudySummary& s, const std::string& xkey, double xscale, const std::string& xlabel,
                   const std::string& title) {
  svg::Plot p;
  p.title = title + " (" + window_note(s) + ")";
  p.xlabel = xlabel;
  p.ylabel = "ppl_method / ppl_exact";
  std::vector<std::string> methods;
  for (const auto& c : s.configs)
    if (std::find(methods.begin(), methods.end(), c.method) == methods.end()) methods.push_back(c.method);
  double lo = 1, hi = 1;
  for (size_t k = 0; k < methods.size(); ++k) {
    svg::Series se;
    se.name = methods[k];
    se.style = int(k);
    for (const auto& c : s.configs) {
      if (c.method != methods[k]) continue;
      const MeanStd y = c.get("ppl_ratio");
      se.x.push_back(c.get(xkey).mean * xscale);
      se.y.push_back(y.mean);
      se.err.push_back(y.std);
      const size_t at = c.name.find('@');
      se.labels.push_back(at == std::string::npos ? "" : c.name.substr(at + 1));
      if (std::isfinite(y.mean) && y.mean > 0) lo = std::min(lo, y.mean), hi = std::max(hi, y.mean);
    }
    p.series.push_back(std::move(se));
  }
  p.log_y = hi / lo > 10;
  return p;
}

std::vector<std::string> write_figures(const std::vector<std::pair<std::string, svg::Plot>>& figs,
                                       const std::filesystem::path& out_dir) {
  std::vector<std::string> names;
  for (const auto& [name, plot] : figs) {
    svg::write(plot, out_dir / name);
    names.push_back(name);
  }
  return names;
}

}  // namespace

std::vector<std::string> write_study_figures(const StudySummary& s, const std::filesystem::path& out_dir) {
  if (s.protocol == StudyProtocol::continuation)
    return write_figures({{"frontier_kept.svg", frontier(s, "kept_fraction", 1, "kept fraction of the KV entries after the context",
                                                         "Quality against memory")},
                          {"frontier_time.svg", frontier(s, "time_total", 1e3, "wall time of context + continuation, ms per window",
                                                         "Quality against time")}},
                         out_dir);
  std::vector<std::pair<const ConfigSummary*, int>> main;  // with its style
  for (size_t i = 0; i < s.configs.size(); ++i)
    if (!s.configs[i].sweep) main.emplace_back(&s.configs[i], int(i));
  const int style_next_cascade = int(main.size());  // J(S_l, S_l+1) of cascade: a style of its own

  svg::Plot jac;
  jac.title = "Selection overlap by layer (" + window_note(s) + ")";
  jac.xlabel = "layer l (consecutive-layer points at l + 1/2, between l and l+1)";
  jac.ylabel = "Jaccard";
  jac.integer_x = true;
  for (const auto& [c, style] : main) {
    if (c->name == "full" || c->exact_trajectory)
      jac.series.push_back(layer_series(*c, "jaccard_next", "J(S_l, S_l+1), " + c->name, style, 0.5));
    if (c->name == "cascade")
      jac.series.push_back(layer_series(*c, "jaccard_next", "J(S_l, S_l+1), cascade", style_next_cascade, 0.5));
  }
  for (const auto& [c, style] : main)
    if (c->name != "full" && !c->exact_trajectory)
      jac.series.push_back(layer_series(*c, "jaccard_vs_full", "vs full: " + c->name, style));

  svg::Plot rt;
  rt.title = "Representatives kept by layer (" + window_note(s) + ")";
  rt.xlabel = "layer";
  rt.ylabel = "r_l / T";
  rt.integer_x = true;
  for (const auto& [c, style] : main) rt.series.push_back(layer_series(*c, "r_over_T", c->name, style));

  svg::Plot err;
  err.title = "Attention error by layer (" + window_note(s) + ")";
  err.xlabel = "layer";
  err.ylabel = "||O_ada - O_full||_F / ||O_full||_F";
  err.integer_x = true;
  for (const auto& [c, style] : main)
    if (!c->exact_trajectory) err.series.push_back(layer_series(*c, "attention_error", c->name, style));

  svg::Plot qc;
  // The sweep only: the other configurations (in the report's tables) would stretch the x axis
  // (all-queries keeps most FLOPs) until the sweep's points overprint each other.
  qc.title = "Quality against cost, cascade tau sweep (" + window_note(s) + ")";
  qc.xlabel = "fraction of attention + projection FLOPs kept";
  qc.ylabel = "ppl_ada / ppl_full";
  svg::Series sweep;
  sweep.name = "cascade, tau sweep";
  sweep.style = 1;  // cascade's
  for (const auto& c : s.configs) {
    if (!c.sweep) continue;
    sweep.x.push_back(c.get("flops_kept").mean);
    sweep.y.push_back(c.get("ppl_ratio").mean);
    sweep.err.push_back(c.get("ppl_ratio").std);
    sweep.labels.push_back("tau=" + tau_text(c.tau));
  }
  if (!sweep.x.empty()) qc.series.push_back(sweep);

  return write_figures({{"jaccard_by_layer.svg", jac},
                        {"r_over_T_by_layer.svg", rt},
                        {"attention_error_by_layer.svg", err},
                        {"quality_cost.svg", qc}},
                       out_dir);
}

}  // namespace cascade
