// The peer KV compression methods (attention/kv_press.h) against plain, slow statements of kvpress's
// definitions written here: the whole causal attention matrix in float64, then each method's score
// and a sort by (score descending, position ascending). On hand-made inputs, and on fixture models
// where every (layer, KV head)'s kept positions, every prefill row (exact attention) and every
// continuation row (attention over the kept entries and the tokens after them) are checked; budget
// 1 is exact attention; token-by-token decoding equals one chunked continuation.
// ada-kv (SPEC 6) the same way: its kept set is SPEC 1's greedy set of each layer's context features
// (support/selection_reference.h: the layer's input, or its keys), with dense layers, sinks and
// window; at tau = 0 it keeps every token but exact duplicates.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "attention/kv_press.h"
#include "attention/projections.h"
#include "core/error.h"
#include "model/model.h"
#include "ops/rotary.h"
#include "support/selection_reference.h"
#include "support/test_paths.h"

namespace cascade {
namespace {

using press::Method;
constexpr double kInf = std::numeric_limits<double>::infinity();
const std::vector<Method> kMethods = {Method::streaming, Method::snapkv, Method::tova,  Method::h2o,
                                      Method::knorm,     Method::random, Method::expected_attention};

// One layer's context: Q and K after rotary, V, and (expected-attention) Q before rotary with the
// layer's rotary (q_pre empty and no rotary: the same as q).
struct Qk {
  int64_t n = 0, heads = 0, kv_heads = 0, hd = 0;
  std::vector<float> q, k;
  double scale = 1;
  std::vector<float> v, q_pre;
  const ops::Rotary* rotary = nullptr;
  press::Context context() const { return {n, heads, kv_heads, hd, q.data(), k.data(), scale, v.data(), rotary}; }
  int64_t group() const { return heads / kv_heads; }
  const std::vector<float>& queries_before_rotary() const { return q_pre.empty() ? q : q_pre; }
};

Qk random_qk(int64_t n, int64_t heads, int64_t kv_heads, int64_t hd, unsigned seed) {
  Qk x{n, heads, kv_heads, hd, std::vector<float>(size_t(n * heads * hd)), std::vector<float>(size_t(n * kv_heads * hd)),
       1 / std::sqrt(double(hd)), std::vector<float>(size_t(n * kv_heads * hd)), {}, nullptr};
  std::mt19937 g(seed);
  std::normal_distribution<float> z(0.f, 1.5f);
  for (float& v : x.q) v = z(g);
  for (float& v : x.k) v = z(g);
  for (float& v : x.v) v = z(g);
  return x;
}

// expected_attention_press.py stated plainly, per KV head [n]: the rotation of each future position
// as the matrix whose columns are rotary applied to the unit vectors there, averaged; the mean and
// covariance of the queries before rotary past the sinks; each entry past the sinks scored by the
// formula, a softmax per query head, the group's mean, times ||v||; the sinks one above the maximum.
std::vector<std::vector<double>> expected_attention_reference(const Qk& x, const press::Params& p) {
  const int64_t n = x.n, hd = x.hd, m = n - p.n_sink, G = x.group();
  std::vector<double> R(size_t(hd * hd), 0.0);
  for (int64_t t = n; t < n + p.n_future; ++t)
    for (int64_t col = 0; col < hd; ++col) {
      std::vector<float> e(size_t(hd), 0.f);
      e[size_t(col)] = 1;
      if (x.rotary) x.rotary->apply(e.data(), 1, hd, 1, hd, &t);
      for (int64_t row = 0; row < hd; ++row) R[size_t(row * hd + col)] += double(e[size_t(row)]) / double(p.n_future);
    }
  const std::vector<float>& q = x.queries_before_rotary();
  std::vector<std::vector<double>> per_head(size_t(x.heads), std::vector<double>(size_t(m)));
  for (int64_t h = 0; h < x.heads; ++h) {
    auto qv = [&](int64_t t, int64_t d) { return double(q[size_t((t * x.heads + h) * hd + d)]); };
    std::vector<double> mu(size_t(hd), 0.0), S(size_t(hd * hd), 0.0), mu2(size_t(hd), 0.0), S2(size_t(hd * hd), 0.0);
    for (int64_t t = p.n_sink; t < n; ++t)
      for (int64_t d = 0; d < hd; ++d) mu[size_t(d)] += qv(t, d) / double(m);
    for (int64_t t = p.n_sink; t < n; ++t)
      for (int64_t a = 0; a < hd; ++a)
        for (int64_t b = 0; b < hd; ++b) S[size_t(a * hd + b)] += (qv(t, a) - mu[size_t(a)]) * (qv(t, b) - mu[size_t(b)]) / double(m);
    for (int64_t a = 0; a < hd; ++a)
      for (int64_t b = 0; b < hd; ++b) {
        mu2[size_t(a)] += R[size_t(a * hd + b)] * mu[size_t(b)];
        for (int64_t c = 0; c < hd; ++c)
          for (int64_t e = 0; e < hd; ++e) S2[size_t(a * hd + b)] += R[size_t(a * hd + c)] * S[size_t(c * hd + e)] * R[size_t(b * hd + e)];
      }
    std::vector<double>& s = per_head[size_t(h)];
    for (int64_t j = 0; j < m; ++j) {
      auto kv = [&](int64_t d) { return double(x.k[size_t(((p.n_sink + j) * x.kv_heads + h / G) * hd + d)]); };
      double lin = 0, quad = 0;
      for (int64_t a = 0; a < hd; ++a) {
        lin += mu2[size_t(a)] * kv(a);
        for (int64_t b = 0; b < hd; ++b) quad += kv(a) * S2[size_t(a * hd + b)] * kv(b);
      }
      s[size_t(j)] = lin / std::sqrt(double(hd)) + quad / double(hd) / 2;
    }
    const double mx = *std::max_element(s.begin(), s.end());
    double sum = 0;
    for (double e : s) sum += std::exp(e - mx);
    for (double& e : s) e = std::exp(e - mx) / sum;
  }
  std::vector<std::vector<double>> score(size_t(x.kv_heads), std::vector<double>(size_t(n), 0.0));
  double top = -kInf;
  for (int64_t g = 0; g < x.kv_heads; ++g)
    for (int64_t j = 0; j < m; ++j) {
      double mean = 0, vv = 0;
      for (int64_t h = g * G; h < (g + 1) * G; ++h) mean += per_head[size_t(h)][size_t(j)] / double(G);
      for (int64_t d = 0; d < hd; ++d) vv += std::pow(double(x.v[size_t(((p.n_sink + j) * x.kv_heads + g) * hd + d)]), 2);
      score[size_t(g)][size_t(p.n_sink + j)] = mean * std::sqrt(vv);
      top = std::max(top, mean * std::sqrt(vv));
    }
  for (auto& row : score)
    for (int64_t j = 0; j < p.n_sink; ++j) row[size_t(j)] = top + 1;
  return score;
}

// A[h][i][j]: query head h's causal softmax at query i (zero for j > i).
std::vector<std::vector<std::vector<double>>> attention_matrix(const Qk& x) {
  std::vector<std::vector<std::vector<double>>> a(size_t(x.heads), std::vector<std::vector<double>>(size_t(x.n), std::vector<double>(size_t(x.n), 0.0)));
  for (int64_t h = 0; h < x.heads; ++h)
    for (int64_t i = 0; i < x.n; ++i) {
      std::vector<double> logit(size_t(i + 1));
      for (int64_t j = 0; j <= i; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < x.hd; ++d)
          dot += double(x.q[size_t((i * x.heads + h) * x.hd + d)]) * double(x.k[size_t((j * x.kv_heads + h / x.group()) * x.hd + d)]);
        logit[size_t(j)] = dot * x.scale;
      }
      const double mx = *std::max_element(logit.begin(), logit.end());
      double sum = 0;
      for (double l : logit) sum += std::exp(l - mx);
      for (int64_t j = 0; j <= i; ++j) a[size_t(h)][size_t(i)][size_t(j)] = std::exp(logit[size_t(j)] - mx) / sum;
    }
  return a;
}

// The n_kept positions of highest score, earlier first among equals, in increasing order.
std::vector<int64_t> pick(const std::vector<double>& score, int64_t n_kept) {
  std::vector<std::pair<double, int64_t>> r;
  for (int64_t j = 0; j < int64_t(score.size()); ++j) r.push_back({-score[size_t(j)], j});
  std::sort(r.begin(), r.end());
  std::vector<int64_t> kept;
  for (int64_t t = 0; t < n_kept; ++t) kept.push_back(r[size_t(t)].second);
  std::sort(kept.begin(), kept.end());
  return kept;
}

// Per KV head, the positions each method keeps, from its definition.
std::vector<std::vector<int64_t>> reference_kept(Method m, const Qk& x, int64_t n_kept, const press::Params& p) {
  const int64_t n = x.n, G = x.group();
  std::vector<std::vector<int64_t>> kept;
  if (m == Method::streaming) {  // the first min(n_sink, n_kept) entries and the most recent others
    std::vector<int64_t> s;
    for (int64_t j = 0; j < std::min(p.n_sink, n_kept); ++j) s.push_back(j);
    for (int64_t j = n - std::max<int64_t>(0, n_kept - p.n_sink); j < n; ++j) s.push_back(j);
    return std::vector<std::vector<int64_t>>(size_t(x.kv_heads), s);
  }
  if (m == Method::expected_attention) {
    for (const auto& score : expected_attention_reference(x, p)) kept.push_back(pick(score, n_kept));
    return kept;
  }
  const auto A = (m == Method::knorm || m == Method::random) ? decltype(attention_matrix(x)){} : attention_matrix(x);
  std::mt19937_64 rng(p.seed);
  for (int64_t g = 0; g < x.kv_heads; ++g) {
    std::vector<double> score(size_t(n), 0.0);
    for (int64_t j = 0; j < n; ++j) {
      if (m == Method::snapkv) {
        const int64_t len = n - p.window;
        if (j >= len) { score[size_t(j)] = kInf; continue; }
        for (int64_t h = g * G; h < (g + 1) * G; ++h)
          for (int64_t t = j - p.kernel / 2; t <= j + p.kernel / 2; ++t) {
            if (t < 0 || t >= len) continue;  // zero padding, counted in the kernel's mean
            double observed = 0;
            for (int64_t i = len; i < n; ++i) observed += A[size_t(h)][size_t(i)][size_t(t)];
            score[size_t(j)] += observed / double(p.window) / double(p.kernel) / double(G);
          }
      } else if (m == Method::tova) {
        if (j == n - 1) { score[size_t(j)] = kInf; continue; }
        for (int64_t h = 0; h < x.heads; ++h) score[size_t(j)] += A[size_t(h)][size_t(n - 1)][size_t(j)] / double(x.heads);
      } else if (m == Method::h2o) {
        for (int64_t h = g * G; h < (g + 1) * G; ++h)
          for (int64_t i = j; i < n; ++i) score[size_t(j)] += A[size_t(h)][size_t(i)][size_t(j)] / double(n - j) / double(G);
      } else if (m == Method::knorm) {
        double ss = 0;
        for (int64_t d = 0; d < x.hd; ++d) ss += std::pow(double(x.k[size_t((j * x.kv_heads + g) * x.hd + d)]), 2);
        score[size_t(j)] = -std::sqrt(ss);
      } else {
        score[size_t(j)] = std::ldexp(double(rng() >> 11), -53);
      }
    }
    kept.push_back(pick(score, n_kept));
  }
  return kept;
}

std::vector<std::vector<int64_t>> engine_kept(Method m, const Qk& x, int64_t n_kept, const press::Params& p) {
  return press::top_positions(press::scores(m, x.context(), n_kept, p), x.kv_heads, x.n, n_kept);
}

TEST(KvPressRounding, KeptCountIsRoundHalfUpOfBudgetTimesContext) {
  EXPECT_EQ(press::kept_count(0.25, 10), 3);  // 2.5 rounds up
  EXPECT_EQ(press::kept_count(0.24, 10), 2);
  EXPECT_EQ(press::kept_count(0.08, 25), 2);  // kvpress's truncation of 1.9999999999999991 keeps 1
  EXPECT_EQ(press::kept_count(0.01, 100), 1);
  EXPECT_EQ(press::kept_count(0.004, 100), 0);
  EXPECT_EQ(press::kept_count(1.0, 77), 77);
}

// Inputs whose answer is known without any arithmetic.
TEST(KvPressHandMade, KnownAnswers) {
  press::Params p;
  Qk x = random_qk(10, 2, 1, 4, 1);
  // streaming: 4 sinks and the most recent.
  EXPECT_EQ(engine_kept(Method::streaming, x, 6, p)[0], (std::vector<int64_t>{0, 1, 2, 3, 8, 9}));
  EXPECT_EQ(engine_kept(Method::streaming, x, 2, p)[0], (std::vector<int64_t>{0, 1}));  // fewer than the sinks
  // knorm keeps the smallest keys: key j scaled by (10 - j), so the last ones.
  for (int64_t j = 0; j < x.n; ++j)
    for (int64_t d = 0; d < x.hd; ++d) x.k[size_t(j * x.hd + d)] = float(10 - j) * (d == 0 ? 1.f : 0.f);
  EXPECT_EQ(engine_kept(Method::knorm, x, 3, p)[0], (std::vector<int64_t>{7, 8, 9}));
  // tova: the last query of both heads is aligned with keys 2 and 5 only (and keeps itself).
  for (int64_t j = 0; j < x.n; ++j)
    for (int64_t d = 0; d < x.hd; ++d) x.k[size_t(j * x.hd + d)] = (j == 2 || j == 5) && d == 1 ? 8.f : 0.f;
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t d = 0; d < x.hd; ++d) x.q[size_t((9 * 2 + h) * x.hd + d)] = d == 1 ? 1.f : 0.f;
  EXPECT_EQ(engine_kept(Method::tova, x, 3, p)[0], (std::vector<int64_t>{2, 5, 9}));
  // snapkv keeps its whole window before anything else; the rest of the budget by pooled attention.
  p.window = 4;
  const auto snap = engine_kept(Method::snapkv, x, 5, p)[0];
  EXPECT_EQ(std::vector<int64_t>(snap.begin() + 1, snap.end()), (std::vector<int64_t>{6, 7, 8, 9}));
  // expected-attention: the sinks first, then by value norm times expected attention, so with every
  // value but entry 7's zero, entry 7.
  for (float& v : x.v) v = 0.f;
  x.v[size_t(7 * x.hd)] = 1.f;
  EXPECT_EQ(engine_kept(Method::expected_attention, x, 5, p)[0], (std::vector<int64_t>{0, 1, 2, 3, 7}));
  EXPECT_EQ(engine_kept(Method::expected_attention, x, 3, p)[0], (std::vector<int64_t>{0, 1, 2}));
  // Fewer than the minimum contexts kvpress asserts.
  EXPECT_THROW(press::scores(Method::snapkv, random_qk(4, 2, 1, 4, 2).context(), 2, p), Error);
  EXPECT_THROW(press::scores(Method::streaming, random_qk(4, 2, 1, 4, 2).context(), 2, p), Error);
  EXPECT_THROW(press::scores(Method::expected_attention, random_qk(4, 2, 1, 4, 2).context(), 2, p), Error);
}

