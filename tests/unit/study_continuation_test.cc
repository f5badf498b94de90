// The continuation protocol of the study (SPEC 8, eval/study_continuation.cc) and its method list
// (engine/study_methods.h) on the llama fixture and tests/data/text: exact attention against itself
// and a KV method at budget 1 give the exact figures; a method's figures equal an independent
// computation through Model (its own context and continuation forwards, NLL, KL and top-1 from the
// logits in this file); the method list names its configurations and refuses bad items; a resumed
// study equals an uninterrupted one; the CLI writes the frontier report.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "attention/ada_attention.h"
#include "attention/kv_press.h"
#include "core/error.h"
#include "engine/study_methods.h"
#include "eval/study.h"
#include "eval/study_metrics.h"
#include "eval/study_report.h"
#include "eval/svg_plot.h"
#include "model/model_tokenizer.h"
#include "support/cli_runner.h"
#include "support/test_paths.h"

namespace cascade {
namespace {

namespace fs = std::filesystem;
using test::data_dir;
using test::run_cli;

fs::path scratch(const std::string& name) { return test::scratch_path("cascade_study_continuation_test", name); }

std::string model_dir() { return test::fixture_model("llama"); }

std::string read(const fs::path& p) { return test::read_file(p); }

// T = 96, M = 16: a context of 80, longer than snapkv's observation window of 64.
StudyParams params(std::vector<std::string> methods, std::vector<double> budgets, int64_t windows, int64_t n_tokens) {
  StudyParams p;
  p.model = model_dir();
  p.text = test::sample_text();
  p.ctx = 96;
  p.windows = windows;
  p.seed = 5;
  p.protocol = StudyProtocol::continuation;
  p.continuation = 16;
  p.methods = std::move(methods);
  p.budgets = std::move(budgets);
  p.n_tokens = n_tokens;
  return p;
}

class Continuation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = Model::load(model_dir()).release();
    const auto tok = model_tokenizer(*model_, model_dir(), "");
    ids_ = new std::vector<int32_t>(tok->encode(read(test::sample_text()), true));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete ids_;
  }
  static StudyParams make(std::vector<std::string> methods, std::vector<double> budgets = {0.25}, int64_t windows = 2) {
    return params(std::move(methods), std::move(budgets), windows, int64_t(ids_->size()));
  }
  static StudyRun run(const StudyParams& p, const fs::path& out = {}) {
    return run_study(*model_, *ids_, p, engine::continuation_configs(p), out, false, true);
  }
  static Model* model_;
  static std::vector<int32_t>* ids_;
};

Model* Continuation::model_ = nullptr;
std::vector<int32_t>* Continuation::ids_ = nullptr;

TEST_F(Continuation, ExactAttentionAgainstItself) {
  const StudyRun r = run(make({"full"}));
  ASSERT_EQ(r.configs.size(), 1u);
  EXPECT_EQ(r.configs[0].name, "full");
  for (const WindowRaw& w : r.windows) {
    EXPECT_EQ(w.context, 80);
    const auto v = window_metrics(w, 0);
    EXPECT_EQ(v[0], 1.0);                    // kept_fraction
    EXPECT_NEAR(v[2], 1.0, 1e-12);           // ppl_ratio
    EXPECT_EQ(v[3], 1.0);                    // top1
    EXPECT_NEAR(v[4], 0.0, 1e-12);           // kl
    EXPECT_GT(v[5], 0.0);                    // time_context
    EXPECT_DOUBLE_EQ(v[7], v[5] + v[6]);     // time_total
  }
}

TEST_F(Continuation, KvMethodsAtBudgetOneAreExact) {
  const StudyRun r = run(make({"snapkv", "streaming", "knorm"}, {1.0}));
  ASSERT_EQ(r.configs.size(), 3u);
  EXPECT_EQ(r.configs[0].name, "snapkv@1");
  for (const WindowRaw& w : r.windows)
    for (size_t c = 0; c < w.configs.size(); ++c) {
      const auto v = window_metrics(w, c);
      EXPECT_EQ(v[0], 1.0) << w.configs[c].name;
      EXPECT_NEAR(v[2], 1.0, 1e-6) << w.configs[c].name;
      EXPECT_EQ(v[3], 1.0) << w.configs[c].name;
      EXPECT_NEAR(v[4], 0.0, 1e-9) << w.configs[c].name;
    }
}

