// The study tool (src/eval/study*, `cascade study`) on the llama fixture and tests/data/text: the
// values it reports must obey what SPEC 2 and 5 guarantee (the exact cascade reproduces the full
// selection; the full selection needs T(T-1)/2 inner products per layer; overlaps lie in [0, 1]),
// its three outputs must agree, a resumed study must equal an uninterrupted one, and bad input must
// be one clear message with exit code 2.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
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

fs::path scratch(const std::string& name) { return test::scratch_path("cascade_study_test", name); }

std::string model_dir() { return test::fixture_model("llama"); }

std::string read(const fs::path& p) { return test::read_file(p); }

class Study : public ::testing::Test {
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

  static StudyParams params(int64_t windows, std::vector<double> sweep = {0.0, 0.5}) {
    StudyParams p;
    p.model = model_dir();
    p.text = test::sample_text();
    p.ctx = 32;
    p.windows = windows;
    p.seed = 7;
    p.tau_sweep = std::move(sweep);
    p.n_tokens = int64_t(ids_->size());
    return p;
  }
  static StudyRun run(const StudyParams& p, const fs::path& out) {
    return run_study(*model_, *ids_, p, study_configs(p), out, false, true);
  }
  static size_t index_of(const StudyRun& r, const std::string& name) {
    for (size_t c = 0; c < r.configs.size(); ++c)
      if (r.configs[c].name == name) return c;
    ADD_FAILURE() << "no configuration " << name;
    return 0;
  }

  static Model* model_;
  static std::vector<int32_t>* ids_;
};

Model* Study::model_ = nullptr;
std::vector<int32_t>* Study::ids_ = nullptr;

TEST_F(Study, CascadeReproducesFullAndFullNeedsTheWholeTriangle) {
  const fs::path out = scratch("values");
  const StudyRun r = run(params(2), out);
  ASSERT_EQ(r.windows.size(), 2u);
  const size_t full = index_of(r, "full"), cas = index_of(r, "cascade");
  for (const WindowRaw& w : r.windows) {
    ASSERT_EQ(w.T, 32);
    const int64_t triangle = w.T * (w.T - 1) / 2;
    for (size_t l = 0; l < w.configs[cas].layers.size(); ++l) {
      const LayerRaw& c = w.configs[cas].layers[l];
      const LayerRaw& f = w.configs[full].layers[l];
      EXPECT_EQ(c.jaccard_vs_full, 1.0) << "layer " << l;
      EXPECT_EQ(c.r, f.r) << "layer " << l;
      EXPECT_EQ(f.needed, triangle) << "layer " << l;
      EXPECT_LE(c.needed, f.needed) << "layer " << l;
    }
    // On exact attention's own features too, the cascade reproduces the full selection.
    const size_t obs = index_of(r, "exact-trajectory");
    EXPECT_TRUE(std::isnan(w.configs[obs].kl));
    for (size_t l = 0; l < w.configs[obs].layers.size(); ++l) {
      EXPECT_EQ(w.configs[obs].layers[l].jaccard_vs_full, 1.0) << "layer " << l;
      EXPECT_LE(w.configs[obs].layers[l].needed, triangle) << "layer " << l;
    }
    EXPECT_EQ(w.configs[obs].layers[0].r, w.configs[full].layers[0].r);  // layer 0 sees the same features
    for (const ConfigRaw& c : w.configs) {
      if (c.name == "exact-trajectory") continue;
      for (const LayerRaw& l : c.layers) {
        EXPECT_GE(l.r, 1) << c.name;
        EXPECT_LE(l.r, w.T) << c.name;
        EXPECT_GE(l.jaccard_vs_full, 0.0) << c.name;
        EXPECT_LE(l.jaccard_vs_full, 1.0) << c.name;
        if (&l != &c.layers.back()) {
          EXPECT_GE(l.jaccard_next, 0.0) << c.name;
          EXPECT_LE(l.jaccard_next, 1.0) << c.name;
        }
        EXPECT_GE(l.attention_error, 0.0) << c.name;
      }
      EXPECT_GE(c.top1, 0.0);
      EXPECT_LE(c.top1, 1.0);
      EXPECT_GE(c.kl, -1e-12) << c.name;
    }
  }
  // The sweep: a lower tau keeps at least as many tokens and loses no more than a higher one.
  const StudySummary s = summarize(r);
  const ConfigSummary& t0 = s.config("cascade@tau=0");
  const ConfigSummary& t5 = s.config("cascade@tau=0.5");
  EXPECT_GE(t0.get("r_over_T").mean, t5.get("r_over_T").mean);
  EXPECT_LE(t0.get("kl").mean, t5.get("kl").mean);
  EXPECT_DOUBLE_EQ(s.config("full").get("gram_needed_savings").mean, 0.0);
  EXPECT_GE(s.config("cascade").get("gram_needed_savings").mean, 0.0);
}