// Random inputs (grouped-query, several budgets, a small snapkv window to reach the pooling's edges,
// and kvpress's own 64) against the definitions.
TEST(KvPressHandMade, EveryMethodMatchesItsDefinition) {
  for (const auto& [n, window] : std::vector<std::pair<int64_t, int64_t>>{{20, 8}, {80, 64}}) {
    const Qk x = random_qk(n, 6, 2, 8, unsigned(n));
    for (Method m : kMethods)
      for (int64_t n_kept : {int64_t(1), n / 4, n / 2, n - 1}) {
        press::Params p;
        p.window = window;
        p.seed = 11;
        if (m == Method::snapkv && n_kept <= window) continue;  // window ties: KnownAnswers and the fixtures
        EXPECT_EQ(engine_kept(m, x, n_kept, p), reference_kept(m, x, n_kept, p))
            << press::method_name(m) << " n=" << n << " kept=" << n_kept;
      }
  }
}

// ---- on fixture models

// Runs a method and records, per layer, the layer's input and output rows, its positions and its
// context, keeping the method's own layer reachable (kv_press_trace needs it).
class Recorder : public AttentionFactory {
 public:
  struct Layer {
    AttentionContext c;
    const LayerAttention* inner = nullptr;
    std::vector<float> x, out;
    std::vector<int64_t> pos;
  };
  explicit Recorder(const AttentionFactory& inner) : inner_(inner) {}
  std::vector<std::unique_ptr<LayerAttention>> make(const std::vector<AttentionContext>& layers) const override {
    auto inner = inner_.make(layers);
    layers_.assign(layers.size(), Layer{});
    std::vector<std::unique_ptr<LayerAttention>> out;
    for (size_t l = 0; l < layers.size(); ++l) {
      layers_[l].c = layers[l];
      layers_[l].inner = inner[l].get();
      out.push_back(std::make_unique<Recording>(std::move(inner[l]), layers_[l], layers[l].spec->d_model));
    }
    return out;
  }
  const std::vector<Layer>& layers() const { return layers_; }