// log-softmax of a row in double, written here rather than taken from the study's code.
std::vector<double> log_probs(const float* x, int64_t V) {
  double mx = -INFINITY;
  for (int64_t v = 0; v < V; ++v) mx = std::max(mx, double(x[v]));
  double z = 0;
  for (int64_t v = 0; v < V; ++v) z += std::exp(double(x[v]) - mx);
  std::vector<double> lp(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) lp[size_t(v)] = double(x[v]) - mx - std::log(z);
  return lp;
}

struct Independent {
  double nll = 0, kl = 0, top1 = 0;
  std::vector<double> kept;
};

// Context forward, continuation forward, then the M-1 scored rows against the exact run's.
Independent independent(const Model& m, std::span<const int32_t> window, int64_t M, const AttentionFactory* f) {
  const int64_t C = int64_t(window.size()) - M, V = m.spec().vocab_size;
  const auto ctx = window.first(size_t(C)), cont = window.subspan(size_t(C));
  Sequence ex = m.new_sequence();
  (void)m.forward(ex, ctx);
  const Tensor le = m.forward(ex, cont);
  Sequence s = m.new_sequence(f);
  (void)m.forward(s, ctx);
  Independent r;
  for (int l = 0; l < int(m.spec().n_layers); ++l) {
    if (const KvPressTrace* t = kv_press_trace(s.cpu_layer(l))) {
      double sum = 0;
      for (const auto& h : t->kept) sum += double(h.size());
      r.kept.push_back(sum / double(t->kept.size()) / double(C));
    } else {
      r.kept.push_back(double(s.trace(l)->selection.reps.size()) / double(C));
    }
  }
  const Tensor lm = m.forward(s, cont);
  for (int64_t i = 0; i + 1 < M; ++i) {
    const auto p = log_probs(le.row(i), V), q = log_probs(lm.row(i), V);
    r.nll -= q[size_t(cont[size_t(i + 1)])];
    double kl = 0;
    for (int64_t v = 0; v < V; ++v) kl += std::exp(p[size_t(v)]) * (p[size_t(v)] - q[size_t(v)]);
    r.kl += kl;
    r.top1 += std::max_element(p.begin(), p.end()) - p.begin() == std::max_element(q.begin(), q.end()) - q.begin();
  }
  r.nll /= double(M - 1);
  r.kl /= double(M - 1);
  r.top1 /= double(M - 1);
  return r;
}

TEST_F(Continuation, FiguresEqualAnIndependentComputation) {
  StudyParams p = make({"snapkv", "ada+all-queries", "tova"}, {0.25}, 1);
  p.tau = 0.5;
  const StudyRun r = run(p);
  ASSERT_EQ(r.windows.size(), 1u);
  const WindowRaw& w = r.windows[0];
  const auto window = std::span<const int32_t>(*ids_).subspan(size_t(w.begin), size_t(w.T));
  KvPressOptions snap;
  snap.budget = 0.25;
  ASSERT_TRUE(press::parse_method("snapkv", &snap.method));
  KvPressOptions tova = snap;
  ASSERT_TRUE(press::parse_method("tova", &tova.method));
  AdaOptions ada;
  ada.select.tau = 0.5;
  ada.queries = AdaQueries::all;
  const KvPressFactory f_snap(snap), f_tova(tova);
  const AdaAttentionFactory fa(ada);
  const std::vector<std::pair<std::string, const AttentionFactory*>> cases = {
      {"snapkv@0.25", &f_snap}, {"ada+all-queries@tau=0.5", &fa}, {"tova@0.25", &f_tova}};
  ASSERT_EQ(w.configs.size(), cases.size());
  for (size_t c = 0; c < cases.size(); ++c) {
    const ConfigRaw& got = w.configs[c];
    ASSERT_EQ(got.name, cases[c].first);
    const Independent want = independent(*model_, window, 16, cases[c].second);
    EXPECT_NEAR(got.nll, want.nll, 1e-9 * want.nll) << got.name;
    EXPECT_NEAR(got.kl, want.kl, 1e-9 + 1e-9 * want.kl) << got.name;
    EXPECT_DOUBLE_EQ(got.top1, want.top1) << got.name;
    EXPECT_EQ(got.kept, want.kept) << got.name;
    EXPECT_GT(want.kl, 1e-6) << got.name << ": the method should differ from exact attention here";
  }
  // The KV methods keep round(0.25 * 80) = 20 of the 80 context entries in every layer and head.
  for (double k : w.configs[0].kept) EXPECT_DOUBLE_EQ(k, 0.25);
}

