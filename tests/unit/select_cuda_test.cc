// The GPU selection (select/gpu_selection.h) against the CPU reference (select/selection.h): the full
// selection and the exact cascade, on planted near-duplicates, chains that need many rounds, exact
// duplicates (tau = 0), constant rows, sizes that are not multiples of the panels, and the real
// features of the bundled stories260K model. Skips where there is no GPU (and compiles without CUDA).
//
// What "the same" means. In float64 the GPU evaluates the same rho as the CPU up to the order of the
// sums (~1e-16), so on data whose correlations all stay 1e-3 away from theta the sets and parents must
// be identical. Where some rho lies near theta (real features, f32 / tf32 Grams), a decision may flip,
// and every later decision of the greedy scan depends on it; so the comparison finds the first token
// whose membership or parent differs and requires that token to be near theta: some earlier CPU
// representative s with |rho(t, s) - theta| <= 1e-3 (its decision could flip) or, for a parent-only
// difference, the two parents' rho within 1e-3 of each other. rho here is the CPU's float64 value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <span>
#include <sstream>
#include <tuple>
#include <vector>

#include "attention/exact_attention.h"
#include "core/dtype.h"
#include "core/error.h"
#include "cuda/runtime.h"
#include "model/model.h"
#include "select/gpu_selection.h"
#include "select/incremental.h"
#ifdef CASCADE_WITH_CUDA
#include "cuda/buffer.h"
#include "cuda/context.h"
#include "select/gpu_incremental.h"
#endif
#include "select/selection.h"
#include "support/test_paths.h"
#include "support/test_seed.h"
#include "tokenizer/tokenizer.h"