 private:
  class Recording : public LayerAttention {
   public:
    Recording(std::unique_ptr<LayerAttention> inner, Layer& rec, int64_t d) : inner_(std::move(inner)), rec_(rec), d_(d) {}
    void forward(const float* x, int64_t n, const int64_t* pos, float* out) override {
      inner_->forward(x, n, pos, out);
      rec_.x.insert(rec_.x.end(), x, x + n * d_);
      rec_.out.insert(rec_.out.end(), out, out + n * d_);
      rec_.pos.insert(rec_.pos.end(), pos, pos + n);
    }
    int64_t cache_bytes() const override { return inner_->cache_bytes(); }

   private:
    std::unique_ptr<LayerAttention> inner_;
    Layer& rec_;
    int64_t d_;
  };
  const AttentionFactory& inner_;
  mutable std::vector<Layer> layers_;
};

std::vector<int32_t> random_ids(int64_t vocab, int n, unsigned seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int32_t> u(0, int32_t(vocab) - 1);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = u(g);
  return ids;
}

double max_abs(const float* a, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, double(std::fabs(a[i])));
  return m;
}

double max_diff(const float* a, const float* b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

// Every prefill row is exact attention and every continuation row attends to its KV head's kept
// entries (want) and to the continuation up to itself: the sub-layer output against float64 attention
// on the layer's recorded input.
void expect_attention_over_kept(const Recorder::Layer& r, const ArchSpec& a, int64_t C,
                                const std::vector<std::vector<int64_t>>& want, const std::string& what) {
  const int64_t hd = a.head_dim, H = a.n_heads, Hkv = a.n_kv_heads, qd = H * hd, kd = Hkv * hd, G = H / Hkv;
  const int64_t T = int64_t(r.pos.size());
  std::vector<float> q(size_t(T * qd)), k(size_t(T * kd)), v(size_t(T * kd));
  project_qkv(r.c, r.x.data(), T, r.pos.data(), q.data(), k.data(), v.data());
  // The attention rows: key j is visible to row i when j <= i, and for a continuation row
  // when j is a kept entry of the head's KV head or a continuation token.
  std::vector<float> attn(size_t(T * qd));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t h = 0; h < H; ++h) {
      const auto& kept = want[size_t(h / G)];
      std::vector<int64_t> keys;
      for (int64_t j = 0; j <= i; ++j)
        if (i < C || j >= C || std::binary_search(kept.begin(), kept.end(), j)) keys.push_back(j);
      std::vector<double> w;
      for (int64_t j : keys) {
        double dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += double(q[size_t(i * qd + h * hd + d)]) * double(k[size_t(j * kd + (h / G) * hd + d)]);
        w.push_back(dot * attention_scale(a));
      }
      const double mx = *std::max_element(w.begin(), w.end());
      double sum = 0;
      for (double& e : w) sum += (e = std::exp(e - mx));
      for (int64_t d = 0; d < hd; ++d) {
        double o = 0;
        for (size_t t = 0; t < keys.size(); ++t) o += w[t] / sum * double(v[size_t(keys[t] * kd + (h / G) * hd + d)]);
        attn[size_t(i * qd + h * hd + d)] = float(o);
      }
    }
  std::vector<float> out(size_t(T * a.d_model));
  project_out(r.c, attn.data(), T, out.data());
  EXPECT_LE(max_diff(out.data(), r.out.data(), T * a.d_model), 1e-4 * max_abs(out.data(), T * a.d_model))
      << what;
}

