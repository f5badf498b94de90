// Token selection (src/select): every answer is checked against an independent naive reference written
// here (long double normalisation and plain-loop inner products, O(T^2 d)), never against the code
// under test. The data imitate real activations: a few cluster centres plus per-token noise whose size
// spans three decades, so every tau finds both redundant and decorrelated tokens, and a chain of layers
// X_{l+1} = X_l + noise whose selections differ from layer to layer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>
#include <set>
#include <vector>

#include "core/error.h"
#include "select/incremental.h"
#include "select/selection.h"
#include "support/test_seed.h"

namespace cascade::select {
namespace {

using LD = long double;

// ---- data -------------------------------------------------------------------------------------

struct Acts {
  int64_t T, d;
  std::vector<float> x;      // [T, d]
  std::vector<double> noise;  // per token: the size of its noise relative to its centre
  const float* row(int64_t t) const { return x.data() + t * d; }
};

// T tokens around K centres; token t = bias + centre + sigma_t * N(0, I), sigma_t log-uniform in
// [1e-3, 1.5]. The shared bias makes cosine and pearson disagree.
Acts clusters(int64_t T, int64_t d, int K, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> gauss;
  std::uniform_real_distribution<double> unit;
  std::vector<double> centres(size_t(K * d)), bias(static_cast<size_t>(d));
  for (double& v : centres) v = gauss(rng);
  for (double& v : bias) v = 0.5 * gauss(rng);
  Acts a{T, d, std::vector<float>(size_t(T * d)), std::vector<double>(static_cast<size_t>(T))};
  for (int64_t t = 0; t < T; ++t) {
    const int64_t k = int64_t(rng() % uint64_t(K));
    a.noise[size_t(t)] = 1e-3 * std::pow(1500.0, unit(rng));
    for (int64_t i = 0; i < d; ++i)
      a.x[size_t(t * d + i)] =
          float(bias[size_t(i)] + centres[size_t(k * d + i)] + a.noise[size_t(t)] * gauss(rng));
  }
  return a;
}

// The next layer: each token moves by noise proportional to its own noise level (so tokens near the
// threshold at every tau move across it), plus a little everywhere.
Acts next_layer(const Acts& a, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> gauss;
  Acts b = a;
  for (int64_t t = 0; t < a.T; ++t)
    for (int64_t i = 0; i < a.d; ++i)
      b.x[size_t(t * a.d + i)] += float((0.4 * a.noise[size_t(t)] + 2e-4) * gauss(rng));
  return b;
}

Features feats(const Acts& a, Similarity sim) { return normalize(a.x.data(), a.T, a.d, sim); }

// ---- the naive reference ------------------------------------------------------------------------

struct Ref {
  int64_t T, d;
  std::vector<LD> z;  // [T, d]
  LD rho(int64_t t, int64_t s) const {
    LD acc = 0;
    for (int64_t i = 0; i < d; ++i) acc += z[size_t(t * d + i)] * z[size_t(s * d + i)];
    return acc;
  }
};

Ref ref_features(const float* x, int64_t T, int64_t d, Similarity sim) {
  Ref r{T, d, std::vector<LD>(size_t(T * d))};
  for (int64_t t = 0; t < T; ++t) {
    LD mean = 0;
    if (sim == Similarity::pearson) {
      for (int64_t i = 0; i < d; ++i) mean += x[t * d + i];
      mean /= d;
    }
    LD sq = 0;
    for (int64_t i = 0; i < d; ++i) sq += (x[t * d + i] - mean) * (x[t * d + i] - mean);
    for (int64_t i = 0; i < d; ++i)
      r.z[size_t(t * d + i)] = sq > 0 ? (x[t * d + i] - mean) / std::sqrt(sq) : 0;
  }
  return r;
}
Ref ref_features(const Acts& a, Similarity sim) { return ref_features(a.x.data(), a.T, a.d, sim); }

LD ref_theta(double tau) { return LD(1) - LD(tau) * LD(tau); }
bool ref_reaches(LD rho, double tau) { return rho >= ref_theta(tau) - LD(kRhoSlack); }

struct RefSel {
  std::vector<int32_t> reps, parent;
};

// SPEC 1 spelled out: greedy against the reps so far, or all-earlier; ties to the smallest s.
RefSel ref_select(const Ref& r, double tau, Rule rule) {
  RefSel out;
  out.parent.assign(size_t(r.T), 0);
  out.reps = {0};
  for (int64_t t = 1; t < r.T; ++t) {
    int32_t best = -1;
    LD best_rho = -10;
    for (int32_t s : out.reps) {
      const LD v = r.rho(t, s);
      if (v > best_rho) best_rho = v, best = s;
    }
    LD top = best_rho;
    if (rule == Rule::all_earlier)
      for (int64_t s = 0; s < t; ++s) top = std::max(top, r.rho(t, s));
    if (ref_reaches(top, tau)) {
      out.parent[size_t(t)] = best;
    } else {
      out.parent[size_t(t)] = int32_t(t);
      out.reps.push_back(int32_t(t));
    }
  }
  return out;
}

// Imposed set: members are their own parents, others take the best earlier member.
std::vector<int32_t> ref_parents_among(const Ref& r, const std::vector<int32_t>& set) {
  std::vector<int32_t> parent(static_cast<size_t>(r.T));
  for (int64_t t = 0; t < r.T; ++t) {
    if (std::binary_search(set.begin(), set.end(), int32_t(t))) {
      parent[size_t(t)] = int32_t(t);
      continue;
    }
    LD best_rho = -10;
    for (int32_t s : set)
      if (s < t && r.rho(t, s) > best_rho) best_rho = r.rho(t, s), parent[size_t(t)] = s;
  }
  return parent;
}

void expect_equal(const Selection& got, const RefSel& want, const std::string& what) {
  EXPECT_EQ(got.reps, want.reps) << what;
  EXPECT_EQ(got.parent, want.parent) << what;
}

std::vector<int32_t> sorted_diff(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  std::vector<int32_t> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

// Gram counts re-derived from the trace (which kernels evaluated which entries), checking on the way
// that the cross-Gram evaluated every causal entry of its columns, once, over consecutive row panels
// from row 0: to row T, or to where a capped cascade stopped.
GramCounts counts_from_trace(const Selection& sel) {
  const GramTrace& tr = sel.trace;
  const int64_t T = sel.T();
  GramCounts c;
  if (tr.full_gram) {
    c.needed += T * (T - 1) / 2;
    c.computed += T * (T + 1) / 2;
  }
  std::vector<int64_t> covered(tr.cross_columns.size(), 0);
  int64_t end = 0;  // the rows evaluated so far are 0 .. end-1
  for (const GramTrace::Panel& p : tr.cross_panels) {
    EXPECT_EQ(p.row0, end) << "panels follow each other";
    end = p.row0 + p.rows;
    c.computed += int64_t(p.rows) * p.cols;
    EXPECT_LT(tr.cross_columns[size_t(p.cols - 1)], end - 1) << "a column with no causal row here";
    for (int32_t j = 0; j < p.cols; ++j)
      for (int64_t t = p.row0; t < end; ++t) covered[size_t(j)] += t > tr.cross_columns[size_t(j)];
  }
  if (!sel.refreshed && !tr.cross_columns.empty()) {
    EXPECT_EQ(end, T);
  }
  for (size_t j = 0; j < tr.cross_columns.size(); ++j) {
    const int64_t s = tr.cross_columns[j];
    EXPECT_EQ(covered[j], std::max<int64_t>(0, end - 1 - s)) << "causal rows of cross column " << s;
    c.needed += covered[j];
  }
  for (int32_t s : tr.spot_columns) c.needed += T - 1 - s, c.computed += T - 1 - s;
  return c;
}

void expect_counts_match_trace(const Selection& s, const std::string& what) {
  const GramCounts want = counts_from_trace(s);
  EXPECT_EQ(s.cost.needed, want.needed) << what;
  EXPECT_EQ(s.cost.computed, want.computed) << what;
}

struct Shape {
  int64_t T, d;
  int K;
};
const Shape kShapes[] = {{50, 16, 3}, {200, 64, 8}, {400, 16, 6}, {600, 130, 12}};
const double kTaus[] = {0.05, 0.2, 0.3, 0.5};
const Similarity kSims[] = {Similarity::pearson, Similarity::cosine};

std::string label(const Shape& sh, double tau, Similarity sim, int layer = -1) {
  return "T=" + std::to_string(sh.T) + " d=" + std::to_string(sh.d) + " tau=" + std::to_string(tau) +
         " " + to_string(sim) + (layer >= 0 ? " layer " + std::to_string(layer) : "");
}

// ---- 1. exact cascade == full selection along a chain of layers ---------------------------------

TEST(Selection, CascadeEqualsFullAlongChain) {
  const test::Seed seed(1000);
  int64_t additions = 0, removals = 0, kept_layers = 0;
  for (const Shape& sh : kShapes)
    for (double tau : kTaus)
      for (Similarity sim : kSims) {
        const Options opts{tau, sim, Rule::greedy};
        Acts a = clusters(sh.T, sh.d, sh.K, seed.value() + uint64_t(sh.T) + uint64_t(sh.d));
        Selection prev = run_full(feats(a, sim), opts);
        expect_equal(prev, ref_select(ref_features(a, sim), tau, Rule::greedy), label(sh, tau, sim, 0));
        for (int layer = 1; layer < 6; ++layer) {
          a = next_layer(a, seed.derived(uint64_t(layer) * 7919 + uint64_t(sh.T)));
          const Features z = feats(a, sim);
          const Selection full = run_full(z, opts, &prev);
          const Selection casc = run_cascade(z, prev, opts);
          const std::string what = label(sh, tau, sim, layer);
          expect_equal(full, ref_select(ref_features(a, sim), tau, Rule::greedy), what);
          EXPECT_EQ(casc.reps, full.reps) << what;
          EXPECT_EQ(casc.parent, full.parent) << what;
          EXPECT_EQ(casc.added, sorted_diff(full.reps, prev.reps)) << what;
          EXPECT_EQ(casc.removed, sorted_diff(prev.reps, full.reps)) << what;
          EXPECT_EQ(casc.added, full.added) << what;
          EXPECT_EQ(casc.removed, full.removed) << what;
          additions += int64_t(casc.added.size());
          removals += int64_t(casc.removed.size());
          kept_layers += casc.reps == prev.reps;
          prev = casc;  // the chain continues from the cascade's own answer
        }
      }
  // The chain must exercise the cascade: sets change, in both directions, and some layers keep theirs.
  EXPECT_GT(additions, 100);
  EXPECT_GT(removals, 100);
  EXPECT_GT(kept_layers, 0);
}

// The data produce realistic redundancy: neither everything nor nothing is a representative.
TEST(Selection, GeneratorGivesMixedRedundancy) {
  const test::Seed seed(5);
  for (double tau : kTaus) {
    const Acts a = clusters(600, 130, 12, seed.value());
    const double frac = double(run_full(feats(a, Similarity::pearson), {tau}).reps.size()) / 600.0;
    EXPECT_GT(frac, 0.05) << tau;
    EXPECT_LT(frac, 0.95) << tau;
  }
}

// ---- 2. tau = 0: only exact duplicates are absorbed --------------------------------------------

TEST(Selection, TauZeroKeepsAllButExactDuplicates) {
  const test::Seed seed(42);
  // Each token's direction under the similarity is tracked as a class: the first token of a class is
  // a representative and every later one is its exact duplicate (rho = 1 up to rounding).
  for (Similarity sim : kSims) {
    const bool pearson = sim == Similarity::pearson;
    const int64_t T = 160, d = 64;
    std::mt19937_64 rng(seed.value());
    std::normal_distribution<float> gauss;
    std::vector<float> x(size_t(T * d));
    std::vector<int64_t> cls(static_cast<size_t>(T));  // direction class; the sign is folded in as cls = 2 id + neg
    std::vector<bool> constant(size_t(T), false);
    int64_t next_id = 1;                  // id 0: the direction of constant rows under cosine
    for (int64_t t = 0; t < T; ++t) {
      float* row = x.data() + t * d;
      int64_t j = t > 0 ? int64_t(rng() % uint64_t(t)) : 0;
      if (constant[size_t(j)]) j = 0;  // copies are made of non-constant rows only (token 0 is one)
      const float* src = x.data() + j * d;
      switch (t == 0 ? 0 : int(rng() % 7)) {
        case 1:  // exact copy
          std::copy(src, src + d, row);
          cls[size_t(t)] = cls[size_t(j)];
          break;
        case 2:  // positive scale: a duplicate under both similarities
          for (int64_t i = 0; i < d; ++i) row[i] = 2.0f * src[i];
          cls[size_t(t)] = cls[size_t(j)];
          break;
        case 3:  // positive affine: a pearson duplicate; under cosine a new direction unless the
                 // very same row was made before (the affine image of another copy of the source)
          for (int64_t i = 0; i < d; ++i) row[i] = 2.0f * src[i] + 0.25f;
          cls[size_t(t)] = pearson ? cls[size_t(j)] : 2 * next_id++;
          for (int64_t s = 0; s < t && !pearson; ++s)
            if (std::equal(row, row + d, x.data() + s * d)) cls[size_t(t)] = cls[size_t(s)];
          break;
        case 4:  // negated: rho = -1 with its source, the same class as its source's negation
          for (int64_t i = 0; i < d; ++i) row[i] = -src[i];
          cls[size_t(t)] = cls[size_t(j)] ^ 1;
          break;
        case 5:  // near duplicate: one feature moved
          std::copy(src, src + d, row);
          row[rng() % uint64_t(d)] += 1e-2f;
          cls[size_t(t)] = 2 * next_id++;
          break;
        case 6:  // constant: z = 0 under pearson (correlates with nothing), one direction under cosine
          std::fill(row, row + d, 0.75f);
          constant[size_t(t)] = true;
          cls[size_t(t)] = pearson ? -t : 0;  // pearson: a class of its own that nothing else joins
          break;
        default:
          for (int64_t i = 0; i < d; ++i) row[i] = gauss(rng);
          cls[size_t(t)] = 2 * next_id++;
      }
    }
    std::vector<int32_t> want_reps, want_parent(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
      int64_t first = t;  // the earliest token of t's class
      for (int64_t s = t - 1; s >= 0; --s)
        if (cls[size_t(s)] == cls[size_t(t)]) first = s;
      want_parent[size_t(t)] = int32_t(first);
      if (first == t) want_reps.push_back(int32_t(t));
    }
    const Selection sel = run_full(normalize(x.data(), T, d, sim), {0.0, sim});
    EXPECT_EQ(sel.reps, want_reps) << to_string(sim);
    EXPECT_EQ(sel.parent, want_parent) << to_string(sim);
    EXPECT_LT(want_reps.size(), size_t(T * 3 / 4)) << "the data must hold duplicates";
    expect_equal(sel, ref_select(ref_features(x.data(), T, d, sim), 0.0, Rule::greedy), to_string(sim));
  }
}

// ---- 3. greedy-rule properties; all-earlier vs greedy ------------------------------------------

TEST(Selection, GreedyProperties) {
  const test::Seed seed(11);
  for (double tau : kTaus)
    for (Similarity sim : kSims) {
      const Acts a = clusters(300, 64, 7, seed.value());
      const Ref r = ref_features(a, sim);
      const Selection sel = run_full(feats(a, sim), {tau, sim});
      const std::set<int32_t> reps(sel.reps.begin(), sel.reps.end());
      ASSERT_TRUE(reps.count(0));
      EXPECT_TRUE(std::is_sorted(sel.reps.begin(), sel.reps.end()));
      for (int64_t t = 0; t < a.T; ++t) {
        const int32_t p = sel.parent[size_t(t)];
        if (reps.count(int32_t(t))) {
          EXPECT_EQ(p, t);
          for (int32_t s : sel.reps) {  // decorrelated from every earlier representative
            if (s >= t) break;
            EXPECT_FALSE(ref_reaches(r.rho(t, s), tau)) << t << " vs " << s;
          }
          continue;
        }
        ASSERT_TRUE(reps.count(p)) << t;
        EXPECT_LT(p, t);
        EXPECT_TRUE(ref_reaches(r.rho(t, p), tau)) << t;
        for (int32_t s : sel.reps) {  // the argmax, ties to the smallest s
          if (s >= t) break;
          EXPECT_TRUE(r.rho(t, s) < r.rho(t, p) || (r.rho(t, s) == r.rho(t, p) && p <= s));
        }
      }
    }
}

// Rows along a great circle of the centred plane: pearson rho(i, j) = cos(angle_i - angle_j).
std::vector<float> arc(const std::vector<double>& degrees) {
  const double s2 = std::sqrt(2.0), s6 = std::sqrt(6.0);
  std::vector<float> x;
  for (double deg : degrees) {
    const double a = deg * std::numbers::pi / 180.0, c = std::cos(a), s = std::sin(a);
    // c * (1, -1, 0)/sqrt2 + s * (1, 1, -2)/sqrt6: zero mean, unit norm.
    x.insert(x.end(), {float(c / s2 + s / s6), float(-c / s2 + s / s6), float(-2 * s / s6)});
  }
  return x;
}

TEST(Selection, AllEarlierAgreesWithGreedyOnUncorrelatedDuplicateClusters) {
  const test::Seed seed(3);
  // Cluster k is (+1 at 2k, -1 at 2k+1): zero mean, orthogonal across k; tokens are exact copies.
  const int64_t K = 5, d = 2 * K, T = 80;
  std::mt19937_64 rng(seed.value());
  std::vector<float> x(size_t(T * d), 0.0f);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t k = int64_t(rng() % K);
    x[size_t(t * d + 2 * k)] = 1.0f;
    x[size_t(t * d + 2 * k + 1)] = -1.0f;
  }
  for (Similarity sim : kSims) {
    const Features z = normalize(x.data(), T, d, sim);
    const Selection g = run_full(z, {0.3, sim, Rule::greedy});
    const Selection e = run_full(z, {0.3, sim, Rule::all_earlier});
    EXPECT_EQ(g.reps, e.reps);
    EXPECT_EQ(g.parent, e.parent);
    EXPECT_EQ(int64_t(g.reps.size()), K);
  }
}

TEST(Selection, AllEarlierDiffersFromGreedyOnAChain) {
  // Angles 0, 20, 40 degrees; theta = 0.91 = cos(24.5 deg). Token 1 is within theta of 0; token 2 is
  // within theta of 1 but not of 0.
  const std::vector<float> x = arc({0, 20, 40});
  const Features z = normalize(x.data(), 3, 3, Similarity::pearson);
  const Selection g = run_full(z, {0.3, Similarity::pearson, Rule::greedy});
  const Selection e = run_full(z, {0.3, Similarity::pearson, Rule::all_earlier});
  // greedy: 1 joins 0; 2 is compared with the representatives {0} only: cos 40 < theta, so a rep.
  EXPECT_EQ(g.reps, (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(g.parent, (std::vector<int32_t>{0, 0, 2}));
  // all-earlier: 2 sees token 1 (cos 20 >= theta) so it is not a rep; its parent is the best
  // earlier representative, 0, although cos 40 < theta.
  EXPECT_EQ(e.reps, (std::vector<int32_t>{0}));
  EXPECT_EQ(e.parent, (std::vector<int32_t>{0, 0, 0}));
  const Ref r = ref_features(x.data(), 3, 3, Similarity::pearson);
  expect_equal(g, ref_select(r, 0.3, Rule::greedy), "greedy");
  expect_equal(e, ref_select(r, 0.3, Rule::all_earlier), "all-earlier");
}

TEST(Selection, AllEarlierMatchesReference) {
  const test::Seed seed(21);
  for (double tau : kTaus)
    for (Similarity sim : kSims) {
      const Acts a = clusters(250, 16, 5, seed.value());
      expect_equal(run_full(feats(a, sim), {tau, sim, Rule::all_earlier}),
                   ref_select(ref_features(a, sim), tau, Rule::all_earlier), "all-earlier");
    }
}

// ---- 4. Gram counts ---------------------------------------------------------------------------

TEST(Selection, GramCounts) {
  const test::Seed seed(77);
  for (const Shape& sh : kShapes) {
    const Options opts{0.3};
    const Acts a0 = clusters(sh.T, sh.d, sh.K, seed.value());
    const Acts a1 = next_layer(a0, seed.derived(78));
    const Selection prev = run_full(feats(a0, opts.similarity), opts);
    const Features z = feats(a1, opts.similarity);
    const int64_t T = sh.T;

    const Selection full = run_full(z, opts, &prev);
    EXPECT_EQ(full.cost.needed, T * (T - 1) / 2);
    EXPECT_EQ(full.cost.computed, T * (T + 1) / 2);
    expect_counts_match_trace(full, "full");

    const Selection casc = run_cascade(z, prev, opts);
    EXPECT_EQ(casc.trace.cross_columns, prev.reps);
    EXPECT_EQ(casc.trace.spot_columns, casc.added);
    EXPECT_FALSE(casc.trace.full_gram);
    expect_counts_match_trace(casc, "cascade");
    // The cascade evaluates (r_prev + additions) columns: fewer needed products than the full Gram.
    EXPECT_LT(casc.cost.needed, full.cost.needed);

    for (const Selection& s : {run_inherit(z, prev, opts), run_random(z, prev, opts, 1, 1),
                               run_capped(z, prev, opts, 0), run_capped(z, prev, opts, T)})
      expect_counts_match_trace(s, "variant");
    EXPECT_GT(full.cost.seconds, 0.0);
    EXPECT_GT(casc.cost.seconds, 0.0);
  }
}

// ---- 5. causality and incremental decoding -----------------------------------------------------

TEST(Selection, PrefixDecisionsAreCausal) {
  const test::Seed seed(31);
  for (Rule rule : {Rule::greedy, Rule::all_earlier})
    for (Similarity sim : kSims) {
      const Acts a = clusters(400, 64, 9, seed.value());
      const Options opts{0.3, sim, rule};
      const Selection whole = run_full(feats(a, sim), opts);
      for (int64_t P : {1, 2, 57, 200, 399}) {
        const Selection pre = run_full(normalize(a.x.data(), P, a.d, sim), opts);
        EXPECT_EQ(pre.parent, std::vector<int32_t>(whole.parent.begin(), whole.parent.begin() + P));
        std::vector<int32_t> reps;
        for (int32_t s : whole.reps)
          if (s < P) reps.push_back(s);
        EXPECT_EQ(pre.reps, reps);
      }
    }
}

TEST(Selection, IncrementalReproducesFullSelection) {
  const test::Seed seed(41);
  for (Rule rule : {Rule::greedy, Rule::all_earlier})
    for (double tau : kTaus)
      for (Similarity sim : kSims) {
        const Acts a = clusters(300, 64, 7, seed.value());
        const Options opts{tau, sim, rule};
        const Selection whole = run_full(feats(a, sim), opts);
        const ChildCounts n(whole.parent);
        for (int64_t P : {0, 1, 150}) {
          IncrementalSelector inc(a.d, opts);  // P = 0: decode from the first token
          if (P > 0) {
            const Features zp = normalize(a.x.data(), P, a.d, sim);
            inc = IncrementalSelector(zp, run_full(zp, opts), opts);
          }
          int64_t products = 0;
          for (int64_t t = P; t < a.T; ++t) {
            products += rule == Rule::greedy ? int64_t(inc.reps().size()) : t;
            const IncrementalSelector::Step st = inc.step(a.row(t));
            ASSERT_EQ(st.parent, whole.parent[size_t(t)]) << "token " << t << " from prefill " << P;
            ASSERT_EQ(st.is_rep, whole.parent[size_t(t)] == t);
          }
          EXPECT_EQ(inc.reps(), whole.reps);
          EXPECT_EQ(inc.T(), a.T);
          EXPECT_EQ(inc.cost().needed, products);
          for (size_t k = 0; k < whole.reps.size(); ++k)
            EXPECT_EQ(inc.counts()[k], n.n(whole.reps[k], int32_t(a.T - 1)));
        }
      }
}

TEST(Selection, IncrementalImposedReproducesInherit) {
  const test::Seed seed(51);
  const Acts a0 = clusters(300, 64, 7, seed.value());
  const Acts a1 = next_layer(a0, seed.derived(52));
  const Options opts{0.3};
  const Selection prev = run_full(feats(a0, opts.similarity), opts);
  const Selection inh = run_inherit(feats(a1, opts.similarity), prev, opts);
  for (int64_t P : {0, 100}) {
    // Prefill of P tokens under inherit, then decoding with the layer below's flags.
    IncrementalSelector inc(a1.d, opts);
    if (P > 0) {
      const Features z1 = normalize(a1.x.data(), P, a1.d, opts.similarity);
      const Selection below = run_full(normalize(a0.x.data(), P, a0.d, opts.similarity), opts);
      inc = IncrementalSelector(z1, run_inherit(z1, below, opts), opts);
    }
    for (int64_t t = P; t < a1.T; ++t) {
      const bool flag = prev.parent[size_t(t)] == t;  // the layer below decides
      ASSERT_EQ(inc.step_imposed(a1.row(t), flag).parent, inh.parent[size_t(t)]) << t;
    }
    EXPECT_EQ(inc.reps(), prev.reps);
  }
}

TEST(Selection, ChildCountsMatchBruteForce) {
  const test::Seed seed(61);
  const Acts a = clusters(200, 16, 4, seed.value());
  const Selection sel = run_full(feats(a, Similarity::pearson), {0.3});
  const ChildCounts n(sel.parent);
  for (int32_t s : sel.reps)
    for (int32_t t = s; t < int32_t(a.T); t += 7) {
      int32_t want = 1;
      for (int32_t c = s + 1; c <= t; ++c) want += sel.parent[size_t(c)] == s;
      EXPECT_EQ(n.n(s, t), want);
    }
}

// ---- 6. variants ------------------------------------------------------------------------------

TEST(Selection, Variants) {
  const test::Seed seed(71);
  for (Similarity sim : kSims) {
    const Options opts{0.3, sim};
    const Acts a0 = clusters(400, 64, 9, seed.value());
    const Acts a1 = next_layer(a0, seed.derived(72));
    const Selection prev = run_full(feats(a0, sim), opts);
    const Features z = feats(a1, sim);
    const Ref r = ref_features(a1, sim);
    const Selection full = run_full(z, opts, &prev);
    const Selection casc = run_cascade(z, prev, opts);
    const int64_t T = a1.T, rp = int64_t(prev.reps.size());
    ASSERT_GT(casc.added.size(), 0u) << "the layers must differ for this test";
    int64_t prev_rows = 0;
    for (int32_t s : prev.reps) prev_rows += T - 1 - s;

    const Selection inh = run_inherit(z, prev, opts);
    EXPECT_EQ(inh.reps, prev.reps);
    EXPECT_EQ(inh.parent, ref_parents_among(r, prev.reps));
    EXPECT_TRUE(inh.added.empty() && inh.removed.empty());
    EXPECT_EQ(inh.cost.needed, prev_rows);
    // The cross-Gram evaluates at least the causal entries and at most the whole T x r rectangle
    // (all of it here: T is below one row panel).
    const int64_t cross = inh.cost.computed;
    EXPECT_GE(cross, prev_rows);
    EXPECT_LE(cross, T * rp);
    int64_t added_rows = 0;
    for (int32_t s : casc.added) added_rows += T - 1 - s;
    EXPECT_EQ(casc.cost.computed, cross + added_rows);  // the same cross-Gram plus the spot columns
    EXPECT_EQ(casc.cost.needed, prev_rows + added_rows);

    // A cap never reached: the cascade itself, at the cascade's cost.
    for (int64_t cap : {int64_t(casc.added.size()), T}) {
      const Selection big = run_capped(z, prev, opts, cap);
      EXPECT_FALSE(big.refreshed);
      EXPECT_EQ(big.reps, casc.reps);
      EXPECT_EQ(big.parent, casc.parent);
      EXPECT_EQ(big.cost.needed, casc.cost.needed);
      EXPECT_EQ(big.cost.computed, casc.cost.computed);
    }
    // One addition over the cap: a refresh, paying the full Gram plus what the cascade had
    // evaluated when it stopped at its (cap+1)-th addition: the cross-Gram panels up to the one
    // holding that token, and the spot columns of the cap additions before it.
    for (int64_t cap : {int64_t(0), int64_t(casc.added.size()) - 1}) {
      const Selection small = run_capped(z, prev, opts, cap);
      EXPECT_TRUE(small.refreshed);
      EXPECT_EQ(small.reps, full.reps);
      EXPECT_EQ(small.parent, full.parent);
      EXPECT_EQ(small.added, full.added);
      EXPECT_EQ(small.removed, full.removed);
      EXPECT_TRUE(small.trace.full_gram);
      EXPECT_EQ(small.trace.spot_columns,
                std::vector<int32_t>(casc.added.begin(), casc.added.begin() + cap));
      const int64_t stop = casc.added[size_t(cap)];
      ASSERT_FALSE(small.trace.cross_panels.empty());
      const GramTrace::Panel last = small.trace.cross_panels.back();
      EXPECT_TRUE(last.row0 <= stop && stop < last.row0 + last.rows) << "stopped at " << stop;
      expect_counts_match_trace(small, "capped:" + std::to_string(cap));
      int64_t spot = 0;
      for (int64_t k = 0; k < cap; ++k) spot += T - 1 - casc.added[size_t(k)];
      Selection cross_only = small;  // the same trace without the full Gram
      cross_only.trace.full_gram = false;
      cross_only.trace.spot_columns.clear();
      const GramCounts before_stop = counts_from_trace(cross_only);
      EXPECT_EQ(small.cost.computed, T * (T + 1) / 2 + before_stop.computed + spot);
      EXPECT_EQ(small.cost.needed, T * (T - 1) / 2 + before_stop.needed + spot);
      EXPECT_LE(before_stop.computed, cross);
    }

    const Selection r1 = run_random(z, prev, opts, 9, 3);
    EXPECT_EQ(int64_t(r1.reps.size()), rp);
    EXPECT_EQ(r1.reps.front(), 0);
    EXPECT_TRUE(std::adjacent_find(r1.reps.begin(), r1.reps.end(), std::greater_equal<>()) ==
                r1.reps.end());  // strictly increasing
    EXPECT_LT(r1.reps.back(), T);
    EXPECT_EQ(r1.parent, ref_parents_among(r, r1.reps));
    EXPECT_EQ(r1.added, sorted_diff(r1.reps, prev.reps));
    EXPECT_EQ(r1.removed, sorted_diff(prev.reps, r1.reps));
    EXPECT_EQ(run_random(z, prev, opts, 9, 3).reps, r1.reps);  // deterministic
    EXPECT_NE(run_random(z, prev, opts, 10, 3).reps, r1.reps);
    EXPECT_NE(run_random(z, prev, opts, 9, 4).reps, r1.reps);

    // The dispatch: layer 0 is always full; otherwise the mode named.
    EXPECT_EQ(run_layer(z, nullptr, opts, parse_mode("inherit"), 0).reps, full.reps);
    EXPECT_EQ(run_layer(z, &prev, opts, parse_mode("inherit"), 1).reps, prev.reps);
    EXPECT_EQ(run_layer(z, &prev, opts, parse_mode("cascade"), 1).parent, full.parent);
    EXPECT_TRUE(run_layer(z, &prev, opts, parse_mode("capped:0"), 1).refreshed);
    EXPECT_EQ(run_layer(z, &prev, opts, parse_mode("random:9"), 3).reps, r1.reps);
  }
}

TEST(Selection, RandomSetsAreUniform) {
  const test::Seed seed(81);
  // Every position 1..T-1 should be drawn about equally often over many seeds.
  const Acts a = clusters(20, 16, 3, seed.value());
  const Features z = feats(a, Similarity::pearson);
  Selection prev;
  prev.reps = {0, 3, 9, 14, 17};
  prev.parent.resize(20);
  std::vector<int> hits(20, 0);
  const int n = 4000;
  for (int draw = 0; draw < n; ++draw)
    for (int32_t s : run_random(z, prev, {0.3}, uint64_t(draw), 0).reps) ++hits[size_t(s)];
  EXPECT_EQ(hits[0], n);
  for (int t = 1; t < 20; ++t) EXPECT_NEAR(hits[size_t(t)], n * 4.0 / 19.0, 100.0) << t;
}

// ---- 7. bad input ----------------------------------------------------------------------------

TEST(Selection, BadInputThrows) {
  const test::Seed seed(91);
  const Acts a = clusters(30, 16, 3, seed.value());
  const Features z = feats(a, Similarity::pearson);
  const Selection prev = run_full(z, {0.3});
  for (double tau : {-0.1, 1.0, 1.5, std::nan("")}) {
    EXPECT_THROW(Options{tau}.theta(), Error) << tau;
    EXPECT_THROW(run_full(z, {tau}), Error) << tau;
    EXPECT_THROW(run_cascade(z, prev, {tau}), Error) << tau;
    EXPECT_THROW(IncrementalSelector(16, {tau}), Error) << tau;
  }
  EXPECT_DOUBLE_EQ(Options{0.3}.theta(), 1.0 - 0.09);
  EXPECT_DOUBLE_EQ(Options{0.0}.theta(), 1.0);
  for (const char* bad : {"capped:x", "capped:", "capped", "capped:-1", "capped:3x", "cascade:2",
                          "bogus", "", "random:x"})
    EXPECT_THROW(parse_mode(bad), Error) << bad;
  EXPECT_THROW(parse_similarity("spearman"), Error);
  EXPECT_THROW(parse_rule("all_earlier"), Error);
  EXPECT_EQ(parse_mode("capped:8").cap, 8);
  EXPECT_EQ(parse_mode("capped:8").mode, Mode::capped);
  EXPECT_EQ(parse_mode("random:5").seed, 5u);
  EXPECT_EQ(to_string(parse_mode("capped:8")), "capped:8");
  EXPECT_EQ(parse_rule("all-earlier"), Rule::all_earlier);
  EXPECT_EQ(parse_similarity("cosine"), Similarity::cosine);

  const Options ae{0.3, Similarity::pearson, Rule::all_earlier};
  try {
    run_cascade(z, prev, ae);
    ADD_FAILURE() << "cascade with all-earlier must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("greedy"), std::string::npos) << e.what();
  }
  EXPECT_THROW(run_capped(z, prev, ae, 4), Error);
  EXPECT_THROW(run_layer(z, &prev, ae, parse_mode("cascade"), 1), Error);
  EXPECT_THROW(run_capped(z, prev, {0.3}, -1), Error);

  const Features shorter = normalize(a.x.data(), 20, 16, Similarity::pearson);
  EXPECT_THROW(run_cascade(shorter, prev, {0.3}), Error);
  EXPECT_THROW(run_inherit(shorter, prev, {0.3}), Error);
  EXPECT_THROW(normalize(a.x.data(), 0, 16, Similarity::pearson), Error);
  EXPECT_THROW(ChildCounts(std::vector<int32_t>{0, 2, 1}), Error);
}

}  // namespace
}  // namespace cascade::select
