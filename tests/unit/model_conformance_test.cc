// The engine against Hugging Face transformers: for each tiny random checkpoint of
// tests/data/models (made by scripts/make_fixtures.py), logits of one prefill and of token-by-token
// KV-cached decoding, and HF's greedy continuation; the 4.x form of each config gives the same
// logits; rope scaling (linear, llama3) on the Llama fixture's shape; and stories260K against
// ../shared's independent reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/npy.h"
#include "model/model.h"
#include "support/test_paths.h"

namespace cascade {
namespace {

namespace fs = std::filesystem;
using test::data_dir;

const char* kFixtures[] = {"gpt2",  "opt",   "opt_postln", "gptj",          "neox",
                           "neox_seq", "llama", "llama_gqa", "llama_rope_linear", "llama_rope_llama3"};
// Fixtures that scripts/make_fixtures.py makes (where transformers is) but that a checkout may not
// have yet: their tests skip, saying how to make them. Every other fixture must be present.
const std::set<std::string> kMayBeAbsent = {"llama_rope_linear", "llama_rope_llama3"};

// Why a test of this fixture skips, or "" when it runs.
std::string not_made(const std::string& name) {
  if (!kMayBeAbsent.count(name) ||
      (fs::exists(data_dir() / "models" / name / "config.json") && fs::exists(data_dir() / "ref" / name / "logits.npy")))
    return "";
  return "fixture " + name + " not made yet: python3 scripts/make_fixtures.py --only " + name +
         " (needs transformers), then commit tests/data/models/" + name + " and tests/data/ref/" + name;
}

struct Ref {
  std::vector<int32_t> ids, prompt, greedy;
  std::vector<float> logits;
  int64_t vocab = 0;
};

Ref read_ref(const std::string& name) {
  const fs::path d = data_dir() / "ref" / name;
  Ref r;
  r.ids = read_npy(d / "ids.npy").to_int32("ids");
  r.prompt = read_npy(d / "prompt.npy").to_int32("prompt");
  r.greedy = read_npy(d / "greedy.npy").to_int32("greedy");
  const NpyArray l = read_npy(d / "logits.npy");
  r.logits = l.to_float32("logits");
  r.vocab = l.shape.at(1);
  return r;
}

// The conformance bound (README "Tests"): max |logit - HF| <= 1e-4 * max |HF logit| + 1e-5, at every position.
void expect_close_rows(const float* got, const float* want, int64_t rows, int64_t vocab, const std::string& what) {
  float scale = 0;
  for (int64_t i = 0; i < rows * vocab; ++i) scale = std::max(scale, std::fabs(want[i]));
  const float tol = 1e-4f * scale + 1e-5f;
  for (int64_t t = 0; t < rows; ++t) {
    float worst = 0;
    for (int64_t v = 0; v < vocab; ++v) worst = std::max(worst, std::fabs(got[t * vocab + v] - want[t * vocab + v]));
    ASSERT_LE(worst, tol) << what << ": position " << t;
  }
}

std::vector<int32_t> greedy(const Model& m, std::vector<int32_t> prompt, size_t n_new) {
  Sequence s = m.new_sequence();
  Tensor l = m.forward(s, prompt, true);
  std::vector<int32_t> out;
  for (size_t i = 0; i < n_new; ++i) {
    const float* row = l.data();
    const int32_t next = int32_t(std::max_element(row, row + l.dim(1)) - row);
    out.push_back(next);
    l = m.forward(s, std::vector<int32_t>{next}, true);
  }
  return out;
}

class Conformance : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (const std::string why = not_made(GetParam()); !why.empty()) GTEST_SKIP() << why;
  }
};

TEST_P(Conformance, PrefillLogitsMatchHF) {
  const Ref r = read_ref(GetParam());
  auto m = Model::load(data_dir() / "models" / GetParam());
  ASSERT_EQ(m->spec().vocab_size, r.vocab);
  Sequence s = m->new_sequence();
  const Tensor got = m->forward(s, r.ids);
  ASSERT_EQ(got.dim(0), int64_t(r.ids.size()));
  expect_close_rows(got.data(), r.logits.data(), got.dim(0), r.vocab, "prefill");
}

TEST_P(Conformance, CachedDecodingLogitsMatchHF) {
  const Ref r = read_ref(GetParam());
  auto m = Model::load(data_dir() / "models" / GetParam());
  Sequence s = m->new_sequence();
  // A prefill of the first 5 tokens, then one token at a time through the KV cache.
  const std::vector<int32_t> head(r.ids.begin(), r.ids.begin() + 5);
  Tensor l = m->forward(s, head);
  expect_close_rows(l.data(), r.logits.data(), 5, r.vocab, "prefill of 5");
  for (size_t t = 5; t < r.ids.size(); ++t) {
    l = m->forward(s, std::vector<int32_t>{r.ids[t]});
    expect_close_rows(l.data(), r.logits.data() + t * r.vocab, 1, r.vocab, "decode step " + std::to_string(t));
  }
  EXPECT_EQ(s.length(), int64_t(r.ids.size()));
}