KvPressOptions options(Method m, double budget) {
  KvPressOptions o;
  o.method = m;
  o.budget = budget;
  o.params.seed = 5;
  return o;
}

class KvPressOnFixture : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { m_ = Model::load(test::data_dir() / "models" / GetParam()); }
  std::vector<int32_t> ids(int n, unsigned seed) const { return random_ids(m_->spec().vocab_size, n, seed); }
  std::unique_ptr<Model> m_;
  static constexpr int kContext = 100, kContinuation = 20;
};

// Each layer's kept positions per KV head are the definition's on that layer's Q and K; every
// prefill row is exact attention and every continuation row attends to its KV head's kept entries
// and to the continuation up to itself (the sub-layer output, against float64 attention).
TEST_P(KvPressOnFixture, KeptEntriesAndAttentionFollowTheDefinitions) {
  const ArchSpec& a = m_->spec();
  const int64_t C = kContext, T = kContext + kContinuation, hd = a.head_dim, H = a.n_heads, Hkv = a.n_kv_heads;
  const int64_t qd = H * hd, kd = Hkv * hd;
  const auto context = ids(kContext, 1), continuation = ids(kContinuation, 2);
  for (Method m : kMethods)
    for (double budget : {0.25, 0.7, 0.01}) {
      const std::string what = std::string(press::method_name(m)) + " budget " + std::to_string(budget);
      const KvPressFactory f(options(m, budget));
      const Recorder rec(f);
      Sequence s = m_->new_sequence(&rec);
      (void)m_->forward(s, context);
      (void)m_->forward(s, continuation);
      for (int l = 0; l < int(a.n_layers); ++l) {
        const Recorder::Layer& r = rec.layers()[size_t(l)];
        // The context's Q, K and V projected from its C rows, as the layer's prefill did (a GEMM of
        // other rows may round differently), and Q again without rotary.
        Qk x{C, H, Hkv, hd, std::vector<float>(size_t(C * qd)), std::vector<float>(size_t(C * kd)), double(attention_scale(a)),
             std::vector<float>(size_t(C * kd)), std::vector<float>(size_t(C * qd)), r.c.rotary};
        project_qkv(r.c, r.x.data(), C, r.pos.data(), x.q.data(), x.k.data(), x.v.data());
        AttentionContext before_rotary = r.c;
        const ops::Rotary none;
        before_rotary.rotary = &none;
        std::vector<float> unused(size_t(C * kd));
        project_qkv(before_rotary, r.x.data(), C, r.pos.data(), x.q_pre.data(), unused.data(), unused.data());
        const int64_t n_kept = press::kept_count(budget, C);
        const auto want = reference_kept(m, x, n_kept, options(m, budget).params);
        const KvPressTrace* trace = kv_press_trace(r.inner);
        ASSERT_NE(trace, nullptr);
        EXPECT_EQ(trace->context, C);
        EXPECT_EQ(trace->kept, want) << what << " layer " << l;
        EXPECT_DOUBLE_EQ(trace->kept_fraction(), double(n_kept) / double(C));
        EXPECT_EQ(r.inner->cache_bytes(), int64_t(sizeof(float)) * 2 * Hkv * (n_kept + kContinuation) * hd);
        expect_attention_over_kept(r, a, C, want, what + " layer " + std::to_string(l));
      }
    }
}

