// metrics.json and per_layer.csv. The summary is pretty-printed; the per-window arrays are written
// compactly (one line per configuration) because a full-text study has thousands of windows and
// one number per line would make the file several times larger for no reader's benefit.
#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/study_report.h"
#include "eval/study_store.h"

namespace cascade {

using nlohmann::json;

namespace {

json ms_json(const MeanStd& m) { return {{"mean", m.mean}, {"std", m.std}, {"n", m.n}}; }

std::ofstream open_out(const std::filesystem::path& file) {
  std::ofstream f(file, std::ios::binary);
  if (!f) fail(file.string(), ": cannot open for writing");
  return f;
}

// CSV cells: integers as integers, other values to 9 significant digits, NaN as empty.
std::string cell(double v) {
  if (!std::isfinite(v)) return "";
  char b[32];
  if (v == std::round(v) && std::fabs(v) < 1e15) std::snprintf(b, sizeof b, "%.0f", v);
  else std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

// The continuation protocol's frontier: the report's table, one entry per configuration.
json frontier_json(const StudySummary& s) {
  json rows = json::array();
  for (const ConfigSummary& c : s.configs) {
    json r = {{"config", c.name}, {"method", c.method}};
    for (const char* k : {"kept_fraction", "ppl_ratio", "kl", "top1", "time_total"}) r[k] = ms_json(c.get(k));
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace

void write_metrics_json(const StudyRun& run, const StudySummary& s, const ArchSpec& a, const StudyInfo& info,
                        const std::filesystem::path& file) {
  const auto& wkeys = window_metric_keys(s.protocol);
  const auto& lkeys = layer_metric_keys(s.protocol);
  const bool cont = s.protocol == StudyProtocol::continuation;
  json configs = json::array();
  for (const ConfigSummary& c : s.configs) {
    json overall = json::object(), layers = json::array();
    for (size_t k = 0; k < wkeys.size(); ++k) overall[wkeys[k]] = ms_json(c.overall[k]);
    for (const auto& l : c.per_layer) {
      json lj = json::object();
      for (size_t k = 0; k < lkeys.size(); ++k) lj[lkeys[k]] = ms_json(l[k]);
      layers.push_back(lj);
    }
    json cj = {{"name", c.name}, {"tau", c.tau}, {"sweep", c.sweep}, {"summary", overall}, {"per_layer", layers}};
    if (cont) {  // NaN (not this kind of method) is written as null
      cj["method"] = c.method;
      cj["budget"] = c.budget;
    }
    configs.push_back(std::move(cj));
  }
  json paper = json::array();
  if (!cont)
    for (const PaperComparison& p : paper_vs_ours(s))
    paper.push_back({{"quantity", p.quantity}, {"metric", p.config + "." + p.key}, {"paper_lo", p.lo}, {"paper_hi", p.hi},
                     {"ours", ms_json(p.ours)}, {"inside_paper_range", p.inside()}});
  json exact = {{"ppl", ms_json(s.ppl_exact)},
                {"time_total", ms_json(s.time_exact_total)},
                {"time_attention", ms_json(s.time_exact_attention)},
                {"time_projections", ms_json(s.time_exact_projections)},
                {"time_rest", ms_json(s.time_exact_rest)}};
  json runj = {{"date", info.date},          {"commit", info.commit},  {"threads", info.threads}, {"windows", s.windows},
               {"windows_resumed", run.resumed}, {"layers", s.layers}, {"architecture", a.describe()},
               {"statistics", "mean and sample standard deviation (n-1) over windows"}};
  if (!run.notes.empty()) runj["notes"] = run.notes;
  // Per window: the index and start of each window, then every window metric per configuration.
  json pw = {{"index", json::array()}, {"begin", json::array()}, {"ppl_exact", json::array()}};
  for (const WindowRaw& w : run.windows) {
    pw["index"].push_back(w.index);
    pw["begin"].push_back(w.begin);
    pw["ppl_exact"].push_back(std::exp(w.nll_full));
  }
  std::ofstream f = open_out(file);
  f << "{\n\"params\": " << params_json(run.params).dump(1) << ",\n\"run\": " << runj.dump(1)
    << ",\n\"exact\": " << exact.dump(1);
  if (cont) f << ",\n\"frontier\": " << frontier_json(s).dump(1);
  else f << ",\n\"paper_vs_ours\": " << paper.dump(1);
  f << ",\n\"configs\": " << configs.dump(1) << ",\n\"per_window\": {\n\"index\": " << pw["index"].dump()
    << ",\n\"begin\": " << pw["begin"].dump() << ",\n\"ppl_exact\": " << pw["ppl_exact"].dump() << ",\n\"configs\": {";
  for (size_t c = 0; c < run.configs.size(); ++c) {  // in configuration order, one line each
    json cols = json::object();
    for (const auto& k : wkeys) cols[k] = json::array();
    for (const WindowRaw& w : run.windows) {
      const auto v = window_metrics(w, c);
      for (size_t k = 0; k < v.size(); ++k) cols[wkeys[k]].push_back(v[k]);
    }
    f << (c ? ",\n" : "\n") << json(run.configs[c].name).dump() << ": " << cols.dump();
  }
  f << "\n}}}\n";
  if (!f) fail(file.string(), ": write failed");
}

void write_per_layer_csv(const StudyRun& run, const std::filesystem::path& file) {
  std::ofstream f = open_out(file);
  f << "config,window,begin,T,layer";
  for (const auto& k : layer_metric_keys(run.params.protocol)) f << "," << k;
  f << "\n";
  for (size_t c = 0; c < run.configs.size(); ++c)
    for (const WindowRaw& w : run.windows)
      for (size_t l = 0; l < w.configs[c].layer_count(); ++l) {
        f << run.configs[c].name << "," << w.index << "," << w.begin << "," << w.T << "," << l;
        for (double v : layer_metrics(w, c, l)) f << "," << cell(v);
        f << "\n";
      }
  if (!f) fail(file.string(), ": write failed");
}

}  // namespace cascade