namespace cascade::select {
namespace {

constexpr double kBand = 1e-3;

#define REQUIRE_GPU() \
  if (!gpu::gpu_selection_available()) GTEST_SKIP() << "no GPU: " << cuda::describe_gpu()

// ---- data -------------------------------------------------------------------------------------

struct Acts {
  int64_t T, d;
  std::vector<float> x;  // [T, d]
};

std::vector<double> unit_gauss(std::mt19937_64& rng, int64_t d) {
  std::normal_distribution<double> g;
  std::vector<double> v(static_cast<size_t>(d));
  double m = 0, s = 0;
  for (double& e : v) e = g(rng), m += e;
  m /= double(d);
  for (double& e : v) e -= m, s += e * e;
  for (double& e : v) e /= std::sqrt(s);
  return v;
}

// Planted groups: each token starts a new group with probability p_new, else joins a random earlier
// group as a noisy copy of its centre (noise sigma relative; sigma = 0 gives exact duplicates, some
// of them scaled by 2, which normalises to the same z). A few constant rows (z = 0) and, when chain
// > 0, one chain of `chain` tokens rotating in a plane by phi: neighbours in the chain correlate at
// cos(phi), tokens two apart at cos(2 phi), so the greedy set alternates and needs ~chain rounds.
Acts planted(int64_t T, int64_t d, double p_new, double sigma, int chain, double phi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit;
  std::normal_distribution<double> g;
  Acts a{T, d, std::vector<float>(size_t(T * d))};
  std::vector<std::vector<double>> centres;
  const std::vector<double> pa = unit_gauss(rng, d);
  std::vector<double> pb = unit_gauss(rng, d);
  double dot = 0, nb = 0;
  for (int64_t i = 0; i < d; ++i) dot += pa[size_t(i)] * pb[size_t(i)];
  for (int64_t i = 0; i < d; ++i) pb[size_t(i)] -= dot * pa[size_t(i)], nb += pb[size_t(i)] * pb[size_t(i)];
  for (double& e : pb) e /= std::sqrt(nb);
  const int64_t chain0 = T / 3;
  int k_chain = 0;
  for (int64_t t = 0; t < T; ++t) {
    float* row = a.x.data() + t * d;
    if (t >= chain0 && k_chain < chain && (t - chain0) % 2 == 0) {  // chain members every other token
      const double c = std::cos(phi * k_chain), s = std::sin(phi * k_chain);
      for (int64_t i = 0; i < d; ++i) row[i] = float(3.0 * (c * pa[size_t(i)] + s * pb[size_t(i)]));
      ++k_chain;
      continue;
    }
    if (t % 97 == 13) {  // a constant row: zero features, correlated with nothing
      std::fill(row, row + d, 0.25f);
      continue;
    }
    if (centres.empty() || unit(rng) < p_new) {
      centres.push_back(unit_gauss(rng, d));
      for (int64_t i = 0; i < d; ++i) row[i] = float(centres.back()[size_t(i)]);
      continue;
    }
    const auto& c = centres[size_t(rng() % centres.size())];
    const double scale = sigma == 0 && (t % 2) ? 2.0 : 1.0;
    for (int64_t i = 0; i < d; ++i)
      row[i] = float(scale * (c[size_t(i)] + sigma * g(rng) / std::sqrt(double(d))));
  }
  return a;
}

// The next layer: tokens move by noise of relative size `move`, a fraction of them much more.
Acts perturb(const Acts& a, double move, double big_frac, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g;
  std::uniform_real_distribution<double> unit;
  Acts b = a;
  for (int64_t t = 0; t < a.T; ++t) {
    const double m = (unit(rng) < big_frac ? 1.0 : move) / std::sqrt(double(a.d));
    for (int64_t i = 0; i < a.d; ++i) b.x[size_t(t * a.d + i)] += float(m * g(rng));
  }
  return b;
}

// ---- comparison -------------------------------------------------------------------------------

double rho(const Features& z, int64_t t, int64_t s) {
  double acc = 0;
  for (int64_t i = 0; i < z.d; ++i) acc += z.row(t)[i] * z.row(s)[i];
  return acc;
}

struct Agreement {
  int64_t first_diff = -1;  // -1: identical
  bool explained = true;    // the first difference is at a token near theta
  std::string what;
};

Agreement compare(const Features& z, const Selection& cpu, const Selection& gpu, double theta) {
  Agreement ag;
  if (cpu.parent == gpu.parent) return ag;  // parents determine the set (parent[t] == t)
  EXPECT_EQ(cpu.parent.size(), gpu.parent.size());
  int64_t t = 0;
  while (t < cpu.T() && cpu.parent[size_t(t)] == gpu.parent[size_t(t)]) ++t;
  ag.first_diff = t;
  const int32_t pc = cpu.parent[size_t(t)], pg = gpu.parent[size_t(t)];
  std::ostringstream os;
  os << "first difference at token " << t << ": cpu parent " << pc << ", gpu parent " << pg;
  if (pc != t && pg != t) {  // both out: a near tie between the two parents
    const double a = rho(z, t, pc), b = rho(z, t, pg);
    ag.explained = std::fabs(a - b) <= kBand;
    os << " (rho " << a << " vs " << b << ")";
  } else {  // the decision itself differs: some earlier representative must sit near theta
    double nearest = 2;
    for (int32_t s : cpu.reps) {
      if (s >= t) break;
      nearest = std::min(nearest, std::fabs(rho(z, t, s) - theta));
    }
    ag.explained = nearest <= kBand;
    os << " (closest |rho - theta| over earlier reps " << nearest << ")";
  }
  ag.what = os.str();
  return ag;
}

// The smallest |rho(t, s) - theta| over all pairs s < t: whether exact agreement can be demanded.
double nearest_to_theta(const Features& z, double theta) {
  double best = 2;
  for (int64_t t = 1; t < z.T; ++t)
    for (int64_t s = 0; s < t; ++s) best = std::min(best, std::fabs(rho(z, t, s) - theta));
  return best;
}

// The Jacobi rounds the GPU must report for the full selection, simulated from the CPU's rho:
// round(t) = 1 + max over earlier neighbours' rounds when t joins (all must be decided, all out),
// 1 + min over its earlier neighbours in the set when t is out.
int64_t expected_rounds(const Features& z, const Selection& cpu, double theta) {
  std::vector<int64_t> round(static_cast<size_t>(z.T), 0);
  int64_t most = 0;
  for (int64_t t = 0; t < z.T; ++t) {
    const bool in = cpu.parent[size_t(t)] == t;
    int64_t r = in ? 0 : INT64_MAX;
    for (int64_t s = 0; s < t; ++s) {
      if (rho(z, t, s) < theta - kRhoSlack) continue;
      if (in)
        r = std::max(r, round[size_t(s)]);
      else if (cpu.parent[size_t(s)] == s)
        r = std::min(r, round[size_t(s)]);
    }
    round[size_t(t)] = r + 1;
    most = std::max(most, r + 1);
  }
  return most;
}

Options opts_of(double tau, Similarity sim = Similarity::pearson) {
  Options o;
  o.tau = tau;
  o.similarity = sim;
  return o;
}

const char* name(gpu::Precision p) { return gpu::precision_name(p); }

// f16-certified's promise: exactly the float64 GPU selection (set, parents, diff, counts, graph).
void expect_certified_equals_f64(const gpu::GpuSelection& got, const gpu::GpuSelection& want) {
  EXPECT_EQ(got.sel.parent, want.sel.parent);
  EXPECT_EQ(got.sel.reps, want.sel.reps);
  EXPECT_EQ(got.sel.added, want.sel.added);
  EXPECT_EQ(got.sel.removed, want.sel.removed);
  EXPECT_EQ(got.sel.cost.needed, want.sel.cost.needed);
  EXPECT_EQ(got.sel.trace.spot_columns, want.sel.trace.spot_columns);
  EXPECT_EQ(got.stats.edges, want.stats.edges);
  EXPECT_EQ(got.stats.rounds, want.stats.rounds);
  EXPECT_EQ(got.stats.iterations, want.stats.iterations);
  EXPECT_EQ(want.stats.recomputed, 0);
  EXPECT_GE(got.stats.recomputed_fraction, 0.0);
  EXPECT_LE(got.stats.recomputed_fraction, 1.0);
}

// Runs the full selection (prev == nullptr) or the cascade in f64 and f16-certified on the same
// features and expects the same; returns the certified run.
gpu::GpuSelection certified_vs_f64(const Acts& a, const Options& o, const Selection* prev, int64_t panel_rows = 0) {
  gpu::GpuSelection r[2];
  for (gpu::Precision p : {gpu::Precision::f64, gpu::Precision::f16_certified}) {
    const gpu::DeviceFeatures g = gpu::normalize_host(a.x.data(), a.T, a.d, o.similarity, p);
    r[p == gpu::Precision::f16_certified] =
        prev ? gpu::run_cascade(g, *prev, o, {p, panel_rows}) : gpu::run_full(g, o, {p, panel_rows}, nullptr);
  }
  expect_certified_equals_f64(r[1], r[0]);
  return r[1];
}

// ---- tests --------------------------------------------------------------------------------------

TEST(SelectCuda, CpuOnlyBuildRefusesClearly) {
  if (cuda::built_with_cuda()) GTEST_SKIP() << "this build has CUDA";
  const std::vector<float> x(8, 1.0f);
  EXPECT_FALSE(gpu::gpu_selection_available());
  EXPECT_THROW(gpu::normalize_host(x.data(), 2, 4, Similarity::pearson), Error);
}

TEST(SelectCuda, NormalisationMatchesCpu) {
  REQUIRE_GPU();
  const test::Seed seed(7);
  const Acts a = planted(301, 77, 0.3, 0.2, 0, 0, seed.value());
  for (Similarity sim : {Similarity::pearson, Similarity::cosine}) {
    const Features f = normalize(a.x.data(), a.T, a.d, sim);
    for (gpu::Precision p : {gpu::Precision::f64, gpu::Precision::f32}) {
      const gpu::DeviceFeatures g = gpu::normalize_host(a.x.data(), a.T, a.d, sim, p);
      ASSERT_EQ(g.T(), a.T);
      ASSERT_EQ(g.d(), a.d);
      const std::vector<double> z = g.download();
      double worst = 0;
      for (size_t i = 0; i < z.size(); ++i) worst = std::max(worst, std::fabs(z[i] - f.z[i]));
      EXPECT_LE(worst, p == gpu::Precision::f64 ? 1e-14 : 1e-6) << name(p);
      // Under pearson a constant row is exactly zero in both.
      if (sim == Similarity::pearson)
        for (int64_t i = 0; i < a.d; ++i) EXPECT_EQ(z[size_t(13 * a.d + i)], 0.0);
    }
  }
  EXPECT_THROW(gpu::normalize_host(a.x.data(), 0, a.d, Similarity::pearson), Error);
}

struct Case {
  int64_t T, d;
  double tau, sigma;
  int chain;
  int64_t panel_rows;
};

// The chain's members k phi must stay below pi (no wrap-around to the first members), and fit in T.
int chain_length(const Case& c, double phi) {
  if (c.tau <= 0 || c.chain <= 0) return 0;
  const int fit = int(std::floor(3.14159 / phi)) - 1;
  return std::max(0, std::min({c.chain, fit, int((c.T - c.T / 3) / 2)}));
}

// Planted data, every tau (0: exact duplicates), odd sizes, small and default panels: identical sets,
// parents, Gram needed counts and the simulated number of rounds.
TEST(SelectCuda, FullMatchesCpuOnPlantedData) {
  REQUIRE_GPU();
  const std::vector<Case> cases = {
      {1, 16, 0.3, 0.2, 0, 0},       {2, 16, 0.3, 0.0, 0, 0},       {37, 64, 0.0, 0.0, 0, 0},
      {300, 128, 0.3, 0.2, 12, 0},   {300, 128, 0.3, 0.2, 12, 128}, {1000, 96, 0.2, 0.1, 20, 0},
      {1537, 200, 0.5, 0.4, 9, 256}, {1537, 200, 0.0, 0.0, 0, 384}, {2500, 64, 0.3, 0.25, 30, 0}};
  const test::Seed base(100);
  uint64_t seed = base.value();
  for (const Case& c : cases) {
    const double theta = opts_of(c.tau).theta();
    // The chain's step: cos(phi) halfway between theta and 1, cos(2 phi) then well below theta.
    const double phi = c.tau > 0 ? std::acos(1 - c.tau * c.tau / 2) : 0;
    const int chain = chain_length(c, phi);
    const Acts a = planted(c.T, c.d, 0.35, c.sigma, chain, phi, ++seed);
    for (Similarity sim : {Similarity::pearson, Similarity::cosine}) {
      const Options o = opts_of(c.tau, sim);
      const Features f = normalize(a.x.data(), a.T, a.d, sim);
      const Selection cpu = run_full(f, o);
      const bool clear = c.T < 2 || nearest_to_theta(f, theta) > kBand;
      {
        SCOPED_TRACE(::testing::Message() << "certified T=" << c.T << " tau=" << c.tau << " " << to_string(sim));
        certified_vs_f64(a, o, nullptr, c.panel_rows);
      }
      for (gpu::Precision p : {gpu::Precision::f64, gpu::Precision::f32, gpu::Precision::tf32,
                               gpu::Precision::f16_certified}) {
        SCOPED_TRACE(::testing::Message() << "T=" << c.T << " d=" << c.d << " tau=" << c.tau << " panel="
                                          << c.panel_rows << " " << to_string(sim) << " " << name(p));
        const gpu::DeviceFeatures g = gpu::normalize_host(a.x.data(), a.T, a.d, sim, p);
        const gpu::GpuSelection res = gpu::run_full(g, o, {p, c.panel_rows});
        const Agreement ag = compare(f, cpu, res.sel, theta);
        if (clear && p != gpu::Precision::tf32) {
          EXPECT_EQ(ag.first_diff, -1) << ag.what;
        } else {
          EXPECT_TRUE(ag.explained) << ag.what;
        }
        if (ag.first_diff >= 0) continue;
        EXPECT_EQ(res.sel.reps, cpu.reps);
        EXPECT_EQ(res.sel.cost.needed, cpu.cost.needed);
        EXPECT_TRUE(res.sel.trace.full_gram);
        // Computed: each panel of rows [a, b) against the columns s < b - 1, their count padded to
        // a multiple of 32 as far as there are columns.
        int64_t computed = 0;
        for (int64_t r0 = 0; r0 < c.T; r0 += res.stats.panel_rows) {
          const int64_t b = std::min(c.T, r0 + res.stats.panel_rows);
          if (b > 1) computed += (b - r0) * std::min((b - 1 + 31) / 32 * 32, c.T);
        }
        EXPECT_EQ(res.sel.cost.computed, computed);
        if (c.panel_rows > 0) EXPECT_EQ(res.stats.panel_rows, std::min(c.T, c.panel_rows));
        EXPECT_EQ(res.stats.rounds, expected_rounds(f, cpu, theta));
        EXPECT_GE(res.stats.rounds, 1);
        EXPECT_LE(res.stats.rounds, c.T);
        if (chain > 0) EXPECT_GE(res.stats.rounds, chain);  // the chain is resolved in order
        EXPECT_EQ(res.stats.iterations, 1);
      }
    }
  }
}

// The exact cascade against the CPU's: from a previous layer that differs (additions and removals),
// from {0} alone (nearly every token is an addition), and from every token (all removals checked).
TEST(SelectCuda, CascadeMatchesCpuOnPlantedData) {
  REQUIRE_GPU();
  const std::vector<Case> cases = {{2, 16, 0.3, 0.0, 0, 0},       {300, 128, 0.3, 0.2, 12, 0},
                                   {1000, 96, 0.2, 0.1, 20, 128}, {1537, 200, 0.5, 0.4, 9, 0},
                                   {1537, 200, 0.0, 0.0, 0, 256}, {2500, 64, 0.3, 0.25, 30, 0}};
  const test::Seed base(500);
  uint64_t seed = base.value();
  for (const Case& c : cases) {
    const double theta = opts_of(c.tau).theta();
    const double phi = c.tau > 0 ? std::acos(1 - c.tau * c.tau / 2) : 0;
    const Acts below = planted(c.T, c.d, 0.35, c.sigma, chain_length(c, phi), phi, ++seed);
    const Acts above = perturb(below, c.tau > 0 ? 0.02 : 0.0, 0.05, ++seed);
    const Options o = opts_of(c.tau);
    const Features fb = normalize(below.x.data(), below.T, below.d, o.similarity);
    const Features f = normalize(above.x.data(), above.T, above.d, o.similarity);
    const bool clear = c.T < 2 || nearest_to_theta(f, theta) > kBand;
    Selection prev_changed = run_full(fb, o);
    Selection prev_zero;
    prev_zero.reps = {0};
    prev_zero.parent.assign(static_cast<size_t>(c.T), 0);
    Selection prev_all;
    prev_all.parent.resize(static_cast<size_t>(c.T));
    std::iota(prev_all.parent.begin(), prev_all.parent.end(), 0);
    prev_all.reps = prev_all.parent;
    const std::pair<const char*, const Selection*> prevs[] = {
        {"changed", &prev_changed}, {"zero", &prev_zero}, {"all", &prev_all}};
    for (const auto& [pname, prev] : prevs) {
      const Selection cpu = run_cascade(f, *prev, o);
      ASSERT_EQ(cpu.reps, run_full(f, o).reps);  // the reference's own invariant
      {
        SCOPED_TRACE(::testing::Message() << "certified T=" << c.T << " tau=" << c.tau << " prev=" << pname);
        certified_vs_f64(above, o, prev, c.panel_rows);
      }
      for (gpu::Precision p : {gpu::Precision::f64, gpu::Precision::f32, gpu::Precision::f16_certified}) {
        SCOPED_TRACE(::testing::Message() << "T=" << c.T << " tau=" << c.tau << " prev=" << pname << " "
                                          << name(p) << " panel=" << c.panel_rows);
        const gpu::DeviceFeatures g = gpu::normalize_host(above.x.data(), above.T, above.d, o.similarity, p);
        const gpu::GpuSelection res = gpu::run_cascade(g, *prev, o, {p, c.panel_rows});
        const Agreement ag = compare(f, cpu, res.sel, theta);
        if (clear) {
          EXPECT_EQ(ag.first_diff, -1) << ag.what;
        } else {
          EXPECT_TRUE(ag.explained) << ag.what;
        }
        if (ag.first_diff >= 0) continue;
        EXPECT_EQ(res.sel.reps, cpu.reps);
        EXPECT_EQ(res.sel.added, cpu.added);
        EXPECT_EQ(res.sel.removed, cpu.removed);
        EXPECT_EQ(res.sel.cost.needed, cpu.cost.needed);  // the same columns, counted the same way
        EXPECT_EQ(res.sel.trace.cross_columns, prev->reps);
        // Every addition got a spot column; speculative ones are counted as computed only.
        EXPECT_TRUE(std::includes(res.sel.trace.spot_columns.begin(), res.sel.trace.spot_columns.end(),
                                  res.sel.added.begin(), res.sel.added.end()));
        EXPECT_EQ(res.stats.spot_columns, int64_t(res.sel.trace.spot_columns.size()));
        EXPECT_GE(res.sel.cost.computed, res.sel.cost.needed);
        EXPECT_GE(res.stats.iterations, 1);
        EXPECT_LE(res.stats.iterations, 2 + int64_t(res.sel.added.size()));
        EXPECT_GE(res.stats.rounds, res.stats.iterations);
        EXPECT_LE(res.stats.rounds, res.stats.iterations * c.T);
        if (res.sel.added.empty()) EXPECT_EQ(res.stats.iterations, 1);
      }
    }
    // The same result as the GPU's own full selection, parents included.
    const gpu::DeviceFeatures g = gpu::normalize_host(above.x.data(), above.T, above.d, o.similarity);
    EXPECT_EQ(gpu::run_cascade(g, prev_changed, o).sel.parent, gpu::run_full(g, o).sel.parent);
  }
}

#ifdef CASCADE_WITH_CUDA
// Decoding on the device (gpu::DeviceIncremental, CUDA build only) makes the CPU selector's decisions,
// and so the full selection's of the whole sequence: prefill of the first third, then token by token,
// with host steps and with resident steps (decided on the device, nothing brought back: read from the
// device's decision after each step and from sync_resident() every 17 tokens, a host step now and then
// between syncs, so the two kinds interleave). The selector's rows kept in float32 and, for features
// that bf16 holds exactly (rounded to it first, as a 16-bit model's are), in bf16.
TEST(SelectCuda, DecodeStepsMatchCpuIncremental) {
  REQUIRE_GPU();
  const test::Seed base(700);
  uint64_t seed = base.value();
  for (const auto& [T, d, tau, sigma] : std::vector<std::tuple<int64_t, int64_t, double, double>>{
           {400, 96, 0.3, 0.2}, {300, 64, 0.0, 0.0}, {257, 128, 0.5, 0.4}}) {
    Acts a = planted(T, d, 0.35, sigma, 0, 0, ++seed);
    for (const auto& [sim, rows_dtype] : {std::pair{Similarity::pearson, DType::F32}, std::pair{Similarity::cosine, DType::F32},
                                          std::pair{Similarity::pearson, DType::BF16}}) {
      SCOPED_TRACE(::testing::Message() << "T=" << T << " d=" << d << " tau=" << tau << " " << to_string(sim) << " rows "
                                        << dtype_name(rows_dtype));
      if (rows_dtype == DType::BF16)
        for (float& v : a.x) v = bf16_to_f32(f32_to_bf16(v));
      const Options o = opts_of(tau, sim);
      const int64_t p0 = T / 3;
      const Features all = normalize(a.x.data(), T, d, sim), head = normalize(a.x.data(), p0, d, sim);
      const Selection whole = run_full(all, o), prefix = run_full(head, o);
      IncrementalSelector cpu(head, prefix, o);
      const gpu::DeviceFeatures g = gpu::normalize_host(a.x.data(), p0, d, sim);
      const Selection gpu_prefix = gpu::run_full(g, o).sel;
      const auto x_prefix = cuda::Buffer<float>::from_host(std::span<const float>(a.x.data(), size_t(p0 * d)));
      gpu::DeviceIncremental dev(g, x_prefix.data(), rows_dtype, gpu_prefix, o),
          res(g, x_prefix.data(), rows_dtype, gpu_prefix, o);
      const bool clear = nearest_to_theta(all, o.theta()) > kBand;
      std::vector<IncrementalSelector::Step> want, host, resident;
      const auto synced = [&] {
        for (const IncrementalSelector::Step& st : res.sync_resident()) resident.push_back(st);
      };
      for (int64_t t = p0; t < T; ++t) {
        auto x = cuda::Buffer<float>::from_host(std::span<const float>(a.x.data() + t * d, size_t(d)));
        want.push_back(cpu.step(a.x.data() + t * d));
        host.push_back(dev.step(x.data()));
        if (t % 50 == 49) {  // a host step: the resident ones before it are synchronised first
          synced();
          resident.push_back(res.step(x.data()));
          continue;
        }
        res.plan_resident(1);
        res.step_resident(x.data());
        int32_t decision[2] = {-1, -1};
        // On the engine's stream (non-blocking: a plain cudaMemcpy would not wait for the step's kernels).
        cudaStream_t st = cuda::context().stream;
        CASCADE_CUDA_CHECK(cudaMemcpyAsync(decision, res.decision(), sizeof decision, cudaMemcpyDeviceToHost, st));
        CASCADE_CUDA_CHECK(cudaStreamSynchronize(st));
        if (clear) EXPECT_EQ(decision[0] != 0, want.back().is_rep) << "token " << t << " resident";
        if (t % 17 == 16) synced();
      }
      synced();
      EXPECT_EQ(dev.T(), T);
      EXPECT_EQ(res.T(), T);
      ASSERT_EQ(resident.size(), want.size());
      for (const auto& [got, how] : {std::pair{&host, "host"}, std::pair{&resident, "resident"}}) {
        int64_t differ = 0;
        for (size_t i = 0; i < want.size(); ++i) {
          const int64_t t = p0 + int64_t(i);
          differ += (*got)[i].is_rep != want[i].is_rep || (*got)[i].parent != want[i].parent;
          if (clear) {
            EXPECT_EQ((*got)[i].is_rep, want[i].is_rep) << "token " << t << " " << how;
            EXPECT_EQ((*got)[i].parent, want[i].parent) << "token " << t << " " << how;
            EXPECT_EQ((*got)[i].parent, whole.parent[size_t(t)]) << "token " << t << " " << how;
          }
        }
        if (!clear) EXPECT_LE(differ, T / 20) << how;
      }
    }
  }
}
#endif

// Every kernel of the selection once, small enough for compute-sanitizer's racecheck (whose cost is in
// cuBLAS's shared-memory kernels): a full selection with a chain (many rounds), a cascade with
// additions and removals, an edge list that overflows its first capacity (tau = 0.5 on tight groups).
TEST(SelectCuda, SmallForSanitizers) {
  REQUIRE_GPU();
  const double tau = 0.3, phi = std::acos(1 - tau * tau / 2);
  const test::Seed seed(11);
  const Acts below = planted(300, 64, 0.3, 0.2, 8, phi, seed.value());
  const Acts above = perturb(below, 0.02, 0.05, seed.derived(12));
  const Options o = opts_of(tau);
  const Features f = normalize(above.x.data(), above.T, above.d, o.similarity);
  const Selection prev = run_full(normalize(below.x.data(), below.T, below.d, o.similarity), o);
  const gpu::DeviceFeatures g = gpu::normalize_host(above.x.data(), above.T, above.d, o.similarity);
  const gpu::GpuSelection full = gpu::run_full(g, o, {gpu::Precision::f64, 64});
  const gpu::GpuSelection casc = gpu::run_cascade(g, prev, o, {gpu::Precision::f64, 64});
  EXPECT_TRUE(compare(f, run_full(f, o), full.sel, o.theta()).explained);
  EXPECT_TRUE(compare(f, run_cascade(f, prev, o), casc.sel, o.theta()).explained);
  EXPECT_GE(full.stats.rounds, 8);
  // 12000 tokens in 3 tight groups: ~T^2/6 = 24M edges, far past the first capacity (4 T).
  const Acts dense = planted(12000, 16, 0.0002, 0.05, 0, 0, seed.derived(13));
  const gpu::DeviceFeatures gd = gpu::normalize_host(dense.x.data(), dense.T, dense.d, o.similarity);
  const gpu::GpuSelection many = gpu::run_full(gd, opts_of(0.5));
  const Features fd = normalize(dense.x.data(), dense.T, dense.d, o.similarity);
  EXPECT_EQ(many.sel.parent, run_full(fd, opts_of(0.5)).parent);
  EXPECT_GT(many.stats.edges, 4 * dense.T);
  // f16-certified's kernels: extraction, recomputation, parent candidates; the cascade's fp16 gather.
  certified_vs_f64(above, o, nullptr, 64);
  certified_vs_f64(above, o, &prev, 64);
}

TEST(SelectCuda, RefusesWhatItDoesNotDo) {
  REQUIRE_GPU();
  const Acts a = planted(50, 32, 0.3, 0.2, 0, 0, 3);
  const gpu::DeviceFeatures g = gpu::normalize_host(a.x.data(), a.T, a.d, Similarity::pearson);
  Options o = opts_of(0.3);
  o.rule = Rule::all_earlier;
  EXPECT_THROW(gpu::run_full(g, o), Error);
  Selection prev;
  prev.reps = {0};
  prev.parent.assign(50, 0);
  EXPECT_THROW(gpu::run_cascade(g, prev, o), Error);
  o.rule = Rule::greedy;
  prev.parent.assign(49, 0);
  EXPECT_THROW(gpu::run_cascade(g, prev, o), Error);  // a selection of another length
  o.tau = 1.0;
  EXPECT_THROW(gpu::run_full(g, o), Error);
}

// ---- f16-certified: the bound and adversarial inputs -------------------------------------------

// certified_bound(d) holds for the tensor cores' fp16 Gram: against the float64 inner products of the
// same float64 rows (long double sums), on gaussian rows, rows of one sign (no cancellation, the
// rounding errors add up), and rows with components deep in fp16's subnormal range. And it is not
// vacuous: ~2e-3 at d = 4096, far below the gaps between theta and typical rho.
TEST(SelectCuda, CertifiedBoundHoldsAndIsSmall) {
  EXPECT_LT(gpu::certified_bound(4096), 2.5e-3);
  EXPECT_LT(gpu::certified_bound(8192), 3.5e-3);
  EXPECT_GT(gpu::certified_bound(64), 0x1.0p-10);  // at least fp16's rounding of two factors
  REQUIRE_GPU();
  const test::Seed seed(900);
  std::mt19937_64 rng(seed.value());
  std::normal_distribution<double> g;
  for (int64_t d : {64, 576, 4096, 8192}) {
    for (int kind = 0; kind < 3; ++kind) {
      const int64_t T = 256;
      std::vector<float> x(size_t(T * d));
      for (size_t i = 0; i < x.size(); ++i) {
        const double v = g(rng);
        x[i] = float(kind == 1 ? std::fabs(v) : kind == 2 && i % 3 == 0 ? v * 1e-7 : v);
      }
      const gpu::DeviceFeatures z =
          gpu::normalize_host(x.data(), T, d, Similarity::cosine, gpu::Precision::f16_certified);
      const std::vector<double> z64 = z.download(), lp = gpu::gram_block(z, T, T);
      double worst = 0;
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j < T; ++j) {
          long double acc = 0;
          for (int64_t k = 0; k < d; ++k) acc += (long double)z64[size_t(i * d + k)] * z64[size_t(j * d + k)];
          worst = std::max(worst, std::fabs(lp[size_t(i * T + j)] - double(acc)));
        }
      const double bound = gpu::certified_bound(d);
      EXPECT_LE(worst, bound) << "d=" << d << " kind " << kind;
      std::printf("d=%lld kind %d: max |rho_16 - rho_64| %.3g, bound %.3g\n", (long long)d, kind, worst, bound);
    }
  }
}

// Tokens whose correlations all lie near theta: x_t = sqrt(theta) c + sqrt(1 - theta) n_t with n_t
// independent unit directions orthogonal to c, so rho(t, s) = theta + (1 - theta) <n_t, n_s>, within
// ~0.09 / sqrt(d) of theta: inside certified_bound(d) for a quarter of the pairs at d = 576, nearly all
// at d = 8192. Most entries are recomputed (the uncertain list overflows its first
// capacity), every parent is a near tie; the selection must still be f64's, full and cascade.
TEST(SelectCuda, CertifiedEqualsF64WhenEverythingIsNearTheta) {
  REQUIRE_GPU();
  const test::Seed seed(910);
  std::mt19937_64 rng(seed.value());
  std::normal_distribution<double> g;
  const double tau = 0.3, theta = opts_of(tau).theta();
  for (const auto& [T, d] : std::vector<std::pair<int64_t, int64_t>>{{1500, 576}, {800, 4096}, {400, 8192}}) {
    SCOPED_TRACE(::testing::Message() << "T=" << T << " d=" << d);
    Acts a{T, d, std::vector<float>(size_t(T * d))};
    const std::vector<double> c = unit_gauss(rng, d);
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> n = unit_gauss(rng, d);
      double dot = 0, nn = 0;
      for (int64_t i = 0; i < d; ++i) dot += n[size_t(i)] * c[size_t(i)];
      for (int64_t i = 0; i < d; ++i) n[size_t(i)] -= dot * c[size_t(i)], nn += n[size_t(i)] * n[size_t(i)];
      for (int64_t i = 0; i < d; ++i)
        a.x[size_t(t * d + i)] = float(std::sqrt(theta) * c[size_t(i)] + std::sqrt((1 - theta) / nn) * n[size_t(i)]);
    }
    const Options o = opts_of(tau, Similarity::cosine);
    const gpu::GpuSelection full = certified_vs_f64(a, o, nullptr);
    EXPECT_GT(full.stats.recomputed_fraction, 0.05);
    EXPECT_GT(full.stats.recomputed_parent_edges, 0);
    const Acts b = perturb(a, 0.05, 0.05, seed.derived(uint64_t(d)));
    certified_vs_f64(b, o, &full.sel);
    // And f64 against the CPU reference (the band rule: rho here is everywhere near theta).
    const Features f = normalize(a.x.data(), T, d, o.similarity);
    EXPECT_TRUE(compare(f, run_full(f, o), full.sel, theta).explained);
  }
}