// Budget 1 keeps every entry: exact attention over the context and the continuation.
TEST_P(KvPressOnFixture, BudgetOneIsExactAttention) {
  const auto context = ids(kContext, 3), continuation = ids(kContinuation, 4);
  Sequence exact = m_->new_sequence();
  const Tensor e0 = m_->forward(exact, context), e1 = m_->forward(exact, continuation);
  for (Method m : kMethods) {
    const KvPressFactory f(options(m, 1.0));
    Sequence s = m_->new_sequence(&f);
    const Tensor g0 = m_->forward(s, context), g1 = m_->forward(s, continuation);
    EXPECT_LE(max_diff(g0.data(), e0.data(), e0.numel()), 1e-5 * max_abs(e0.data(), e0.numel())) << press::method_name(m);
    EXPECT_LE(max_diff(g1.data(), e1.data(), e1.numel()), 1e-5 * max_abs(e1.data(), e1.numel())) << press::method_name(m);
    EXPECT_EQ(s.cache_bytes(), exact.cache_bytes());
  }
}

// Token-by-token decoding after a compressed prefill equals one chunked forward of the same
// continuation on the same compressed cache; also where round(F C) keeps 1 entry, or none.
TEST_P(KvPressOnFixture, DecodingEqualsOneChunkedContinuation) {
  const auto context = ids(kContext, 5), continuation = ids(kContinuation, 6);
  for (Method m : kMethods)
    for (double budget : {0.25, 0.01, 0.004}) {
      const KvPressFactory f(options(m, budget));
      Sequence chunked = m_->new_sequence(&f), stepped = m_->new_sequence(&f);
      (void)m_->forward(chunked, context);
      (void)m_->forward(stepped, context);
      const Tensor want = m_->forward(chunked, continuation);
      const int64_t V = want.dim(1);
      for (int64_t t = 0; t < kContinuation; ++t) {
        const Tensor got = m_->forward(stepped, std::span<const int32_t>(&continuation[size_t(t)], 1));
        EXPECT_LE(max_diff(got.data(), want.data() + t * V, V), 1e-4 * max_abs(want.data() + t * V, V))
            << press::method_name(m) << " budget " << budget << " token " << t;
      }
      EXPECT_EQ(stepped.cache_bytes(), chunked.cache_bytes());
    }
}