TEST_F(Continuation, ResumedStudyEqualsUninterrupted) {
  const fs::path out = scratch("resume");
  const StudyParams p = make({"full", "snapkv", "ada"}, {0.25, 0.5}, 3);
  const StudyRun whole = run(p, out);
  const std::string log = read(out / "windows.jsonl");
  const size_t first = log.find('\n');
  ASSERT_NE(first, std::string::npos);
  std::ofstream(out / "windows.jsonl", std::ios::binary | std::ios::trunc) << log.substr(0, first + 1 + first / 2);
  const StudyRun resumed = run(p, out);
  EXPECT_EQ(resumed.resumed, 1);
  ASSERT_EQ(resumed.windows.size(), 3u);
  for (size_t w = 0; w < 3; ++w)
    for (size_t c = 0; c < whole.configs.size(); ++c) {
      const auto a = window_metrics(whole.windows[w], c), b = window_metrics(resumed.windows[w], c);
      for (size_t k = 0; k < a.size(); ++k) {
        const std::string& key = window_metric_keys(StudyProtocol::continuation)[k];
        if (key.rfind("time_", 0) == 0) continue;
        EXPECT_NEAR(a[k], b[k], 1e-9 * std::max(1.0, std::fabs(a[k]))) << whole.configs[c].name << " " << key;
      }
    }
  EXPECT_EQ(resumed.windows[0].configs[2].kept, whole.windows[0].configs[2].kept);  // from disk, bit for bit
  EXPECT_EQ(resumed.windows[0].configs[2].seconds_context, whole.windows[0].configs[2].seconds_context);
  // Other budgets are another study.
  StudyParams q = p;
  q.budgets = {0.25};
  try {
    run(q, out);
    ADD_FAILURE() << "other budgets in the same folder were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("budgets"), std::string::npos) << e.what();
  }
}

TEST(StudyMethods, ItemsNameTheirConfigurations) {
  StudyParams p = params({"full", "ada+all-queries", "snapkv", "ada+proportional+select=inherit"}, {0.1, 0.5}, 0, 0);
  p.tau_sweep = {0.5, 0.3};  // 0.3 is --tau already
  std::vector<std::string> names;
  for (const StudyConfig& c : engine::continuation_configs(p)) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"full", "ada+all-queries@tau=0.3", "ada+all-queries@tau=0.5", "snapkv@0.1",
                                             "snapkv@0.5", "ada+proportional+select=inherit@tau=0.3",
                                             "ada+proportional+select=inherit@tau=0.5"}));
  const engine::AttentionOptions base;
  const auto o = engine::parse_study_method("ada+all-queries+proportional+full-select", base);
  EXPECT_EQ(o.attention, "ada");
  EXPECT_EQ(o.queries, "all");
  EXPECT_TRUE(o.proportional);
  EXPECT_EQ(o.select, "full");
  EXPECT_EQ(engine::parse_study_method("ada+all-earlier", base).rule, "all-earlier");
  // Every short name stands for KEYWORD=VALUE.
  for (const auto& [name, meaning] : engine::study_variant_names()) EXPECT_NE(meaning.find('='), std::string::npos) << name;
}

TEST(StudyMethods, BadItemsAndBudgetsAreRefused) {
  const engine::AttentionOptions base;
  const std::vector<std::pair<std::string, std::string>> items = {
      {"sparse", "not in {"},
      {"ada+bogus", "unknown variant 'bogus'"},
      {"ada+no_such_keyword=1", "unknown attention option 'no_such_keyword'"},
      {"ada+rule=zigzag", "--methods ada+rule=zigzag"},
      {"ada+tau=0.5", "set by the study"},
      {"snapkv+kv_budget=0.5", "set by the study"},
      {"ada++all-queries", "empty"},
  };
  for (const auto& [item, message] : items) {
    try {
      (void)engine::parse_study_method(item, base);
      ADD_FAILURE() << item << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << item << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("--methods"), std::string::npos) << item << ": " << e.what();
    }
  }
  for (const std::vector<double>& b : {std::vector<double>{0.0}, {1.5}, {0.25, 0.25}})
    EXPECT_THROW((void)engine::continuation_configs(params({"snapkv"}, b, 0, 0)), Error);
  EXPECT_THROW((void)engine::continuation_configs(params({"full", "full"}, {0.5}, 0, 0)), Error);
}

