// The study's figures (svg_plot.h): per-layer curves of the main configurations with one-standard-
// deviation error bars over windows, and the quality-cost curve of the tau sweep.
#include <cstdio>

#include "eval/study_report.h"
#include "eval/svg_plot.h"

namespace cascade {

namespace {

// One per-layer series of configuration c: metric key at x = layer + dx (layers where it is defined).
svg::Series layer_series(const ConfigSummary& c, const std::string& key, const std::string& name, double dx = 0) {
  svg::Series s;
  s.name = name;
  for (size_t l = 0; l < c.per_layer.size(); ++l) {
    const MeanStd m = c.layer(l, key);
    if (m.n == 0) continue;
    s.x.push_back(double(l) + dx);
    s.y.push_back(m.mean);
    s.err.push_back(m.std);
  }
  return s;
}

std::string tau_text(double tau) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", tau);
  return b;
}

std::string window_note(const StudySummary& s) {
  return "mean ± std over " + std::to_string(s.windows) + " windows";
}

}  // namespace

std::vector<std::string> write_study_figures(const StudySummary& s, const std::filesystem::path& out_dir) {
  std::vector<const ConfigSummary*> main;
  for (const auto& c : s.configs)
    if (!c.sweep) main.push_back(&c);

  svg::Plot jac;
  jac.title = "Selection overlap by layer (" + window_note(s) + ")";
  jac.xlabel = "layer l (consecutive-layer points at l + 1/2, between l and l+1)";
  jac.ylabel = "Jaccard";
  jac.integer_x = true;
  jac.series.push_back(layer_series(s.config("full"), "jaccard_next", "J(S_l, S_l+1), full", 0.5));
  jac.series.push_back(layer_series(s.config("cascade"), "jaccard_next", "J(S_l, S_l+1), cascade", 0.5));
  for (const ConfigSummary* c : main)
    if (c->name != "full") jac.series.push_back(layer_series(*c, "jaccard_vs_full", "vs full: " + c->name));

  svg::Plot rt;
  rt.title = "Representatives kept by layer (" + window_note(s) + ")";
  rt.xlabel = "layer";
  rt.ylabel = "r_l / T";
  rt.integer_x = true;
  for (const ConfigSummary* c : main) rt.series.push_back(layer_series(*c, "r_over_T", c->name));

  svg::Plot err;
  err.title = "Attention error by layer (" + window_note(s) + ")";
  err.xlabel = "layer";
  err.ylabel = "||O_ada - O_full||_F / ||O_full||_F";
  err.integer_x = true;
  for (const ConfigSummary* c : main) err.series.push_back(layer_series(*c, "attention_error", c->name));

  svg::Plot qc;
  qc.title = "Quality against cost (" + window_note(s) + ")";
  qc.xlabel = "fraction of attention + projection FLOPs kept";
  qc.ylabel = "ppl_ada / ppl_full";
  svg::Series sweep;
  sweep.name = "cascade, tau sweep";
  for (const auto& c : s.configs) {
    if (!c.sweep) continue;
    sweep.x.push_back(c.get("flops_kept").mean);
    sweep.y.push_back(c.get("ppl_ratio").mean);
    sweep.err.push_back(c.get("ppl_ratio").std);
    sweep.labels.push_back("tau=" + tau_text(c.tau));
  }
  if (!sweep.x.empty()) qc.series.push_back(sweep);
  for (const ConfigSummary* c : main) {
    svg::Series p;
    p.name = c->name + " @ tau=" + tau_text(c->tau);
    p.line = false;
    p.x = {c->get("flops_kept").mean};
    p.y = {c->get("ppl_ratio").mean};
    p.err = {c->get("ppl_ratio").std};
    qc.series.push_back(p);
  }

  const std::vector<std::pair<std::string, const svg::Plot*>> figs = {{"jaccard_by_layer.svg", &jac},
                                                                     {"r_over_T_by_layer.svg", &rt},
                                                                     {"attention_error_by_layer.svg", &err},
                                                                     {"quality_cost.svg", &qc}};
  std::vector<std::string> names;
  for (const auto& [name, plot] : figs) {
    svg::write(*plot, out_dir / name);
    names.push_back(name);
  }
  return names;
}

}  // namespace cascade
