// The `span` selection rule (SPEC 6; select/span_basis.h) against a plain statement written here: for
// each token t in order, the Gram matrix of the representatives before it and their inner products
// with t, formed by plain loops in long double, the normal equations G c = g solved by Gaussian
// elimination with partial pivoting, ||P z_t||^2 = g . c, and t redundant when that reaches 1 - tau^2
// (parent: the representative of largest rho, the earliest among equals). No Cholesky, no BLAS.
// Held against it: the full selection, the exact cascade from several layers below, the capped
// cascade, and token-by-token decoding, on hand-made vectors (exact and near-threshold dependence,
// anti-correlation, zero rows), random planted near-duplicates, and the real features of
// stories260K (every layer's input on the sample text).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "attention/attention_tap.h"
#include "attention/exact_attention.h"
#include "core/error.h"
#include "model/model.h"
#include "select/incremental.h"
#include "select/selection.h"
#include "support/test_paths.h"
#include "tokenizer/tokenizer.h"

namespace cascade::select {
namespace {

using LD = long double;

struct RefSel {
  std::vector<int32_t> reps, parent;
  std::vector<LD> proj;  // ||P z_t||^2 of every token (0 for token 0)
};

// ||P z||^2 for P the projection onto span{rows s in set} of z [T, d]: the normal equations, solved
// plainly; a zero row of the set spans nothing and is left out.
LD projection(const std::vector<double>& z, int64_t d, const std::vector<int32_t>& set, int64_t t) {
  auto dot = [&](int64_t a, int64_t b) {
    LD s = 0;
    for (int64_t i = 0; i < d; ++i) s += LD(z[size_t(a * d + i)]) * LD(z[size_t(b * d + i)]);
    return s;
  };
  std::vector<int32_t> basis;
  for (int32_t s : set)
    if (dot(s, s) > 0) basis.push_back(s);
  const size_t m = basis.size();
  std::vector<std::vector<LD>> a(m, std::vector<LD>(m + 1));  // [G | g]
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < m; ++j) a[i][j] = dot(basis[i], basis[j]);
    a[i][m] = dot(basis[i], t);
  }
  const std::vector<std::vector<LD>> orig = a;
  for (size_t c = 0; c < m; ++c) {
    size_t p = c;
    for (size_t i = c + 1; i < m; ++i)
      if (std::fabs(a[i][c]) > std::fabs(a[p][c])) p = i;
    std::swap(a[c], a[p]);
    for (size_t i = c + 1; i < m; ++i) {
      const LD f = a[i][c] / a[c][c];
      for (size_t j = c; j <= m; ++j) a[i][j] -= f * a[c][j];
    }
  }
  std::vector<LD> x(m);
  for (size_t i = m; i-- > 0;) {
    LD s = a[i][m];
    for (size_t j = i + 1; j < m; ++j) s -= a[i][j] * x[j];
    x[i] = s / a[i][i];
  }
  LD proj = 0;
  for (size_t i = 0; i < m; ++i) proj += orig[i][m] * x[i];
  return proj;
}

RefSel ref_span(const Features& f, double tau) {
  const std::vector<double>& z = f.z;
  const LD theta = LD(1) - LD(tau) * LD(tau);
  RefSel out;
  out.parent.assign(size_t(f.T), 0);
  out.proj.assign(size_t(f.T), 0);
  out.reps = {0};
  for (int64_t t = 1; t < f.T; ++t) {
    int32_t best = -1;
    LD best_rho = -10;
    for (int32_t s : out.reps) {
      LD v = 0;
      for (int64_t i = 0; i < f.d; ++i) v += LD(z[size_t(t * f.d + i)]) * LD(z[size_t(s * f.d + i)]);
      if (v > best_rho) best_rho = v, best = s;
    }
    out.proj[size_t(t)] = projection(z, f.d, out.reps, t);
    if (out.proj[size_t(t)] >= theta - LD(kRhoSlack)) {
      out.parent[size_t(t)] = best;
    } else {
      out.parent[size_t(t)] = int32_t(t);
      out.reps.push_back(int32_t(t));
    }
  }
  return out;
}

Options span_opts(double tau) {
  Options o;
  o.tau = tau;
  o.rule = Rule::span;
  return o;
}

// Rows given as they are (unit or zero), bypassing normalize().
Features rows(const std::vector<std::vector<double>>& v) {
  Features f;
  f.T = int64_t(v.size());
  f.d = int64_t(v[0].size());
  for (const auto& r : v) f.z.insert(f.z.end(), r.begin(), r.end());
  return f;
}

// The least distance of a token's projection from the decision threshold (a reference decision that
// close could go either way).
LD margin(const RefSel& r, double tau) {
  LD m = 10;
  for (size_t t = 1; t < r.proj.size(); ++t)
    m = std::min(m, std::fabs(r.proj[t] - (LD(1) - LD(tau) * LD(tau) - LD(kRhoSlack))));
  return m;
}