// One pair (s = 1, t = T - 1) planted at a chosen rho among near-orthogonal tokens; tau is then set so
// that the threshold theta - kRhoSlack sits delta below the pair's float64 rho: delta a few fp16 steps
// (2^-11, inside or just outside certified_bound) or a small multiple of the float64 rounding of a
// d-term sum. The pair is an edge exactly when delta >= 0, in f64 and in f16-certified alike.
TEST(SelectCuda, CertifiedDecidesPairsPlantedAtTheThreshold) {
  REQUIRE_GPU();
  const test::Seed seed(920);
  std::mt19937_64 rng(seed.value());
  std::normal_distribution<double> g;
  for (int64_t d : {64, 4096}) {
    for (double delta : {-3 * 0x1.0p-11, -2 * 0x1.0p-11, -0x1.0p-11, -0x1.0p-13, 0x1.0p-13, 0x1.0p-11,
                         2 * 0x1.0p-11, 3 * 0x1.0p-11, -1e-11, 1e-11, -1e-12, 1e-12}) {
      SCOPED_TRACE(::testing::Message() << "d=" << d << " delta=" << delta);
      const int64_t T = 48;
      Acts a{T, d, std::vector<float>(size_t(T * d))};
      for (float& v : a.x) v = float(g(rng));
      // Token T-1 = cos(phi) token 1 + sin(phi) w, w a fresh direction: rho ~ 0.91.
      const double cphi = 0.91, sphi = std::sqrt(1 - cphi * cphi);
      const std::vector<double> u = unit_gauss(rng, d), w = unit_gauss(rng, d);
      for (int64_t i = 0; i < d; ++i) {
        a.x[size_t(d + i)] = float(u[size_t(i)]);
        a.x[size_t((T - 1) * d + i)] = float(cphi * u[size_t(i)] + sphi * w[size_t(i)]);
      }
      const Features f = normalize(a.x.data(), T, d, Similarity::cosine);
      const double r = rho(f, T - 1, 1);
      Options o = opts_of(0.3, Similarity::cosine);
      o.tau = std::sqrt(1 - (r - delta + kRhoSlack));
      const double thr = o.theta() - kRhoSlack;
      ASSERT_NEAR(r - thr, delta, 1e-15);
      const gpu::GpuSelection got = certified_vs_f64(a, o, nullptr);
      EXPECT_EQ(got.sel.parent[size_t(T - 1)], r >= thr ? 1 : T - 1);
      // The pair is recomputed exactly when its fp16 value is within the bound of the threshold (every
      // other pair is far from it).
      const gpu::DeviceFeatures z =
          gpu::normalize_host(a.x.data(), T, d, Similarity::cosine, gpu::Precision::f16_certified);
      const double lp = gpu::gram_block(z, T, T)[size_t((T - 1) * T + 1)], E = gpu::certified_bound(d);
      if (std::fabs(lp - thr) < E - 1e-9) EXPECT_EQ(got.stats.recomputed, 1);
      if (std::fabs(lp - thr) > E + 1e-9) EXPECT_EQ(got.stats.recomputed, 0);
    }
  }
}

