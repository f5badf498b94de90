// ADA attention inside the model (SPEC 2-4's invariants, checked through Model): tau = 0 reproduces exact
// attention; token-by-token decoding reproduces the prefill; appending tokens never changes earlier
// positions; the exact cascade returns the full selection's set at every layer of a real model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "attention/ada_attention.h"
#include "core/error.h"
#include "model/model.h"
#include "support/test_paths.h"
#include "support/test_seed.h"
#include "tokenizer/tokenizer.h"

namespace cascade {
namespace {

using test::data_dir;

AdaOptions ada(double tau, const char* mode = "cascade", AdaQueries q = AdaQueries::reps, bool prop = false) {
  AdaOptions o;
  o.select.tau = tau;
  o.mode = select::parse_mode(mode);
  o.queries = q;
  o.proportional = prop;
  return o;
}

Tensor run(const Model& m, const std::vector<int32_t>& ids, const AttentionFactory* f) {
  Sequence s = m.new_sequence(f);
  return m.forward(s, ids);
}

float max_abs(const Tensor& t) {
  float mx = 0;
  for (int64_t i = 0; i < t.numel(); ++i) mx = std::max(mx, std::fabs(t.data()[i]));
  return mx;
}

// max |a - b| over rows [0, rows) of two [*, V] tensors.
float max_diff(const Tensor& a, const Tensor& b, int64_t rows) {
  float mx = 0;
  for (int64_t i = 0; i < rows * a.dim(1); ++i) mx = std::max(mx, std::fabs(a.data()[i] - b.data()[i]));
  return mx;
}

std::vector<int32_t> distinct_ids(int64_t vocab, int n, uint64_t seed) {
  std::vector<int32_t> all(static_cast<size_t>(vocab));
  std::iota(all.begin(), all.end(), 0);
  std::mt19937 g(seed);
  std::shuffle(all.begin(), all.end(), g);
  return std::vector<int32_t>(all.begin(), all.begin() + n);
}

class AdaOnFixture : public ::testing::TestWithParam<const char*> {};

// Invariant 2: with tau = 0 (theta = 1) every token without an exact duplicate is a
// representative, so ADA is exact attention (distinct ids: no duplicates at any layer).
TEST_P(AdaOnFixture, TauZeroEqualsExactAttention) {
  const test::Seed seed(7);
  auto m = Model::load(data_dir() / "models" / GetParam());
  const auto ids = distinct_ids(m->spec().vocab_size, 24, seed.value());
  const Tensor exact = run(*m, ids, nullptr);
  for (AdaQueries q : {AdaQueries::reps, AdaQueries::all}) {
    const AdaAttentionFactory f(ada(0.0, "cascade", q));
    Sequence s = m->new_sequence(&f);
    const Tensor got = m->forward(s, ids);
    for (int l = 0; l < int(m->spec().n_layers); ++l)
      ASSERT_EQ(s.trace(l)->selection.reps.size(), ids.size()) << "layer " << l;
    EXPECT_LE(max_diff(got, exact, got.dim(0)), 1e-5f * max_abs(exact) + 1e-6f);
  }
}

// Invariant 3: token-by-token decoding with the compressed cache gives the prefill's logits, and
// the same representatives (the trace covers every token seen).
TEST_P(AdaOnFixture, DecodingReproducesPrefill) {
  const test::Seed seed(3);
  auto m = Model::load(data_dir() / "models" / GetParam());
  std::vector<int32_t> ids = distinct_ids(m->spec().vocab_size, 20, seed.value());
  for (int i = 0; i < 8; ++i) ids.push_back(ids[size_t(i * 2)]);  // repeats make non-representatives
  struct Case {
    const char* mode;
    AdaQueries q;
    bool prop;
    const char* rule;
    AdaReconstruct rec = AdaReconstruct::copy;
    int64_t sinks = 0, window = 0;  // window 3: a ring of 2 slots, reused while decoding
    AdaFeatures features = AdaFeatures::hidden;
    int64_t dense = 0;
  } cases[] = {{"cascade", AdaQueries::reps, false, "greedy"}, {"cascade", AdaQueries::all, false, "greedy"},
               {"cascade", AdaQueries::reps, true, "greedy"},  {"inherit", AdaQueries::reps, false, "greedy"},
               {"capped:1", AdaQueries::reps, true, "greedy"}, {"full", AdaQueries::reps, false, "all-earlier"},
               {"cascade", AdaQueries::reps, false, "greedy", AdaReconstruct::lstsq},
               {"cascade", AdaQueries::reps, true, "greedy", AdaReconstruct::lstsq},
               {"cascade", AdaQueries::all, true, "greedy", AdaReconstruct::copy, 2, 3},
               {"cascade", AdaQueries::all, false, "greedy", AdaReconstruct::copy, 6, 5},
               {"cascade", AdaQueries::reps, false, "span"},
               {"cascade", AdaQueries::all, false, "greedy", AdaReconstruct::copy, 0, 0, AdaFeatures::keys},
               {"inherit", AdaQueries::reps, true, "span", AdaReconstruct::copy, 0, 0, AdaFeatures::keys, 1},
               {"cascade", AdaQueries::reps, false, "span", AdaReconstruct::lstsq, 0, 0, AdaFeatures::keys}};
  for (const auto& c : cases) {
    AdaOptions o = ada(0.8, c.mode, c.q, c.prop);  // a high tau: random weights correlate little
    o.select.rule = select::parse_rule(c.rule);
    o.reconstruct = c.rec;
    o.sinks = c.sinks;
    o.window = c.window;
    o.features = c.features;
    o.dense_layers = c.dense;
    const AdaAttentionFactory f(o);
    Sequence ps = m->new_sequence(&f);
    const Tensor pre = m->forward(ps, ids);
    size_t fewest = ids.size();
    for (int l = 0; l < int(m->spec().n_layers); ++l) fewest = std::min(fewest, ps.trace(l)->selection.reps.size());
    ASSERT_LT(fewest, ids.size()) << "no non-representative: the copy path would go untested";
    Sequence s = m->new_sequence(&f);
    const std::vector<int32_t> head(ids.begin(), ids.begin() + 4);
    Tensor l = m->forward(s, head);
    ASSERT_LE(max_diff(l, pre, 4), 1e-4f * max_abs(pre)) << c.mode;
    size_t reps_last = s.trace(int(m->spec().n_layers) - 1)->selection.reps.size();
    for (size_t t = 4; t < ids.size(); ++t) {
      l = m->forward(s, std::vector<int32_t>{ids[t]});
      float worst = 0;
      for (int64_t v = 0; v < l.dim(1); ++v) worst = std::max(worst, std::fabs(l.data()[v] - pre.row(int64_t(t))[v]));
      ASSERT_LE(worst, 1e-4f * max_abs(pre)) << c.mode << " queries=" << int(c.q) << " step " << t;
    }
    const auto* tr = s.trace(int(m->spec().n_layers) - 1);
    EXPECT_EQ(tr->decode_tokens, int64_t(ids.size() - 4));
    EXPECT_EQ(tr->decode_reps + int64_t(reps_last), int64_t(ps.trace(int(m->spec().n_layers) - 1)->selection.reps.size()))
        << c.mode << ": decoding chooses as many representatives as the prefill of the same tokens";
    for (int l = 0; l < int(m->spec().n_layers); ++l)
      EXPECT_EQ(s.trace(l)->selection.reps, ps.trace(l)->selection.reps) << c.mode << " layer " << l;
  }
}

// SPEC 6: a window or sinks covering every token make all-queries ADA exact attention (every key
// seen once, at its position), whatever the selection.
TEST_P(AdaOnFixture, WindowOrSinksOverEveryTokenEqualExactAttention) {
  const test::Seed seed(13);
  auto m = Model::load(data_dir() / "models" / GetParam());
  std::vector<int32_t> ids = distinct_ids(m->spec().vocab_size, 16, seed.value());
  for (int i = 0; i < 8; ++i) ids.push_back(ids[size_t(i)]);
  const int64_t T = int64_t(ids.size());
  const Tensor exact = run(*m, ids, nullptr);
  for (auto [sinks, window] : {std::pair<int64_t, int64_t>{0, T}, {T, 0}, {0, 2 * T}}) {
    AdaOptions o = ada(0.8, "cascade", AdaQueries::all);
    o.sinks = sinks;
    o.window = window;
    const AdaAttentionFactory f(o);
    const Tensor got = run(*m, ids, &f);
    EXPECT_LE(max_diff(got, exact, T), 1e-5f * max_abs(exact) + 1e-6f) << "sinks " << sinks << " window " << window;
  }
}

// Invariant 5: appending tokens never changes the decisions or logits of earlier positions.
TEST_P(AdaOnFixture, AppendingTokensChangesNoEarlierPosition) {
  const test::Seed seed(11);
  auto m = Model::load(data_dir() / "models" / GetParam());
  std::vector<int32_t> ids = distinct_ids(m->spec().vocab_size, 16, seed.value());
  for (int i = 0; i < 8; ++i) ids.push_back(ids[size_t(i)]);
  const AdaAttentionFactory f(ada(0.5));
  Sequence whole = m->new_sequence(&f);
  const Tensor all = m->forward(whole, ids);
  const std::vector<int32_t> prefix(ids.begin(), ids.begin() + 13);
  Sequence part = m->new_sequence(&f);
  const Tensor pre = m->forward(part, prefix);
  EXPECT_LE(max_diff(pre, all, 13), 1e-4f * max_abs(all));
  for (int l = 0; l < int(m->spec().n_layers); ++l) {
    const auto& a = whole.trace(l)->selection;
    const auto& b = part.trace(l)->selection;
    for (int t = 0; t < 13; ++t) ASSERT_EQ(a.parent[size_t(t)], b.parent[size_t(t)]) << "layer " << l << " token " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, AdaOnFixture, ::testing::Values("gpt2", "opt_postln", "gptj", "neox", "llama_gqa"),
                         [](const auto& info) { return std::string(info.param); });

// --ada-dense-layers K: layers below K are exact attention and traced as keeping every token; a K at
// or past the model's depth is exact attention everywhere (clamped, not an error).
TEST_P(AdaOnFixture, DenseLayersAreExactAttention) {
  auto m = Model::load(data_dir() / "models" / GetParam());
  std::vector<int32_t> ids = distinct_ids(m->spec().vocab_size, 20, 5);
  for (int i = 0; i < 8; ++i) ids.push_back(ids[size_t(i * 2)]);
  const int64_t L = m->spec().n_layers, T = int64_t(ids.size());
  const Tensor exact = run(*m, ids, nullptr);
  for (int64_t K : {L, L + 3}) {
    AdaOptions o = ada(0.8);
    o.dense_layers = K;
    const AdaAttentionFactory f(o);
    Sequence s = m->new_sequence(&f);
    const Tensor got = m->forward(s, ids);
    EXPECT_EQ(max_diff(got, exact, T), 0.f) << "K = " << K;
    for (int l = 0; l < int(L); ++l) EXPECT_EQ(int64_t(s.trace(l)->selection.reps.size()), T) << "K = " << K << " layer " << l;
  }
  // K = 1: layer 0 keeps all; layer 1 selects from scratch (its set is the full selection's even under
  // inherit, which would otherwise keep the dense layer's every token).
  AdaOptions o = ada(0.8, "inherit");
  o.dense_layers = 1;
  const AdaAttentionFactory f(o);
  Sequence s = m->new_sequence(&f);
  (void)m->forward(s, ids);
  EXPECT_EQ(int64_t(s.trace(0)->selection.reps.size()), T);
  EXPECT_LT(int64_t(s.trace(1)->selection.reps.size()), T);
  EXPECT_EQ(s.trace(1)->selection.cost.needed, T * (T - 1) / 2) << "layer 1 runs the full selection";
  EXPECT_TRUE(s.trace(1)->selection.trace.full_gram);
}

TEST(AdaOptions, BadCombinationsAreErrors) {
  AdaOptions o = ada(0.3, "cascade");
  o.select.rule = select::Rule::all_earlier;
  EXPECT_THROW(AdaAttentionFactory{o}, Error);
  o.select.rule = select::Rule::span;  // span has an exact cascade
  EXPECT_NO_THROW(AdaAttentionFactory{o});
  o.dense_layers = -1;
  EXPECT_THROW(AdaAttentionFactory{o}, Error);
  EXPECT_THROW(parse_ada_features("values"), Error);
  EXPECT_THROW(AdaAttentionFactory{ada(1.0)}, Error);
  EXPECT_THROW(AdaAttentionFactory{ada(-0.1)}, Error);
  AdaOptions lstsq_all = ada(0.3, "cascade", AdaQueries::all), sinks_reps = ada(0.3), window_reps = ada(0.3),
             negative = ada(0.3, "cascade", AdaQueries::all);
  lstsq_all.reconstruct = AdaReconstruct::lstsq;
  sinks_reps.sinks = 4;
  window_reps.window = 8;
  negative.window = -1;
  for (const AdaOptions& bad : {lstsq_all, sinks_reps, window_reps, negative}) EXPECT_THROW(AdaAttentionFactory{bad}, Error);
  auto m = Model::load(data_dir() / "models" / "llama");
  const AdaAttentionFactory f(ada(0.3, "random:1"));
  Sequence s = m->new_sequence(&f);
  m->forward(s, std::vector<int32_t>{1, 2, 3});
  EXPECT_THROW(m->forward(s, std::vector<int32_t>{4}), Error);  // random is prefill-only
}

// Invariant 1 on a real model: along the ADA trajectory the exact cascade picks exactly the full
// selection's set and parents at every layer (stories260K on WikiText-2 and TinyShakespeare windows).
TEST(AdaStories260K, ExactCascadeEqualsFullSelectionAtEveryLayer) {
  const auto model = test::bundled_model_dir() / "stories260K.bin";
  const auto tok_path = test::bundled_model_dir() / "tok512.bin";
  CASCADE_REQUIRE_SHARED(wiki, "data/wikitext-2-raw/wiki.test.raw");
  CASCADE_REQUIRE_SHARED(shakespeare, "data/tinyshakespeare/input.txt");
  auto m = Model::load(model);
  auto tok = load_tokenizer(tok_path);
  int64_t changes = 0;
  for (const auto& text_path : {wiki, shakespeare}) {
    std::ifstream in(text_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const auto ids = tok->encode(ss.str().substr(0, 40000), true);
    for (int64_t w0 : {0, 3000, 6000}) {
      const std::vector<int32_t> win(ids.begin() + w0, ids.begin() + w0 + 256);
      for (double tau : {0.2, 0.3, 0.5}) {
        const AdaAttentionFactory full(ada(tau, "full")), casc(ada(tau, "cascade"));
        Sequence a = m->new_sequence(&full), b = m->new_sequence(&casc);
        const Tensor la = m->forward(a, win), lb = m->forward(b, win);
        for (int l = 0; l < int(m->spec().n_layers); ++l) {
          const auto& sa = a.trace(l)->selection;
          const auto& sb = b.trace(l)->selection;
          ASSERT_EQ(sa.reps, sb.reps) << text_path << " window " << w0 << " tau " << tau << " layer " << l;
          ASSERT_EQ(sa.parent, sb.parent);
          if (l > 0) {
            EXPECT_LE(sb.cost.needed, sa.cost.needed);
            changes += int64_t(sb.added.size() + sb.removed.size());
          }
        }
        EXPECT_EQ(max_diff(la, lb, la.dim(0)), 0.f);
      }
    }
  }
  EXPECT_GT(changes, 0) << "the cascade never had to add or remove a token: the test would not see a wrong cascade";
}

}  // namespace
}  // namespace cascade