// ---- ada-kv

KvPressOptions ada_kv(double tau, AdaFeatures features = AdaFeatures::hidden, select::Mode mode = select::Mode::cascade,
                      int64_t dense = 0, int64_t sinks = 0, int64_t window = 0, select::Rule rule = select::Rule::greedy) {
  AdaKvOptions o;
  o.ada.select.tau = tau;
  o.ada.select.rule = rule;
  o.ada.features = features;
  o.ada.mode.mode = mode;
  o.ada.dense_layers = dense;
  o.sinks = sinks;
  o.window = window;
  KvPressOptions p;
  p.ada_kv = o;
  return p;
}

// The kept positions of each layer of a context of C tokens, from the plain greedy reference on the
// layer's recorded input (or its keys): every token in a dense layer; the full selection's set at the
// first selecting layer and, through the exact cascade, at every later one (inherit: the layer
// below's); the sinks and the window added.
std::vector<std::vector<int64_t>> ada_kv_reference(const Recorder& rec, const ArchSpec& a, const AdaKvOptions& o, int64_t C,
                                                   const std::string& what) {
  std::vector<std::vector<int64_t>> kept;
  std::vector<int32_t> reps;
  for (int l = 0; l < int(a.n_layers); ++l) {
    const Recorder::Layer& r = rec.layers()[size_t(l)];
    std::vector<int64_t> keep;
    if (l < o.ada.dense_layers) {
      for (int64_t t = 0; t < C; ++t) keep.push_back(t);
      kept.push_back(keep);
      continue;
    }
    if (l == o.ada.dense_layers || o.ada.mode.mode != select::Mode::inherit) {
      const int64_t kd = a.n_kv_heads * a.head_dim;
      std::vector<float> q(size_t(C * a.n_heads * a.head_dim)), k(size_t(C * kd)), v(size_t(C * kd));
      project_qkv(r.c, r.x.data(), C, r.pos.data(), q.data(), k.data(), v.data());
      const bool keys = o.ada.features == AdaFeatures::keys;
      const test::PlainSelection p = test::plain_greedy(keys ? k.data() : r.x.data(), C, keys ? kd : a.d_model,
                                                        o.ada.select.similarity == select::Similarity::pearson, o.ada.select.tau);
      EXPECT_GT(p.margin, 1e-12) << what << " layer " << l << ": a reference decision at the threshold";
      reps = p.reps;
    }
    for (int64_t t = 0; t < C; ++t)
      if (std::binary_search(reps.begin(), reps.end(), int32_t(t)) || t < o.sinks || t >= C - o.window) keep.push_back(t);
    kept.push_back(keep);
  }
  return kept;
}