// Parents: token t close to two representatives s1 < s2 (which are not close to each other) with
// rho(t, s2) - rho(t, s1) = eps, from fp16-sized gaps down to exact ties. Exact ties use rows of
// 0 / 1 with 16 (d = 64) or 64 (d = 4096) ones: every product and sum is exact in every precision and
// order, so the tie is a tie in f64 too and goes to s1.
TEST(SelectCuda, CertifiedDecidesParentNearTies) {
  REQUIRE_GPU();
  const test::Seed seed(930);
  std::mt19937_64 rng(seed.value());
  std::normal_distribution<double> g;
  for (int64_t d : {64, 4096}) {
    // Exact ties: k ones per row; s1 = ones at [0, k), s2 shares k - 2 of them, each t shares k - 1
    // with both. rho(s1, s2) = 1 - 2/k, rho(t, s) = 1 - 1/k; theta between.
    const int64_t k = d == 64 ? 16 : 64, T = 40;
    Acts a{T, d, std::vector<float>(size_t(T * d), 0.0f)};
    const auto ones = [&](int64_t t, std::vector<int64_t> idx) {
      for (int64_t i : idx) a.x[size_t(t * d + i)] = 1.0f;
    };
    std::vector<int64_t> s1(static_cast<size_t>(k)), s2, tt;
    std::iota(s1.begin(), s1.end(), 0);
    s2.assign(s1.begin(), s1.end() - 2);
    s2.push_back(k), s2.push_back(k + 1);
    tt.assign(s1.begin(), s1.end() - 1);
    tt.push_back(k);
    for (int64_t t = 0; t < T; ++t) {
      if (t == 0) ones(t, s1);
      else if (t == 1) ones(t, s2);
      else if (t % 2 == 0) ones(t, tt);
      else for (int64_t i = 0; i < d; ++i) a.x[size_t(t * d + i)] = float(g(rng));  // unrelated tokens
    }
    Options o = opts_of(0.3, Similarity::cosine);
    o.tau = std::sqrt(1.5 / double(k));  // theta = 1 - 1.5 / k
    SCOPED_TRACE(::testing::Message() << "exact ties d=" << d);
    const gpu::GpuSelection ties = certified_vs_f64(a, o, nullptr);
    for (int64_t t = 2; t < T; t += 2) EXPECT_EQ(ties.sel.parent[size_t(t)], 0) << "token " << t;
    EXPECT_GT(ties.stats.recomputed_parent_edges, 0);

    // Near ties in a plane: s1 = e1, s2 at angle alpha (cos alpha < theta), t at angle alpha / 2 + gamma
    // from s1, so rho(t, s1) - rho(t, s2) ~ 2 sin(alpha / 2) sin(gamma).
    const double theta = 0.91, alpha = 2 * std::acos(0.95);
    for (double eps : {4 * 0x1.0p-11, 0x1.0p-11, 0x1.0p-13, 1e-5, -1e-5, -0x1.0p-13, -0x1.0p-11}) {
      SCOPED_TRACE(::testing::Message() << "near tie d=" << d << " eps=" << eps);
      const std::vector<double> e1 = unit_gauss(rng, d), e2raw = unit_gauss(rng, d);
      double dot = 0, nn = 0;
      for (int64_t i = 0; i < d; ++i) dot += e1[size_t(i)] * e2raw[size_t(i)];
      std::vector<double> e2(static_cast<size_t>(d));
      for (int64_t i = 0; i < d; ++i) {
        e2[size_t(i)] = e2raw[size_t(i)] - dot * e1[size_t(i)];
        nn += e2[size_t(i)] * e2[size_t(i)];
      }
      for (double& v : e2) v /= std::sqrt(nn);
      const double gamma = std::asin(eps / (2 * std::sin(alpha / 2)));
      Acts b{T, d, std::vector<float>(size_t(T * d))};
      for (int64_t t = 0; t < T; ++t) {
        const double ang = t == 0 ? 0 : t == 1 ? alpha : alpha / 2 + gamma * double(t % 4 == 0 ? 1 : -1);
        const bool unrelated = t > 1 && t % 2 == 1;
        for (int64_t i = 0; i < d; ++i)
          b.x[size_t(t * d + i)] = unrelated ? float(g(rng))
                                             : float(std::cos(ang) * e1[size_t(i)] + std::sin(ang) * e2[size_t(i)]);
      }
      Options ob = opts_of(std::sqrt(1 - theta), Similarity::cosine);
      const gpu::GpuSelection near = certified_vs_f64(b, ob, nullptr);
      const Features f = normalize(b.x.data(), T, d, Similarity::cosine);
      for (int64_t t = 2; t < T; t += 2) {
        const int32_t want = rho(f, t, 0) >= rho(f, t, 1) ? 0 : 1;  // the CPU's float64 argmax, ties to s1
        EXPECT_EQ(near.sel.parent[size_t(t)], want) << "token " << t;
      }
    }
  }
}

