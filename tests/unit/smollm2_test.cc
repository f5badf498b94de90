// SmolLM2-135M-Instruct (Q4_1 GGUF, fetched by scripts/get-models into a cache outside the tree)
// against Hugging Face transformers reading the same file in float32. The references in
// tests/data/smollm2/ were made by scripts/device_smollm2.py (see the README there). Every test
// skips with a message when the GGUF is not in the cache, as in a fresh clone or CI.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/npy.h"
#include "model/model.h"
#include "support/test_paths.h"
#include "tokenizer/embedded_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace cascade {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

// Where scripts/get-models puts the model: $CASCADE_MODELS, else ~/.cache/cascade/models.
fs::path gguf_path() {
  const char* dir = std::getenv("CASCADE_MODELS");
  const char* home = std::getenv("HOME");
  const fs::path base = dir ? fs::path(dir) : fs::path(home ? home : "/") / ".cache/cascade/models";
  return base / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

#define REQUIRE_SMOLLM2(var)                                                                       \
  const fs::path var = gguf_path();                                                                \
  if (!fs::exists(var)) GTEST_SKIP() << "needs " << var << " (run scripts/get-models); absent here"

fs::path ref(const std::string& name) { return test::data_dir() / "smollm2" / name; }

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(std::ifstream(p)); }

// One model for the whole suite: loading dequantizes 135M parameters.
const Model& model() {
  static const std::unique_ptr<Model> m = Model::load(gguf_path());
  return *m;
}
const Tokenizer& tokenizer() {
  static const std::unique_ptr<Tokenizer> t = make_embedded_tokenizer(*model().checkpoint().embedded_vocab);
  return *t;
}

TEST(SmolLM2, HardStringsMatchHuggingFace) {
  REQUIRE_SMOLLM2(path);
  for (const auto& c : read_json(ref("hard.json"))) {
    const auto text = c.at("text").get<std::string>();
    EXPECT_EQ(tokenizer().encode(text, false), c.at("ids").get<Ids>()) << "text: \"" << text << "\"";
  }
}

TEST(SmolLM2, EveryWikiTextLineAndTheWholeFileMatchHuggingFace) {
  REQUIRE_SMOLLM2(path);
  CASCADE_REQUIRE_SHARED(wiki, "data/wikitext-2-raw/wiki.test.raw");
  std::stringstream text;
  text << std::ifstream(wiki, std::ios::binary).rdbuf();
  const auto want = read_npy(ref("wikitext_line_ids.npy")).to_int32("ids");
  const auto lens = read_npy(ref("wikitext_line_lens.npy")).to_int32("lens");
  // Lines as the reference cut them: on "\n", a trailing "\r" dropped, empty ones skipped.
  std::stringstream in(text.str());
  size_t line_no = 0, offset = 0;
  int bad = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.ends_with('\r')) line.pop_back();
    if (line.empty()) continue;
    ASSERT_LT(line_no, lens.size());
    const Ids expected(want.begin() + offset, want.begin() + offset + lens[line_no]);
    offset += lens[line_no++];
    if (tokenizer().encode(line, false) != expected && bad++ == 0) ADD_FAILURE() << "first differing line: " << line;
  }
  EXPECT_EQ(bad, 0) << "lines whose ids differ";
  EXPECT_EQ(line_no, lens.size());
  EXPECT_EQ(tokenizer().encode(text.str(), true), read_npy(ref("wikitext_ids.npy")).to_int32("ids"));
}

// max |logit - HF| <= 1e-3 * max |HF logit| at each position: over the whole row where the reference
// keeps it (the last positions), over HF's top 20 elsewhere; the argmax agrees wherever HF's top
// two are further apart than that tolerance.
TEST(SmolLM2, PromptLogitsMatchHuggingFace) {
  REQUIRE_SMOLLM2(path);
  const auto prompt = read_json(ref("prompt.json"));
  const Ids ids = prompt.at("ids").get<Ids>();
  ASSERT_EQ(tokenizer().encode(prompt.at("text").get<std::string>(), false), ids);
  Sequence s = model().new_sequence();
  const Tensor got = model().forward(s, ids);
  const int64_t T = got.dim(0), V = got.dim(1);
  const auto scale = read_npy(ref("logits_maxabs.npy")).to_float32("maxabs");
  const auto top_ids = read_npy(ref("logits_top_ids.npy")).to_int32("top ids");
  const auto top_vals = read_npy(ref("logits_top_vals.npy")).to_float32("top values");
  const NpyArray last_npy = read_npy(ref("logits_last.npy"));
  const auto last = last_npy.to_float32("last logits");
  const int64_t n_last = last_npy.shape.at(0), k = int64_t(top_ids.size()) / T;
  ASSERT_EQ(int64_t(scale.size()), T);
  ASSERT_EQ(last_npy.shape.at(1), V);
  double worst = 0;  // max |diff| / max |HF| over every compared position
  for (int64_t t = 0; t < T; ++t) {
    const float* row = got.data() + t * V;
    const float tol = 1e-3f * scale[t];
    float diff = 0;
    for (int64_t j = 0; j < k; ++j) diff = std::max(diff, std::fabs(row[top_ids[t * k + j]] - top_vals[t * k + j]));
    if (t >= T - n_last)
      for (int64_t v = 0; v < V; ++v) diff = std::max(diff, std::fabs(row[v] - last[(t - (T - n_last)) * V + v]));
    EXPECT_LE(diff, tol) << "position " << t;
    worst = std::max(worst, double(diff) / scale[t]);
    if (top_vals[t * k] - top_vals[t * k + 1] > 2 * tol)
      EXPECT_EQ(std::max_element(row, row + V) - row, top_ids[t * k]) << "argmax at position " << t;
  }
  std::cout << "max |logit - HF| / max |HF logit| over " << T << " positions: " << worst << "\n";
}

TEST(SmolLM2, GreedyContinuationMatchesHuggingFace) {
  REQUIRE_SMOLLM2(path);
  const auto prompt = read_json(ref("prompt.json"));
  const Ids want = prompt.at("greedy").get<Ids>();
  Sequence s = model().new_sequence();
  Tensor l = model().forward(s, prompt.at("ids").get<Ids>(), true);
  Ids got;
  while (got.size() < want.size()) {
    got.push_back(int32_t(std::max_element(l.data(), l.data() + l.dim(1)) - l.data()));
    l = model().forward(s, Ids{got.back()}, true);
  }
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace cascade