// Each layer keeps, for every KV head, the reference's set of its context, and attends as the
// peers do: the context exactly, the continuation over the kept entries and itself.
TEST_P(KvPressOnFixture, AdaKvKeepsTheSelectionOfTheContext) {
  const ArchSpec& a = m_->spec();
  const int64_t C = kContext;
  const auto context = ids(kContext, 7), continuation = ids(kContinuation, 8);
  using F = AdaFeatures;
  using M = select::Mode;
  for (const KvPressOptions& o : {ada_kv(0.5), ada_kv(0.8, F::keys), ada_kv(0.5, F::hidden, M::full, 0, 2, 3),
                                  ada_kv(0.8, F::keys, M::inherit, 1, 1, 0)}) {
    const AdaKvOptions& ak = *o.ada_kv;
    const std::string what = std::string(ak.ada.features == F::keys ? "keys" : "hidden") + " tau " +
                             std::to_string(ak.ada.select.tau) + " " + select::to_string(ak.ada.mode) + " dense " +
                             std::to_string(ak.ada.dense_layers) + " sinks " + std::to_string(ak.sinks) + " window " +
                             std::to_string(ak.window);
    const KvPressFactory f(o);
    const Recorder rec(f);
    Sequence s = m_->new_sequence(&rec);
    (void)m_->forward(s, context);
    (void)m_->forward(s, continuation);
    const auto want = ada_kv_reference(rec, a, ak, C, what);
    int64_t kept_total = 0;
    for (int l = 0; l < int(a.n_layers); ++l) {
      const Recorder::Layer& r = rec.layers()[size_t(l)];
      const KvPressTrace* trace = kv_press_trace(r.inner);
      ASSERT_NE(trace, nullptr);
      const std::vector<std::vector<int64_t>> heads(size_t(a.n_kv_heads), want[size_t(l)]);
      EXPECT_EQ(trace->kept, heads) << what << " layer " << l;
      EXPECT_DOUBLE_EQ(trace->kept_fraction(), double(want[size_t(l)].size()) / double(C)) << what << " layer " << l;
      EXPECT_EQ(r.inner->cache_bytes(),
                int64_t(sizeof(float)) * 2 * a.n_kv_heads * (int64_t(want[size_t(l)].size()) + kContinuation) * a.head_dim);
      expect_attention_over_kept(r, a, C, heads, what + " layer " + std::to_string(l));
      kept_total += int64_t(want[size_t(l)].size());
    }
    EXPECT_LT(kept_total, C * a.n_layers) << what << ": nothing dropped, the case tests little";
  }
}