// ---- real features ------------------------------------------------------------------------------

// Records the features X_l each layer's attention receives, and runs exact attention.
class Recorder : public AttentionFactory {
 public:
  mutable std::vector<std::vector<float>> x;  // per layer [T, d]
  std::vector<std::unique_ptr<LayerAttention>> make(
      const std::vector<AttentionContext>& layers) const override {
    auto inner = exact_.make(layers);
    x.assign(layers.size(), {});
    std::vector<std::unique_ptr<LayerAttention>> out;
    for (size_t l = 0; l < layers.size(); ++l)
      out.push_back(std::make_unique<Tap>(std::move(inner[l]), &x[l], layers[l].spec->d_model));
    return out;
  }

 private:
  struct Tap : LayerAttention {
    Tap(std::unique_ptr<LayerAttention> in, std::vector<float>* sink, int64_t d)
        : in(std::move(in)), sink(sink), d(d) {}
    void forward(const float* xs, int64_t n, const int64_t* pos, float* o) override {
      sink->insert(sink->end(), xs, xs + n * d);
      in->forward(xs, n, pos, o);
    }
    int64_t cache_bytes() const override { return in->cache_bytes(); }
    std::unique_ptr<LayerAttention> in;
    std::vector<float>* sink;
    int64_t d;
  };
  ExactAttentionFactory exact_;
};

