// Study state on disk (see study_store.h). Records are written whole, one per line, so an
// interruption can only damage the last line, which a restart drops and recomputes.
#include "eval/study_store.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace cascade {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// NaN is written as null by nlohmann; read it back as NaN.
double num(const json& j, const char* key) {
  const json& v = j.at(key);
  return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
}

json times_json(const PhaseTimes& t) {
  return {{"selection", t.selection}, {"projections", t.projections}, {"attention", t.attention}, {"total", t.total}};
}

PhaseTimes times_from(const json& j) {
  return {num(j, "selection"), num(j, "projections"), num(j, "attention"), num(j, "total")};
}

json read_params_file(const fs::path& f) {
  std::ifstream in(f);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail(f.string(), ": not a study parameter file (", e.what(), "); pass --overwrite to start afresh");
  }
}

// "ctx: 32 there, 64 here; windows: ..." for the keys where a and b differ.
std::string differences(const json& there, const json& here) {
  std::string out;
  for (const auto& [k, v] : here.items()) {
    const json old = there.contains(k) ? there.at(k) : json();
    if (old != v) out += (out.empty() ? "" : "; ") + k + ": " + old.dump() + " there, " + v.dump() + " here";
  }
  for (const auto& [k, v] : there.items())
    if (!here.contains(k)) out += (out.empty() ? "" : "; ") + k + ": " + v.dump() + " there, absent here";
  return out;
}

}  // namespace

json params_json(const StudyParams& p) {
  json j = {{"model", p.model},       {"tokenizer", p.tokenizer},
            {"text", p.text},         {"ctx", p.ctx},
            {"windows", p.windows},   {"seed", p.seed},
            {"tau", p.tau},           {"tau_sweep", p.tau_sweep},
            {"similarity", select::to_string(p.similarity)},
            {"capped_k", p.capped_k}, {"n_tokens", p.n_tokens}};
  // Keys beyond the prefill protocol's on the CPU are written only where they say something, so
  // that a study of the original flags keeps its params.json (and resumes from an earlier one).
  if (p.protocol == StudyProtocol::continuation) {
    j["protocol"] = to_string(p.protocol);
    j["continuation"] = p.continuation;
    j["methods"] = p.methods;
    j["budgets"] = p.budgets;
  }
  if (p.device != "cpu" || !p.dtype.empty()) {
    j["device"] = p.device;
    j["dtype"] = p.dtype;
  }
  if (p.attention_kernel != "auto") j["attention_kernel"] = p.attention_kernel;
  return j;
}

json window_json(const WindowRaw& w) {
  json cs = json::array();
  for (const ConfigRaw& c : w.configs) {
    json ls = json::array();
    for (const LayerRaw& l : c.layers)
      ls.push_back({{"r", l.r},
                    {"added", l.added},
                    {"removed", l.removed},
                    {"needed", l.needed},
                    {"computed", l.computed},
                    {"gram_seconds", l.gram_seconds},
                    {"attention_error", l.attention_error},
                    {"jaccard_vs_full", l.jaccard_vs_full},
                    {"jaccard_next", l.jaccard_next},
                    {"refreshed", l.refreshed}});
    json cj = {{"name", c.name},
               {"nll", c.nll},
               {"top1", c.top1},
               {"kl", c.kl},
               {"flops_kept", c.flops_kept},
               {"times", times_json(c.times)},
               {"layers", ls}};
    if (w.context > 0) {
      cj["kept"] = c.kept;
      cj["seconds_context"] = c.seconds_context;
      cj["seconds_continuation"] = c.seconds_continuation;
    }
    cs.push_back(std::move(cj));
  }
  json wj = {{"index", w.index},       {"begin", w.begin}, {"T", w.T}, {"nll_full", w.nll_full},
             {"exact_times", times_json(w.exact_times)}, {"configs", cs}};
  if (w.context > 0) wj["context"] = w.context;
  return wj;
}