TEST_F(Study, WritesOutputsThatAgree) {
  const fs::path out = scratch("outputs");
  const StudyRun r = run(params(2), out);
  write_study_outputs(r, model_->spec(), {"today", "", 1}, out);
  for (const char* f : {"report.md", "metrics.json", "per_layer.csv", "params.json", "windows.jsonl",
                        "jaccard_by_layer.svg", "r_over_T_by_layer.svg", "attention_error_by_layer.svg",
                        "quality_cost.svg"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  const std::string md = read(out / "report.md");
  EXPECT_NE(md.find("mean ± sample standard deviation over 2 windows"), std::string::npos);
  EXPECT_NE(md.find("22% to 63%"), std::string::npos);
  EXPECT_NE(md.find("(quality_cost.svg)"), std::string::npos);

  const auto j = nlohmann::json::parse(read(out / "metrics.json"));
  EXPECT_EQ(j["run"]["windows"], 2);
  EXPECT_EQ(j["params"]["ctx"], 32);
  // per_layer.csv: header, then configs x windows x layers rows; compare r_over_T with the JSON.
  std::ifstream csv(out / "per_layer.csv");
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line.rfind("config,window,begin,T,layer,r,r_over_T,", 0), 0u) << line;
  const size_t L = size_t(model_->spec().n_layers);
  std::map<std::pair<std::string, int64_t>, std::vector<double>> r_over_T;  // (config, window) -> per layer
  std::map<std::string, std::vector<double>> needed_full;
  size_t rows = 0;
  while (std::getline(csv, line)) {
    std::vector<std::string> cells;
    std::stringstream ls(line);
    for (std::string c; std::getline(ls, c, ',');) cells.push_back(c);
    ASSERT_GE(cells.size(), 10u) << line;
    r_over_T[{cells[0], std::stoll(cells[1])}].push_back(std::stod(cells[6]));
    if (cells[0] == "full") EXPECT_EQ(std::stoll(cells[9]), 32 * 31 / 2) << line;  // needed
    ++rows;
  }
  EXPECT_EQ(rows, r.configs.size() * 2 * L);
  const auto& idx = j["per_window"]["index"];
  ASSERT_EQ(idx.size(), 2u);
  for (const char* name : {"cascade", "random:7", "cascade@tau=0.5"}) {
    const auto& pw = j["per_window"]["configs"][name]["r_over_T"];
    double sum = 0;
    for (size_t k = 0; k < 2; ++k) {
      const auto& layers = r_over_T[{name, idx[k].get<int64_t>()}];
      ASSERT_EQ(layers.size(), L) << name;
      double m = 0;
      for (double v : layers) m += v / double(L);
      EXPECT_NEAR(pw[k].get<double>(), m, 1e-8) << name;
      sum += m;
    }
    for (const auto& c : j["configs"])
      if (c["name"] == name) EXPECT_NEAR(c["summary"]["r_over_T"]["mean"].get<double>(), sum / 2, 1e-8) << name;
  }
}

TEST_F(Study, ResumedStudyEqualsUninterrupted) {
  const fs::path out = scratch("resume");
  const StudyParams p = params(3);
  const StudyRun whole = run(p, out);
  // Keep the first record and half of the second, as a kill in mid-write would.
  const std::string log = read(out / "windows.jsonl");
  const size_t first = log.find('\n');
  ASSERT_NE(first, std::string::npos);
  std::ofstream(out / "windows.jsonl", std::ios::binary | std::ios::trunc) << log.substr(0, first + 1 + (first / 2));
  const StudyRun resumed = run(p, out);
  EXPECT_EQ(resumed.resumed, 1);
  ASSERT_EQ(resumed.windows.size(), whole.windows.size());
  for (size_t w = 0; w < whole.windows.size(); ++w)
    for (size_t c = 0; c < whole.configs.size(); ++c) {
      const auto a = window_metrics(whole.windows[w], c), b = window_metrics(resumed.windows[w], c);
      for (size_t k = 0; k < a.size(); ++k) {
        const std::string& key = window_metric_keys()[k];
        if (key.rfind("time_", 0) == 0 || key == "gram_seconds" || std::isnan(a[k])) continue;
        EXPECT_NEAR(a[k], b[k], 1e-9 * std::max(1.0, std::fabs(a[k]))) << whole.configs[c].name << " " << key;
      }
    }
  // The resumed window came back from disk bit for bit.
  EXPECT_EQ(resumed.windows[0].configs[1].kl, whole.windows[0].configs[1].kl);
  EXPECT_EQ(resumed.windows[0].nll_full, whole.windows[0].nll_full);
  // And the file again holds every window, one line each.
  const std::string again = read(out / "windows.jsonl");
  EXPECT_EQ(std::count(again.begin(), again.end(), '\n'), 3);
}

TEST(StudyCli, OtherParametersInTheSameOutAreRefused) {
  const fs::path out = scratch("cli_params");
  const std::string base = "study --quiet --model " + model_dir() + " --text " + test::sample_text() + " --ctx 32 --out " + out.string();
  auto r = run_cli(base + " --windows 1");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(out / "report.md"));
  r = run_cli(base + " --windows 2");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("other parameters"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--overwrite"), std::string::npos) << r.output;
  r = run_cli(base + " --windows 2 --overwrite");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("2 windows of 32 tokens (0 resumed)"), std::string::npos) << r.output;
}