TEST(SelectCuda, RealFeaturesOfStories260K) {
  REQUIRE_GPU();
  auto m = Model::load(test::bundled_model_dir() / "stories260K.bin");
  auto tok = load_tokenizer(test::bundled_model_dir() / "tok512.bin");
  std::ifstream in(test::data_dir() / "text" / "sample.txt", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  auto ids = tok->encode(ss.str(), true);
  ids.resize(std::min<size_t>(ids.size(), 500));
  const Recorder rec;
  Sequence seq = m->new_sequence(&rec);
  m->forward(seq, ids);
  const int64_t T = int64_t(ids.size()), d = m->spec().d_model;
  ASSERT_GT(T, 300);
  int64_t compared = 0, identical = 0, recomputed = 0;
  for (double tau : {0.1, 0.3, 0.5}) {
    int64_t full_rounds = 0, casc_rounds = 0, casc_iters = 0, reps = 0;
    const Options o = opts_of(tau);
    Selection prev_cpu;
    for (size_t l = 0; l < rec.x.size(); ++l) {
      ASSERT_EQ(int64_t(rec.x[l].size()), T * d);
      const Features f = normalize(rec.x[l].data(), T, d, o.similarity);
      const Selection full_cpu = run_full(f, o);
      {
        SCOPED_TRACE(::testing::Message() << "certified tau=" << tau << " layer " << l);
        const Acts a{T, d, rec.x[l]};
        recomputed += certified_vs_f64(a, o, nullptr).stats.recomputed;
        if (l > 0) certified_vs_f64(a, o, &prev_cpu);
      }
      for (gpu::Precision p : {gpu::Precision::f64, gpu::Precision::f32}) {
        SCOPED_TRACE(::testing::Message() << "tau=" << tau << " layer " << l << " " << name(p));
        const gpu::DeviceFeatures g = gpu::normalize_host(rec.x[l].data(), T, d, o.similarity, p);
        const gpu::GpuSelection full = gpu::run_full(g, o, {p, 0});
        full_rounds = std::max(full_rounds, full.stats.rounds);
        reps += p == gpu::Precision::f64 ? int64_t(full.sel.reps.size()) : 0;
        EXPECT_LE(full.stats.rounds, T);
        Agreement ag = compare(f, full_cpu, full.sel, o.theta());
        EXPECT_TRUE(ag.explained) << ag.what;
        ++compared;
        identical += ag.first_diff < 0;
        if (ag.first_diff < 0 && p == gpu::Precision::f64)
          EXPECT_EQ(full.stats.rounds, expected_rounds(f, full_cpu, o.theta()));
        if (l == 0) continue;
        const Selection casc_cpu = run_cascade(f, prev_cpu, o);
        const gpu::GpuSelection casc = gpu::run_cascade(g, prev_cpu, o, {p, 0});
        casc_rounds = std::max(casc_rounds, casc.stats.rounds);
        casc_iters = std::max(casc_iters, casc.stats.iterations);
        ag = compare(f, casc_cpu, casc.sel, o.theta());
        EXPECT_TRUE(ag.explained) << ag.what;
        ++compared;
        identical += ag.first_diff < 0;
        if (ag.first_diff < 0) {
          EXPECT_EQ(casc.sel.cost.needed, casc_cpu.cost.needed);
          EXPECT_EQ(casc.sel.added, casc_cpu.added);
        }
        // The GPU cascade against the GPU full selection (different GEMMs: the same band rule).
        ag = compare(f, full.sel, casc.sel, o.theta());
        EXPECT_TRUE(ag.explained) << "cascade vs full on the GPU: " << ag.what;
      }
      prev_cpu = full_cpu;
    }
    std::printf(
        "stories260K T=%lld tau=%.1f: mean r/T %.3f; most rounds: full %lld, cascade %lld over %lld "
        "iterations\n",
        (long long)T, tau, double(reps) / double(T * int64_t(rec.x.size())), (long long)full_rounds,
        (long long)casc_rounds, (long long)casc_iters);
  }
  // In float64 the decisions are the CPU's; report how many comparisons were identical overall.
  RecordProperty("identical", int(identical));
  RecordProperty("compared", int(compared));
  std::printf("stories260K: %lld of %lld GPU selections identical to the CPU's; f16-certified recomputed %lld entries\n",
              (long long)identical, (long long)compared, (long long)recomputed);
}

}  // namespace
}  // namespace cascade::select