// Perplexity's per-token NLL (Model::next_token_nll, the CPU path) against -log softmax of HF's logits,
// computed here in float64; a first row outside the sequence is refused and leaves it untouched.
TEST_P(Conformance, NextTokenNllMatchesHF) {
  const Ref r = read_ref(GetParam());
  auto m = Model::load(data_dir() / "models" / GetParam());
  Sequence s = m->new_sequence();
  const int64_t T = int64_t(r.ids.size()), first = 2;
  EXPECT_THROW(m->next_token_nll(s, r.ids, T), Error);
  EXPECT_THROW(m->next_token_nll(s, r.ids, -1), Error);
  EXPECT_EQ(s.length(), 0);
  const std::vector<double> got = m->next_token_nll(s, r.ids, first);
  ASSERT_EQ(int64_t(got.size()), T - 1 - first);
  for (int64_t t = first; t + 1 < T; ++t) {
    const float* row = r.logits.data() + t * r.vocab;
    const double mx = *std::max_element(row, row + r.vocab);
    double sum = 0;
    for (int64_t v = 0; v < r.vocab; ++v) sum += std::exp(double(row[v]) - mx);
    const double want = std::log(sum) + mx - double(row[r.ids[size_t(t + 1)]]);
    EXPECT_NEAR(got[size_t(t - first)], want, 1e-4 * std::max(1.0, want)) << GetParam() << " row " << t;
  }
  EXPECT_EQ(s.length(), T);
}

TEST_P(Conformance, GreedyContinuationMatchesHF) {
  const Ref r = read_ref(GetParam());
  auto m = Model::load(data_dir() / "models" / GetParam());
  EXPECT_EQ(greedy(*m, r.prompt, r.greedy.size()), r.greedy);
}

// The same weights with config.json written the transformers-4.x way must give the same logits.
TEST_P(Conformance, TransformersV4ConfigGivesSameLogits) {
  const Ref r = read_ref(GetParam());
  const fs::path dir = fs::temp_directory_path() / ("cascade_v4_" + std::string(GetParam()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(data_dir() / "ref" / GetParam() / "config_v4.json", dir / "config.json");
  fs::create_symlink(fs::absolute(data_dir() / "models" / GetParam() / "model.safetensors"), dir / "model.safetensors");
  auto m = Model::load(dir);
  Sequence s = m->new_sequence();
  const Tensor got = m->forward(s, r.ids);
  expect_close_rows(got.data(), r.logits.data(), got.dim(0), r.vocab, "v4 config");
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Conformance, ::testing::ValuesIn(kFixtures),
                         [](const auto& info) { return std::string(info.param); });

TEST(Conformance, ArchitectureTableReadsEachFamily) {
  auto gptj = Model::load(data_dir() / "models" / "gptj");
  EXPECT_EQ(gptj->spec().residual, Residual::ParallelShared);
  EXPECT_EQ(gptj->spec().rotary, RotaryStyle::Interleaved);
  EXPECT_EQ(gptj->spec().rotary_dim, 8);
  auto neox = Model::load(data_dir() / "models" / "neox");
  EXPECT_EQ(neox->spec().rotary_dim, 4);  // 16-wide heads, rotary_pct 0.25
  EXPECT_EQ(neox->spec().residual, Residual::ParallelTwoNorms);
  auto post = Model::load(data_dir() / "models" / "opt_postln");
  EXPECT_FALSE(post->spec().pre_norm);
  EXPECT_EQ(post->spec().d_embed, 32);
  auto gqa = Model::load(data_dir() / "models" / "llama_gqa");
  EXPECT_EQ(gqa->spec().n_kv_heads, 2);
  EXPECT_EQ(gqa->spec().n_heads, 8);
}

// The rope fixtures' configs, as HF saved them, carry the scaling they are made for; without it their
// logits would test nothing that the llama fixture does not.
TEST(Conformance, RopeScalingFixturesDeclareTheirScaling) {
  for (const char* name : {"llama_rope_linear", "llama_rope_llama3"})
    if (const std::string why = not_made(name); !why.empty()) GTEST_SKIP() << why;
  const RopeScaling linear = Model::load(data_dir() / "models" / "llama_rope_linear")->spec().rope_scaling;
  EXPECT_EQ(linear.type, "linear");
  EXPECT_EQ(linear.factor, 4.0);
  const RopeScaling llama3 = Model::load(data_dir() / "models" / "llama_rope_llama3")->spec().rope_scaling;
  EXPECT_EQ(llama3.type, "llama3");
  EXPECT_EQ(llama3.factor, 8.0);
  EXPECT_EQ(llama3.low_freq_factor, 1.0);
  EXPECT_EQ(llama3.high_freq_factor, 4.0);
  EXPECT_EQ(llama3.original_max_position, 64.0);
}

// stories260K: the one real trained model here, against an independent fp32 implementation.
TEST(Stories260K, LogitsAndGreedyTokensMatchReference) {
  // The bundled copy (models/stories260K) and the reference from ../shared, copied into tests/data.
  const auto model = test::bundled_model_dir() / "stories260K.bin";
  const auto ref_path = data_dir() / "ref" / "stories260K" / "reference_greedy_bos.json";
  const auto ref = nlohmann::json::parse(std::ifstream(ref_path));
  const auto ids = ref["token_ids"].get<std::vector<int32_t>>();
  const auto logits = ref["logits_pos0_to_3"].get<std::vector<std::vector<float>>>();
  auto m = Model::load(model);
  Sequence s = m->new_sequence();
  const std::vector<int32_t> first(ids.begin(), ids.begin() + 4);
  const Tensor got = m->forward(s, first);
  for (int t = 0; t < 4; ++t)
    for (size_t v = 0; v < logits[size_t(t)].size(); ++v)
      ASSERT_NEAR(got.data()[t * got.dim(1) + int64_t(v)], logits[size_t(t)][v], 1e-4) << "position " << t << " id " << v;
  // 64 greedy tokens from BOS, one at a time through the cache.
  const auto gen = greedy(*m, {ids[0]}, ids.size() - 1);
  EXPECT_EQ(std::vector<int32_t>(ids.begin() + 1, ids.end()), gen);
}

}  // namespace
}  // namespace cascade
