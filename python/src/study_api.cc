// cascade.study's engine half: the study of src/eval/study.h on a loaded model, set up and run by
// engine/study_driver.h as `cascade study` runs it, returned as Python values (and written to `out`
// as `cascade study --out` writes it, when given).
// run_study's tick hook runs check_signals(), so Ctrl-C stops a study between configurations.
#include <filesystem>

#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "common.h"
#include "core/build_info.h"
#include "core/error.h"
#include "engine/study_driver.h"
#include "eval/study_metrics.h"
#include "eval/study_report.h"
#include "eval/study_store.h"
#include "py_model.h"

namespace cascade::py {

namespace {

namespace fs = std::filesystem;

struct Outcome {
  engine::StudyOutcome study;
  StudySummary summary;
};

nb::dict mean_std_dict(const MeanStd& m) {
  nb::dict d;
  d["mean"] = m.mean;
  d["std"] = m.std;
  d["n"] = m.n;
  return d;
}

// One row per (configuration, window, layer), as per_layer.csv: columns of equal length.
nb::dict per_layer_columns(const StudyRun& run) {
  nb::list config;
  std::vector<double> tau;
  std::vector<int64_t> window, layer;
  const auto& keys = layer_metric_keys(run.params.protocol);
  std::vector<std::vector<double>> values(keys.size());
  for (size_t c = 0; c < run.configs.size(); ++c)
    for (const WindowRaw& w : run.windows)
      for (size_t l = 0; l < w.configs.at(c).layer_count(); ++l) {
        config.append(nb::str(run.configs[c].name.c_str()));
        tau.push_back(run.configs[c].ada.select.tau);
        window.push_back(w.index);
        layer.push_back(int64_t(l));
        const std::vector<double> v = layer_metrics(w, c, l);
        for (size_t k = 0; k < keys.size(); ++k) values[k].push_back(v[k]);
      }
  nb::dict d;
  d["config"] = config;
  d["tau"] = to_numpy(std::move(tau));
  d["window"] = to_numpy(std::move(window));
  d["layer"] = to_numpy(std::move(layer));
  for (size_t k = 0; k < keys.size(); ++k) d[nb::str(keys[k].c_str())] = to_numpy(std::move(values[k]));
  return d;
}

nb::dict to_dict(const Outcome& o, const std::string& out) {
  const StudySummary& s = o.summary;
  const StudyRun& run = o.study.run;
  nb::dict d;
  d["params"] = to_python(params_json(run.params));
  d["windows"] = s.windows;
  d["windows_resumed"] = run.resumed;
  d["layers"] = s.layers;
  nb::dict exact;
  exact["ppl"] = mean_std_dict(s.ppl_exact);
  exact["time_total"] = mean_std_dict(s.time_exact_total);
  exact["time_attention"] = mean_std_dict(s.time_exact_attention);
  exact["time_projections"] = mean_std_dict(s.time_exact_projections);
  exact["time_rest"] = mean_std_dict(s.time_exact_rest);
  d["exact"] = exact;
  const bool cont = s.protocol == StudyProtocol::continuation;
  const auto& keys = window_metric_keys(s.protocol);
  nb::dict configs;
  for (const ConfigSummary& c : s.configs) {
    nb::dict cd;
    cd["tau"] = c.tau;
    cd["sweep"] = c.sweep;
    cd["exact_trajectory"] = c.exact_trajectory;
    if (cont) {
      cd["method"] = c.method;
      cd["budget"] = c.budget;
    }
    for (size_t k = 0; k < keys.size(); ++k) cd[nb::str(keys[k].c_str())] = mean_std_dict(c.overall[k]);
    configs[nb::str(c.name.c_str())] = cd;
  }
  d["configs"] = configs;
  nb::list notes;
  for (const std::string& n : run.notes) notes.append(nb::str(n.c_str()));
  d["notes"] = notes;
  nb::list paper;
  for (const PaperComparison& p : cont ? std::vector<PaperComparison>{} : paper_vs_ours(s)) {
    nb::dict pd;
    pd["quantity"] = p.quantity;
    pd["metric"] = "cascade." + p.key;
    pd["paper_lo"] = p.lo;
    pd["paper_hi"] = p.hi;
    pd["ours"] = mean_std_dict(p.ours);
    pd["inside_paper_range"] = p.inside();
    paper.append(pd);
  }
  d["paper_vs_ours"] = paper;
  d["per_layer"] = per_layer_columns(run);
  if (!out.empty()) {
    nb::list files;
    for (const auto& f : o.study.files) files.append(nb::str((fs::path(out) / f).string().c_str()));
    d["files"] = files;
  }
  return d;
}

nb::dict study(PyModel& pm, const std::string& text, int64_t ctx, int64_t windows, uint64_t seed, double tau,
               const std::vector<double>& tau_sweep, const std::string& similarity, int64_t capped_k,
               const std::string& out, bool overwrite, bool quiet, const std::string& protocol, int64_t continuation,
               const std::vector<std::string>& methods, const std::vector<double>& budgets, const std::string& device,
               const std::string& dtype) {
  engine::StudyRequest r;
  StudyParams& p = r.params;
  p.model = pm.path();
  p.tokenizer = pm.tokenizer_path();
  p.text = text;
  p.ctx = ctx;
  p.windows = windows;
  p.seed = seed;
  p.tau = tau;
  p.tau_sweep = tau_sweep;
  p.capped_k = capped_k;
  r.similarity = similarity;
  r.protocol = protocol;
  r.continuation = continuation;
  r.methods = methods;
  r.budgets = budgets;
  // The study runs where the model was loaded; device and dtype ("": the model's) may only repeat it.
  const engine::AttentionOptions placed = pm.placed({});
  if (!device.empty() && device != placed.device)
    fail("study: device=", device, " but the model was loaded on ", placed.device, "; load it with device=", device);
  if (!dtype.empty() && dtype != placed.dtype)
    fail("study: dtype=", dtype, " but the model was loaded with dtype ", placed.dtype.empty() ? "default" : placed.dtype,
         "; load it with dtype=", dtype);
  p.device = placed.device;
  p.dtype = placed.dtype;
  p.attention_kernel = placed.attention_kernel;
  r.out = out;
  r.overwrite = overwrite;
  r.quiet = quiet;
  engine::PreparedStudy prepared = engine::prepare_study(std::move(r));
  const Tokenizer& tok = pm.tokenizer();
  const Outcome o = run_released([&] {
    engine::StudyOutcome study = engine::run_prepared_study(pm.model(), tok, std::move(prepared), build_commit(), check_signals);
    StudySummary summary = summarize(study.run);
    return Outcome{std::move(study), std::move(summary)};
  });
  return to_dict(o, out);
}

}  // namespace

void bind_study(nb::module_& m) {
  m.def("study", &study, nb::arg("model"), nb::arg("text"), nb::arg("ctx"), nb::arg("windows"), nb::arg("seed"),
        nb::arg("tau"), nb::arg("tau_sweep"), nb::arg("similarity"), nb::arg("capped_k"), nb::arg("out"),
        nb::arg("overwrite"), nb::arg("quiet"), nb::arg("protocol"), nb::arg("continuation"), nb::arg("methods"),
        nb::arg("budgets"), nb::arg("device"), nb::arg("dtype"));
}

}  // namespace cascade::py