// Every way the engine reaches a span selection agrees with the reference on f; decoding too when
// the rows x that f normalises (with sim) are given.
void expect_all_paths(const Features& f, double tau, const std::string& what, const std::vector<float>* x = nullptr,
                      Similarity sim = Similarity::pearson) {
  const RefSel want = ref_span(f, tau);
  const Options o = span_opts(tau);
  const Selection full = run_full(f, o);
  EXPECT_EQ(full.reps, want.reps) << what << " full";
  EXPECT_EQ(full.parent, want.parent) << what << " full";
  // Exact cascades from different layers below: only token 0, every token, the answer itself, and
  // every other token.
  Selection below_one, below_all, below_half;
  below_one.parent.assign(size_t(f.T), 0);
  below_one.reps = {0};
  below_all.parent.resize(size_t(f.T));
  below_half.parent.resize(size_t(f.T));
  for (int32_t t = 0; t < int32_t(f.T); ++t) {
    below_all.reps.push_back(t), below_all.parent[size_t(t)] = t;
    below_half.parent[size_t(t)] = t % 2 ? t - 1 : t;
    if (t % 2 == 0) below_half.reps.push_back(t);
  }
  for (const Selection* below : std::vector<const Selection*>{&below_one, &below_all, &below_half, &full}) {
    const Selection c = run_cascade(f, *below, o);
    EXPECT_EQ(c.reps, want.reps) << what << " cascade from " << below->reps.size() << " reps";
    EXPECT_EQ(c.parent, want.parent) << what << " cascade from " << below->reps.size() << " reps";
    const Selection capped = run_capped(f, *below, o, 1);
    EXPECT_EQ(capped.reps, want.reps) << what << " capped:1 from " << below->reps.size() << " reps";
  }
  // Decoding: a prefill of the first third continued token by token.
  if (!x || f.T < 3) return;
  const int64_t p0 = f.T / 3;
  const std::vector<float>& src = *x;
  const Features head = normalize(src.data(), p0, f.d, sim);
  Options od = o;
  od.similarity = sim;
  IncrementalSelector inc(head, run_full(head, od), od);
  const Features whole = normalize(src.data(), f.T, f.d, sim);
  const Selection all = run_full(whole, od);
  for (int64_t t = p0; t < f.T; ++t) {
    const IncrementalSelector::Step st = inc.step(src.data() + t * f.d);
    EXPECT_EQ(st.is_rep, all.parent[size_t(t)] == t) << what << " decoding token " << t;
    EXPECT_EQ(st.parent, all.parent[size_t(t)]) << what << " decoding token " << t;
  }
}