TEST(StudyCli, BadInputIsOneMessageAndExitCode2) {
  const fs::path d = scratch("cli_bad");
  fs::create_directories(d);
  std::ofstream(d / "empty.txt").close();
  std::ofstream(d / "short.txt") << "Hello";
  const std::string m = "study --quiet --model " + model_dir() + " --out " + (d / "out").string();
  const std::string text = " --text " + test::sample_text();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {m + text + " --ctx 1000", "longer than the model's context"},
      {m + text + " --ctx 32 --tau 1", "tau must be in [0, 1)"},
      {m + text + " --ctx 32 --tau -0.1", "tau must be in [0, 1)"},
      {m + text + " --ctx 32 --tau-sweep 0.2,1.5", "tau must be in [0, 1)"},
      {m + text + " --ctx 32 --tau-sweep 0.2,0.1,0.2", "twice"},
      {m + text + " --ctx 32 --windows 100000", "windows"},
      {m + text + " --ctx 32 --similarity dot", "unknown similarity"},
      {m + text + " --ctx 32 --attention-kernel flash", "--attention-kernel: flash not in"},
      {m + text + " --ctx 32 --attention-kernel cudnn", "cuDNN's attention runs on the GPU (--device cuda)"},
      {m + " --text " + (d / "empty.txt").string() + " --ctx 32", "empty"},
      {m + " --text " + (d / "short.txt").string() + " --ctx 32", "fewer than one window"},
      {m + " --text " + (d / "missing.txt").string() + " --ctx 32", "cannot open"},
  };
  for (const auto& [args, message] : cases) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << "\n" << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << args << "\n" << r.output;
  }
}