// tau = 0: only exact duplicates are redundant. Distinct ids have none (learned positions or not),
// so every entry is kept and the logits are exact attention's.
TEST_P(KvPressOnFixture, AdaKvAtTauZeroWithoutDuplicatesIsExact) {
  std::vector<int32_t> all(size_t(m_->spec().vocab_size));
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), std::mt19937(9));
  const std::vector<int32_t> context(all.begin(), all.begin() + kContext),
      continuation(all.begin() + kContext, all.begin() + kContext + kContinuation);
  Sequence exact = m_->new_sequence();
  const Tensor e0 = m_->forward(exact, context), e1 = m_->forward(exact, continuation);
  for (AdaFeatures feat : {AdaFeatures::hidden, AdaFeatures::keys}) {
    const KvPressFactory f(ada_kv(0.0, feat));
    Sequence s = m_->new_sequence(&f);
    const Tensor g0 = m_->forward(s, context), g1 = m_->forward(s, continuation);
    EXPECT_LE(max_diff(g0.data(), e0.data(), e0.numel()), 1e-5 * max_abs(e0.data(), e0.numel()));
    EXPECT_LE(max_diff(g1.data(), e1.data(), e1.numel()), 1e-5 * max_abs(e1.data(), e1.numel()));
    EXPECT_EQ(s.cache_bytes(), exact.cache_bytes());
  }
}

// Token-by-token decoding on ada-kv's cache equals one chunked continuation.
TEST_P(KvPressOnFixture, AdaKvDecodingEqualsOneChunkedContinuation) {
  const auto context = ids(kContext, 10), continuation = ids(kContinuation, 11);
  for (const KvPressOptions& o : {ada_kv(0.8), ada_kv(0.5, AdaFeatures::keys, select::Mode::cascade, 1, 4, 8, select::Rule::span)}) {
    const KvPressFactory f(o);
    Sequence chunked = m_->new_sequence(&f), stepped = m_->new_sequence(&f);
    (void)m_->forward(chunked, context);
    (void)m_->forward(stepped, context);
    const Tensor want = m_->forward(chunked, continuation);
    const int64_t V = want.dim(1);
    for (int64_t t = 0; t < kContinuation; ++t) {
      const Tensor got = m_->forward(stepped, std::span<const int32_t>(&continuation[size_t(t)], 1));
      EXPECT_LE(max_diff(got.data(), want.data() + t * V, V), 1e-4 * max_abs(want.data() + t * V, V)) << "token " << t;
    }
    EXPECT_EQ(stepped.cache_bytes(), chunked.cache_bytes());
    EXPECT_LT(chunked.cache_bytes(), [&] {
      Sequence e = m_->new_sequence();
      (void)m_->forward(e, context);
      (void)m_->forward(e, continuation);
      return e.cache_bytes();
    }());
  }
}

// tau = 0 on a rotary model (the layer-0 input of a repeated id equals its first occurrence's, whatever
// its position): layer 0 keeps exactly the first occurrences; every layer keeps the reference's set.
TEST(AdaKv, TauZeroKeepsExactlyTheNonDuplicates) {
  auto m = Model::load(test::data_dir() / "models" / "llama_gqa");
  std::vector<int32_t> context = random_ids(m->spec().vocab_size, 60, 12);
  for (int i = 0; i < 20; ++i) context.push_back(context[size_t(3 + 2 * i)]);  // 20 planted repeats
  std::vector<int64_t> first;
  for (int64_t t = 0; t < int64_t(context.size()); ++t)
    if (std::find(context.begin(), context.begin() + t, context[size_t(t)]) == context.begin() + t) first.push_back(t);
  ASSERT_LE(first.size(), context.size() - 20);
  const KvPressFactory f(ada_kv(0.0));
  const Recorder rec(f);
  Sequence s = m->new_sequence(&rec);
  (void)m->forward(s, context);
  EXPECT_EQ(kv_press_trace(rec.layers()[0].inner)->kept[0], first);
  const auto want = ada_kv_reference(rec, m->spec(), *f.options().ada_kv, int64_t(context.size()), "tau 0 duplicates");
  for (int l = 0; l < int(m->spec().n_layers); ++l)
    EXPECT_EQ(kv_press_trace(rec.layers()[size_t(l)].inner)->kept[1], want[size_t(l)]) << "layer " << l;
}

TEST(AdaKv, BadOptionsAreRefused) {
  KvPressOptions o = ada_kv(0.3);
  o.ada_kv->sinks = -1;
  EXPECT_THROW(KvPressFactory{o}, Error);
  o = ada_kv(0.3, AdaFeatures::hidden, select::Mode::cascade);
  o.ada_kv->ada.select.rule = select::Rule::all_earlier;
  EXPECT_THROW(KvPressFactory{o}, Error);  // the exact cascade cannot decide all-earlier
  o.ada_kv->ada.select.tau = 1.0;
  EXPECT_THROW(KvPressFactory{o}, Error);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, KvPressOnFixture, ::testing::Values("llama_gqa", "gpt2", "gptj"));

}  // namespace
}  // namespace cascade