TEST(SpanRule, HandMadeVectors) {
  const double s = std::sqrt(0.5);
  // e0, e1, then (e0 + e1)/sqrt 2: correlation 0.71 with each (a representative under greedy at any
  // tau below 0.54), but exactly in their span, so redundant under span even at tau = 0.
  const Features dependent = rows({{1, 0, 0}, {0, 1, 0}, {s, s, 0}, {0, 0, 1}});
  for (double tau : {0.0, 0.3}) {
    const Selection got = run_full(dependent, span_opts(tau));
    EXPECT_EQ(got.reps, (std::vector<int32_t>{0, 1, 3})) << "tau " << tau;
    EXPECT_EQ(got.parent[2], 0) << "the representative of largest rho, the earlier of two equal";
    Options greedy;
    greedy.tau = tau;
    EXPECT_EQ(run_full(dependent, greedy).reps, (std::vector<int32_t>{0, 1, 2, 3})) << "greedy, tau " << tau;
  }
  // Anti-correlated: -e0 lies in span{e0}; greedy (rho = -1) keeps it.
  const Features anti = rows({{1, 0}, {-1, 0}});
  EXPECT_EQ(run_full(anti, span_opts(0.3)).reps, (std::vector<int32_t>{0}));
  EXPECT_EQ(run_full(anti, Options{}).reps, (std::vector<int32_t>{0, 1}));
  // One representative: redundant iff rho^2 >= 1 - tau^2, i.e. rho >= 0.954 at tau 0.3, where greedy
  // asks rho >= 0.91. rho = 0.93 lies between.
  const double r = 0.93;
  const Features one = rows({{1, 0}, {r, std::sqrt(1 - r * r)}});
  EXPECT_EQ(run_full(one, span_opts(0.3)).reps, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(run_full(one, Options{}).reps, (std::vector<int32_t>{0}));
  // Near the threshold: z = a u + b e2 with u a unit vector in span{e0, e1}; ||P z||^2 = a^2 set to
  // theta +- 1e-7 (far above the float64 rounding, far below any other gap).
  for (double tau : {0.1, 0.3, 0.6})
    for (double delta : {1e-7, -1e-7}) {
      const double a = std::sqrt(1 - tau * tau + delta), b = std::sqrt(1 - a * a);
      const Features near = rows({{1, 0, 0}, {0.6, 0.8, 0}, {a * 0.28, a * 0.96, b}});
      const std::vector<int32_t> want = delta > 0 ? std::vector<int32_t>{0, 1} : std::vector<int32_t>{0, 1, 2};
      EXPECT_EQ(run_full(near, span_opts(tau)).reps, want) << "tau " << tau << " delta " << delta;
      expect_all_paths(near, tau, "near tau " + std::to_string(tau));
    }
  // A zero row: it correlates with nothing, so it is a representative, and it spans nothing.
  const Features zero = rows({{1, 0}, {0, 0}, {0, 1}, {s, s}});
  const Selection z = run_full(zero, span_opts(0.3));
  EXPECT_EQ(z.reps, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(z.parent[3], 0);
  // The same through every path, decoding from the rows as float32 (cosine keeps their direction; a
  // component 0 stays 0, so the exact dependence survives the rounding).
  for (const Features* f : {&dependent, &anti, &one, &zero}) {
    const std::vector<float> x(f->z.begin(), f->z.end());
    expect_all_paths(*f, 0.3, "hand-made", &x, Similarity::cosine);
  }
  const std::vector<float> xd(dependent.z.begin(), dependent.z.end());
  expect_all_paths(dependent, 0.0, "dependent, tau 0", &xd, Similarity::cosine);
}

// Random vectors in a few low-dimensional subspaces (so that spans fill up and tokens fall redundant
// without being near-duplicates of any one representative), and exact copies.
TEST(SpanRule, PlantedSubspacesMatchTheReference) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> g;
  for (const auto& [T, d, dim] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{60, 12, 3}, {200, 32, 6}, {300, 24, 5}}) {
    std::vector<std::vector<double>> basis(3, std::vector<double>(size_t(d * dim)));
    for (auto& b : basis)
      for (double& v : b) v = g(rng);
    std::vector<float> x(size_t(T * d));
    for (int64_t t = 0; t < T; ++t) {
      const auto& b = basis[rng() % 3];
      for (int64_t i = 0; i < d; ++i) {
        double v = 0;
        for (int64_t k = 0; k < dim; ++k) v += b[size_t(i * dim + k)] * g(rng);
        x[size_t(t * d + i)] = float(v + 0.05 * g(rng) * double(t % 4));  // every 4th token exactly in a subspace
      }
      if (t % 11 == 10) std::copy_n(&x[size_t((t - 7) * d)], d, &x[size_t(t * d)]);  // an exact copy
    }
    const Features f = normalize(x.data(), T, d, Similarity::pearson);
    for (double tau : {0.0, 0.1, 0.3, 0.5}) {
      const RefSel want = ref_span(f, tau);
      const std::string what = "T=" + std::to_string(T) + " tau " + std::to_string(tau);
      if (margin(want, tau) < 1e-11) {
        ADD_FAILURE() << what << ": a token within 1e-11 of the threshold; change the data";
        continue;
      }
      EXPECT_GT(want.reps.size(), 3u) << what;
      EXPECT_LT(want.reps.size(), size_t(T)) << what;
      expect_all_paths(f, tau, what, &x);
    }
  }
}

// The real features: every layer's input X_l of stories260K on the sample text (exact attention).
TEST(SpanRule, Stories260KFeaturesMatchTheReference) {
  auto m = Model::load(test::bundled_model_dir() / "stories260K.bin");
  std::ifstream in(test::data_dir() / "text" / "sample.txt");
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<int32_t> ids = load_tokenizer(test::bundled_model_dir() / "tok512.bin")->encode(ss.str(), true);
  ids.resize(std::min<size_t>(ids.size(), 100));
  const ExactAttentionFactory exact;
  const AttentionTap tap(exact);
  Sequence s = m->new_sequence(&tap);
  (void)m->forward(s, ids);
  const int64_t T = int64_t(ids.size()), d = m->spec().d_model;
  for (size_t l = 0; l < tap.records().size(); ++l) {
    const std::vector<float>& x = tap.records()[l].x;
    const Features f = normalize(x.data(), T, d, Similarity::pearson);
    for (double tau : {0.3, 0.6}) {
      const std::string what = "layer " + std::to_string(l) + " tau " + std::to_string(tau);
      const RefSel want = ref_span(f, tau);
      ASSERT_GE(margin(want, tau), 1e-11) << what << ": a token within 1e-11 of the threshold";
      expect_all_paths(f, tau, what, &x);
      std::printf("[ measured ] stories260K %s: span keeps %zu of %lld\n", what.c_str(), want.reps.size(), (long long)T);
    }
  }
}

TEST(SpanRule, ParsesAndNamesItself) {
  EXPECT_EQ(parse_rule("span"), Rule::span);
  EXPECT_EQ(to_string(Rule::span), "span");
  EXPECT_THROW(parse_rule("spans"), Error);
}

}  // namespace
}  // namespace cascade::select