TEST(StudyWindows, AllOrARandomSortedDraw) {
  StudyParams p;
  p.ctx = 10;
  p.n_tokens = 105;
  EXPECT_EQ(study_windows(p, 128).size(), 10u);
  p.windows = 4;
  p.seed = 3;
  const auto a = study_windows(p, 128);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::adjacent_find(a.begin(), a.end()), a.end());
  EXPECT_EQ(a, study_windows(p, 128));
  p.seed = 4;
  EXPECT_NE(a, study_windows(p, 128));
  p.windows = 11;
  EXPECT_THROW(study_windows(p, 128), Error);
  p.windows = 0;
  EXPECT_THROW(study_windows(p, 8), Error);
}

TEST(StudyMetrics, Formulas) {
  EXPECT_DOUBLE_EQ(jaccard({0, 1, 2}, {0, 2, 5, 7}), 2.0 / 5.0);
  EXPECT_DOUBLE_EQ(jaccard({}, {}), 1.0);
  const MeanStd m = mean_std({1, 2, 3, std::nan("")});
  EXPECT_DOUBLE_EQ(m.mean, 2);
  EXPECT_DOUBLE_EQ(m.std, 1);
  EXPECT_EQ(m.n, 3);
  ArchSpec a;
  a.d_model = 8;
  a.n_heads = 2;
  a.n_kv_heads = 1;
  a.head_dim = 4;
  // Every token a representative: exact attention's FLOPs in both modes.
  const std::vector<std::vector<int32_t>> all = {{0, 1, 2, 3}, {0, 1, 2, 3}};
  EXPECT_DOUBLE_EQ(flops_kept(all, 4, AdaQueries::reps, a), 1.0);
  EXPECT_DOUBLE_EQ(flops_kept(all, 4, AdaQueries::all, a), 1.0);
  // One representative of 4: P(1) + A(1) of P(4) + A(4); all-queries keys 1, 2, 2, 2.
  const std::vector<std::vector<int32_t>> one = {{0}};
  const double P4 = projection_flops(4, a), A4 = attention_flops(4, a);
  EXPECT_DOUBLE_EQ(P4, 2.0 * 4 * 8 * (8 + 8) + 2.0 * 4 * 8 * 8);
  EXPECT_DOUBLE_EQ(A4, 2.0 * 2 * 8 * 10);
  EXPECT_DOUBLE_EQ(flops_kept(one, 4, AdaQueries::reps, a), (projection_flops(1, a) + attention_flops(1, a)) / (P4 + A4));
  EXPECT_DOUBLE_EQ(flops_kept(one, 4, AdaQueries::all, a), (P4 + 2.0 * 2 * 8 * 7) / (P4 + A4));
}

TEST(SvgPlot, TicksAndDocument) {
  const auto t = svg::nice_ticks(0, 1, 5);
  ASSERT_EQ(t.size(), 6u);
  EXPECT_NEAR(t[1], 0.2, 1e-12);
  EXPECT_NEAR(t.back(), 1.0, 1e-12);
  svg::Plot p;
  p.title = "a < b";
  p.series.push_back({"s&t", {0, 1, 2}, {1, std::nan(""), 3}, {0.1, 0.1, 0.1}, {}});
  const std::string doc = svg::render(p);
  EXPECT_EQ(doc.rfind("<svg", 0), 0u);
  EXPECT_NE(doc.find("</svg>"), std::string::npos);
  EXPECT_NE(doc.find("a &lt; b"), std::string::npos);
  EXPECT_NE(doc.find("s&amp;t"), std::string::npos);
  EXPECT_EQ(doc.find("nan"), std::string::npos);
}

}  // namespace
}  // namespace cascade