WindowRaw window_from_json(const json& j, const std::string& where) {
  try {
    WindowRaw w;
    w.index = j.at("index").get<int64_t>();
    w.begin = j.at("begin").get<int64_t>();
    w.T = j.at("T").get<int64_t>();
    w.context = j.value("context", int64_t(0));
    w.nll_full = num(j, "nll_full");
    w.exact_times = times_from(j.at("exact_times"));
    for (const json& c : j.at("configs")) {
      ConfigRaw r;
      r.name = c.at("name").get<std::string>();
      r.nll = num(c, "nll");
      r.top1 = num(c, "top1");
      r.kl = num(c, "kl");
      r.flops_kept = num(c, "flops_kept");
      r.times = times_from(c.at("times"));
      if (w.context > 0) {
        for (const json& k : c.at("kept")) r.kept.push_back(k.is_null() ? std::numeric_limits<double>::quiet_NaN() : k.get<double>());
        r.seconds_context = num(c, "seconds_context");
        r.seconds_continuation = num(c, "seconds_continuation");
      }
      for (const json& l : c.at("layers"))
        r.layers.push_back({l.at("r").get<int64_t>(), l.at("added").get<int64_t>(), l.at("removed").get<int64_t>(),
                            l.at("needed").get<int64_t>(), l.at("computed").get<int64_t>(), num(l, "gram_seconds"),
                            num(l, "attention_error"), num(l, "jaccard_vs_full"), num(l, "jaccard_next"),
                            l.at("refreshed").get<bool>()});
      w.configs.push_back(std::move(r));
    }
    return w;
  } catch (const json::exception& e) {
    fail(where, ": not a study window record (", e.what(), ")");
  }
}

StudyStore::StudyStore(const fs::path& out_dir, const StudyParams& p, const std::vector<int64_t>& planned,
                       const std::vector<std::string>& names, bool overwrite)
    : dir_(out_dir) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) fail(dir_.string(), ": cannot create the output folder (", ec.message(), ")");
  const fs::path pf = dir_ / "params.json", lf = dir_ / "windows.jsonl";
  const json here = params_json(p);
  bool resume = false;
  if (fs::exists(pf) && !overwrite) {
    const json there = read_params_file(pf);
    if (there != here)
      fail(dir_.string(), " holds a study with other parameters (", differences(there, here),
           "); choose another --out or pass --overwrite to replace it");
    resume = true;
  }
  if (resume && fs::exists(lf)) {
    std::ifstream in(lf);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) lines.push_back(line);
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::string where = lf.string() + " line " + std::to_string(i + 1);
      json j = json::parse(lines[i], nullptr, false);
      if (j.is_discarded()) {
        if (i + 1 == lines.size()) break;  // cut off by an interruption: recomputed
        fail(where, ": not JSON; pass --overwrite to start afresh");
      }
      WindowRaw w = window_from_json(j, where);
      std::vector<std::string> got;
      for (const auto& c : w.configs) got.push_back(c.name);
      const bool planned_here = std::binary_search(planned.begin(), planned.end(), w.index);
      const bool seen = std::any_of(done_.begin(), done_.end(), [&](const WindowRaw& d) { return d.index == w.index; });
      const int64_t context = p.protocol == StudyProtocol::continuation ? p.ctx - p.continuation : 0;
      if (!planned_here || seen || got != names || w.T != p.ctx || w.context != context)
        fail(where, ": window ", w.index, " does not belong to the study in params.json; pass --overwrite to start afresh");
      done_.push_back(std::move(w));
    }
  }
  // Rewrite what was kept (this drops a damaged last line), then append from there.
  {
    std::ofstream f(pf);
    if (!f) fail(pf.string(), ": cannot open for writing");
    f << here.dump(1) << "\n";
  }
  log_.open(lf, std::ios::trunc);
  if (!log_) fail(lf.string(), ": cannot open for writing");
  for (const WindowRaw& w : done_) log_ << window_json(w).dump() << "\n";
  log_.flush();
}

void StudyStore::append(const WindowRaw& w) {
  log_ << window_json(w).dump() << "\n";
  log_.flush();
  if (!log_) fail((dir_ / "windows.jsonl").string(), ": write failed");
}

}  // namespace cascade