TEST(StudyContinuationCli, WritesTheFrontierAndRefusesBadFlags) {
  const fs::path out = scratch("cli");
  const std::string base = "study --quiet --model " + model_dir() + " --text " + test::sample_text() + " --ctx 96 --windows 2";
  auto r = run_cli(base + " --protocol continuation --continuation 16 --methods full,ada,snapkv,streaming --budgets 0.25,0.5"
                          " --tau-sweep 0.5 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("7 configurations"), std::string::npos) << r.output;
  for (const char* f : {"report.md", "metrics.json", "per_layer.csv", "frontier_kept.svg", "frontier_time.svg"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  const std::string md = read(out / "report.md");
  EXPECT_NE(md.find("## Frontier"), std::string::npos);
  EXPECT_NE(md.find("| `snapkv@0.25` | 0.25 ± 0"), std::string::npos) << md;
  EXPECT_NE(md.find("15 next-token predictions"), std::string::npos);
  const auto j = nlohmann::json::parse(read(out / "metrics.json"));
  EXPECT_EQ(j["params"]["protocol"], "continuation");
  EXPECT_EQ(j["params"]["continuation"], 16);
  ASSERT_EQ(j["frontier"].size(), 7u);
  for (const auto& c : j["configs"])
    for (const auto& f : j["frontier"])
      if (f["config"] == c["name"])
        EXPECT_EQ(f["ppl_ratio"]["mean"], c["summary"]["ppl_ratio"]["mean"]) << c["name"];
  EXPECT_EQ(j["configs"][0]["name"], "full");
  EXPECT_EQ(j["configs"][0]["summary"]["ppl_ratio"]["mean"].get<double>(), 1.0);
  std::ifstream csv(out / "per_layer.csv");
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "config,window,begin,T,layer,kept_fraction");

  const fs::path d = scratch("cli_bad");
  const std::string m = base + " --out " + (d / "out").string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {m + " --protocol continuation --methods sparse", "not in {"},
      {m + " --protocol continuation --methods ada+bogus", "unknown variant"},
      {m + " --protocol continuation --budgets 0,0.5", "(0, 1]"},
      {m + " --protocol continuation --continuation 96", "--continuation"},
      {m + " --protocol decode", "--protocol"},
      {m + " --methods snapkv", "--protocol continuation"},
      {m + " --device tpu", "--device"},
  };
  for (const auto& [args, message] : cases) {
    const auto c = run_cli(args);
    EXPECT_EQ(c.code, 2) << args << "\n" << c.output;
    EXPECT_NE(c.output.find(message), std::string::npos) << args << "\n" << c.output;
  }
}

TEST(StudyContinuationCli, APrefillStudyKeepsItsParameterFile) {
  // Without the new flags params.json holds exactly the original keys, so earlier studies resume.
  const fs::path out = scratch("prefill_params");
  const auto r = run_cli("study --quiet --model " + model_dir() + " --text " + test::sample_text() + " --ctx 32 --windows 1 --out " +
                         out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = nlohmann::json::parse(read(out / "params.json"));
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"capped_k", "ctx", "model", "n_tokens", "seed", "similarity", "tau", "tau_sweep",
                                            "text", "tokenizer", "windows"}));
}

TEST(SvgPlot, LogAxis) {
  svg::Plot p;
  p.log_y = true;
  p.series.push_back({"ratio", {0.1, 0.5, 1}, {40, 3, 1}, {60, 0.5, 0}, {"a", "b", ""}});
  const std::string doc = svg::render(p);
  for (const char* tick : {">1<", ">10<"}) EXPECT_NE(doc.find(tick), std::string::npos) << tick;
  EXPECT_EQ(doc.find("nan"), std::string::npos);
  EXPECT_EQ(doc.find("inf"), std::string::npos);
}

}  // namespace
}  // namespace cascade
