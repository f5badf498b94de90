// ADA on the GPU (attention/ada_attention_cuda.cu, made by AdaAttentionFactory::make_gpu) against the
// CPU reference (attention/ada_attention.cc), for every conformance fixture (tests/data/models) and
// the bundled stories260K, at the default tau (0.30) and at tau = 0.80 (theta = 0.36: most tokens
// are redundant on these small random-weight models, so the compressed path is what is exercised):
// - f32: every layer's selection (set and parents) equals the CPU's, except for tokens decided within
//   kNearTheta of theta (the features differ by float32 rounding; counted and printed, at most 2% of
//   tokens); where every layer's selection is equal, the logits are within the CPU/GPU exact-attention
//   bound of cuda_model_test (max |err| <= 1e-4 max |CPU| + 1e-5).
// - fp16 / bf16: where the selections equal the CPU's, logits within 2e-2 / 6e-2 of max |CPU logit|
//   (cuda_model_test's bounds); the selections' agreement is printed.
// - --select full and --select cascade give the same selections and logits on the GPU (SPEC 2).
// - The same for --ada-queries all at tau 0.80 (every token's query, over the representatives and
//   its own key) and for --proportional (log n_s on the representatives' logits) with either.
// - The same for SPEC 6's variants: keys features (normalised on the device), the span rule (the
//   CPU's selection on the downloaded features) and dense layers (the exact GPU layers).
// - Decoding token by token against the compressed cache reproduces the prefill logits (f32 bound),
//   in passes of 7, and in one-token steps decided on the device (resident, with and without CUDA
//   graphs) mixed with passes and trace reads: the same decisions.
// - Options the GPU lacks are a cascade::Error; an explicit ExactAttentionFactory runs exact attention.
// Skips when there is no GPU; one skipped test in a CPU-only build.
#include <gtest/gtest.h>

#include "cuda/runtime.h"

#ifdef CASCADE_WITH_CUDA
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <span>
#include <string>

#include "attention/ada_attention.h"
#include "attention/exact_attention.h"
#include "core/error.h"
#include "engine/study_driver.h"
#include "io/npy.h"
#include "model/model.h"
#include "support/test_paths.h"

namespace cascade {
namespace {

namespace fs = std::filesystem;
using test::data_dir;

const char* kFixtures[] = {"gpt2", "opt", "opt_postln", "gptj", "neox", "neox_seq", "llama", "llama_gqa", "stories260K"};

fs::path model_path(const std::string& name) {
  return name == "stories260K" ? test::bundled_model_dir() / "stories260K.bin" : data_dir() / "models" / name;
}

std::vector<int32_t> ids_for(const std::string& name, int64_t vocab) {
  if (name != "stories260K") return read_npy(data_dir() / "ref" / name / "ids.npy").to_int32("ids");
  std::vector<int32_t> ids;
  for (int i = 0; i < 200; ++i) ids.push_back(int32_t((i * 37 + 11) % vocab));
  return ids;
}

float bound_for(DType t) { return t == DType::F32 ? 1e-4f : t == DType::F16 ? 2e-2f : 6e-2f; }

// max |got - want| and max |want| over n values.
std::pair<float, float> errs(const float* got, const float* want, int64_t n) {
  float scale = 0, err = 0;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_TRUE(std::isfinite(got[i])) << "logit " << i;
    scale = std::max(scale, std::fabs(want[i]));
    err = std::max(err, std::fabs(got[i] - want[i]));
  }
  return {err, scale};
}

void expect_close(const Tensor& got, const Tensor& want, DType t, const std::string& what) {
  ASSERT_EQ(got.dim(0), want.dim(0)) << what;
  ASSERT_EQ(got.dim(1), want.dim(1)) << what;
  const auto [err, scale] = errs(got.data(), want.data(), got.numel());
  std::printf("[ measured ] %s (%s): max |err| / max |ref| = %.3g\n", what.c_str(), dtype_name(t).c_str(),
              err / std::max(scale, 1e-6f));
  if (t == DType::F32) EXPECT_LE(err, 1e-4f * scale + 1e-5f) << what;
  else EXPECT_LE(err, bound_for(t) * scale) << what;
}

// Tokens whose (is representative, parent) differ between two selections of the same T.
int64_t differing(const select::Selection& a, const select::Selection& b) {
  if (a.T() != b.T()) return std::max(a.T(), b.T());
  int64_t n = 0;
  for (int64_t t = 0; t < a.T(); ++t) n += a.parent[size_t(t)] != b.parent[size_t(t)];
  return n;
}

struct Param {
  const char* name;
  DType t;
  double tau;
  AdaQueries queries = AdaQueries::reps;
  bool proportional = false;
  AdaReconstruct reconstruct = AdaReconstruct::copy;  // SPEC 6
  int64_t sinks = 0, window = 0;
  AdaFeatures features = AdaFeatures::hidden;
  select::Rule rule = select::Rule::greedy;
  int64_t dense = 0;
};

AdaOptions options(double tau, select::Mode mode = select::Mode::cascade, AdaQueries queries = AdaQueries::reps,
                   bool proportional = false, const Param* variant = nullptr) {
  AdaOptions o;
  o.select.tau = tau;
  o.mode.mode = mode;
  o.queries = queries;
  o.proportional = proportional;
  if (variant) {
    o.reconstruct = variant->reconstruct;
    o.sinks = variant->sinks;
    o.window = variant->window;
    o.features = variant->features;
    o.select.rule = variant->rule;
    o.dense_layers = variant->dense;
  }
  return o;
}

std::string variant_name(const Param& p) {
  return std::string(p.features == AdaFeatures::keys ? " keys" : "") + (p.rule == select::Rule::span ? " span" : "") +
         (p.dense ? " dense " + std::to_string(p.dense) : "");
}

// Compressed cache rows of a layer: the representatives, the sinks that are not, and the window's ring.
int64_t cache_rows(const select::Selection& sel, const AdaOptions& o) {
  int64_t n = int64_t(sel.reps.size());
  for (int64_t t = 0; t < std::min(o.sinks, sel.T()); ++t) n += sel.parent[size_t(t)] != t;
  return n + o.plan().ring();
}

class AdaCuda : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    if (!cuda::gpu_available()) GTEST_SKIP() << "no GPU: " << cuda::describe_gpu();
  }
};

TEST_P(AdaCuda, MatchesCpuAdaAndDecodeMatchesPrefill) {
  const Param& P = GetParam();
  const auto& [name, t, tau, queries, proportional, reconstruct, sinks, window, features, rule, dense] = P;
  const std::string what = std::string(name) + " tau " + std::to_string(tau).substr(0, 4) +
                           (queries == AdaQueries::all ? " all-queries" : "") + (proportional ? " proportional" : "") +
                           (reconstruct == AdaReconstruct::lstsq ? " lstsq" : "") +
                           (sinks || window ? " sinks " + std::to_string(sinks) + " window " + std::to_string(window) : "") +
                           variant_name(P);
  auto cpu = Model::load(model_path(name));
  const std::vector<int32_t> ids = ids_for(name, cpu->spec().vocab_size);
  const int64_t T = int64_t(ids.size()), L = cpu->spec().n_layers;
  const AdaAttentionFactory f(options(tau, select::Mode::cascade, queries, proportional, &P));
  Sequence cs = cpu->new_sequence(&f);
  const Tensor want = cpu->forward(cs, ids);

  auto gpu = Model::load(model_path(name));
  gpu->to_device(Device::Cuda, t);
  Sequence gs = gpu->new_sequence(&f);
  const Tensor got = gpu->forward(gs, ids);
  ASSERT_NE(gs.trace(0), nullptr);
  int64_t diff = 0, reps = 0;
  for (int64_t l = 0; l < L; ++l) {
    ASSERT_NE(gs.trace(int(l)), nullptr) << what << " layer " << l;
    const select::Selection* g = &gs.trace(int(l))->selection;
    const select::Selection& c = cs.trace(int(l))->selection;
    diff += differing(*g, c);
    reps += int64_t(g->reps.size());
  }
  std::printf("[ measured ] %s (%s): r/T %.3f over %lld layers, %lld token decisions differ from the CPU's\n", what.c_str(),
              dtype_name(t).c_str(), double(reps) / double(T * L), (long long)L, (long long)diff);
  if (t == DType::F32) EXPECT_LE(diff, std::max<int64_t>(1, T * L / 50)) << what;
  if (diff == 0) expect_close(got, want, t, what + " GPU ADA vs CPU ADA");
  EXPECT_EQ(gs.cache_bytes(), [&] {
    int64_t b = 0;
    for (int64_t l = 0; l < L; ++l) b += 2 * cache_rows(gs.trace(int(l))->selection, f.options());
    return b * cpu->spec().n_kv_heads * cpu->spec().head_dim * int64_t(dtype_size(t));
  }()) << what;

  // --select full: the same selections and logits (the cascade is exact).
  const AdaAttentionFactory ff(options(tau, select::Mode::full, queries, proportional, &P));
  Sequence fs_ = gpu->new_sequence(&ff);
  const Tensor full = gpu->forward(fs_, ids);
  for (int64_t l = 0; l < L; ++l)
    EXPECT_EQ(differing(fs_.trace(int(l))->selection, gs.trace(int(l))->selection), 0) << what << " layer " << l;
  const auto [fe, fscale] = errs(full.data(), got.data(), full.numel());
  EXPECT_LE(fe, 1e-5f * fscale) << what << " full vs cascade";

  // Decoding: token by token on the compressed cache (after a prefill of 1/3 of the tokens) == prefill.
  if (t == DType::F32) {
    const int64_t V = cpu->spec().vocab_size, p0 = T / 3;
    Sequence ds = gpu->new_sequence(&f);
    Tensor dec = Tensor::zeros({T, V});
    const Tensor head = gpu->forward(ds, std::vector<int32_t>(ids.begin(), ids.begin() + p0));
    std::copy(head.data(), head.data() + p0 * V, dec.data());
    for (int64_t i = p0; i < T; ++i) {
      const Tensor l = gpu->forward(ds, std::vector<int32_t>{ids[size_t(i)]}, true);
      std::copy(l.data(), l.data() + V, dec.data() + i * V);
    }
    expect_close(dec, got, t, what + " GPU ADA decode vs prefill");
    EXPECT_EQ(ds.cache_bytes(), gs.cache_bytes()) << what << " compressed cache after decoding";
    // The same continuation in passes of 7 tokens (decided and run as one batch where the plan
    // allows): the decisions token by token made, the prefill's logits.
    Sequence cs7 = gpu->new_sequence(&f);
    Tensor chunked = Tensor::zeros({T, V});
    std::copy(head.data(), head.data() + p0 * V, chunked.data());
    (void)gpu->forward(cs7, std::vector<int32_t>(ids.begin(), ids.begin() + p0));
    for (int64_t i = p0; i < T; i += 7) {
      const int64_t e = std::min(T, i + 7);
      const Tensor l = gpu->forward(cs7, std::vector<int32_t>(ids.begin() + i, ids.begin() + e));
      std::copy(l.data(), l.data() + (e - i) * V, chunked.data() + i * V);
    }
    for (int64_t l = 0; l < L; ++l)
      EXPECT_EQ(differing(cs7.trace(int(l))->selection, ds.trace(int(l))->selection), 0) << what << " layer " << l;
    expect_close(chunked, got, t, what + " GPU ADA continuation in passes of 7 vs prefill");
    EXPECT_EQ(cs7.cache_bytes(), gs.cache_bytes()) << what << " compressed cache after the passes";
    // One-token steps are resident where the plan allows (decided and carried out on the device, and
    // with graphs on replayed as a CUDA graph). Two steps, then a pass of 3 (the host's path), the
    // trace read now and then (the host catches up mid-way), with graphs off and on: the decisions
    // token by token made and the prefill's logits.
    for (const bool graphs : {false, true}) {
      gpu->to_device(Device::Cuda, t, graphs);
      Sequence ms = gpu->new_sequence(&f);
      Tensor mixed = Tensor::zeros({T, V});
      std::copy(head.data(), head.data() + p0 * V, mixed.data());
      (void)gpu->forward(ms, std::vector<int32_t>(ids.begin(), ids.begin() + p0));
      for (int64_t i = p0, k = 0; i < T; ++k) {
        const int64_t e = k % 3 == 2 ? std::min(T, i + 3) : i + 1;
        const Tensor l = gpu->forward(ms, std::vector<int32_t>(ids.begin() + i, ids.begin() + e));
        std::copy(l.data(), l.data() + (e - i) * V, mixed.data() + i * V);
        if (k % 4 == 1) EXPECT_EQ(ms.trace(int(L - 1))->selection.T(), e) << what << " trace read after token " << e;
        i = e;
      }
      const std::string how = what + (graphs ? " graphs on" : " graphs off");
      for (int64_t l = 0; l < L; ++l)
        EXPECT_EQ(differing(ms.trace(int(l))->selection, ds.trace(int(l))->selection), 0) << how << " layer " << l;
      expect_close(mixed, got, t, how + " GPU ADA steps and passes mixed vs prefill");
      EXPECT_EQ(ms.cache_bytes(), gs.cache_bytes()) << how << " compressed cache after the mixed continuation";
    }
  }
}

std::vector<Param> params() {
  std::vector<Param> p;
  for (const char* f : kFixtures)
    for (DType t : {DType::F32, DType::F16, DType::BF16}) {
      for (double tau : {0.30, 0.80}) p.push_back({f, t, tau});
      p.push_back({f, t, 0.80, AdaQueries::all});
      p.push_back({f, t, 0.80, AdaQueries::reps, true});
      if (t == DType::F32) p.push_back({f, t, 0.80, AdaQueries::all, true});
      if (t == DType::F16) continue;  // SPEC 6's variants in f32 and bf16
      p.push_back({f, t, 0.80, AdaQueries::reps, false, AdaReconstruct::lstsq});
      p.push_back({f, t, 0.80, AdaQueries::all, t == DType::F32, AdaReconstruct::copy, 2, 4});
    }
  using F = AdaFeatures;
  using R = select::Rule;
  for (const char* f : {"gptj", "llama_gqa", "gpt2", "stories260K"})
    for (DType t : {DType::F32, DType::BF16}) {
      const AdaReconstruct copy = AdaReconstruct::copy;
      p.push_back({f, t, 0.80, AdaQueries::reps, false, copy, 0, 0, F::keys});
      p.push_back({f, t, 0.80, AdaQueries::all, false, copy, 0, 0, F::hidden, R::span});
      p.push_back({f, t, 0.80, AdaQueries::reps, true, copy, 0, 0, F::keys, R::span, 1});
      p.push_back({f, t, 0.30, AdaQueries::reps, false, copy, 0, 0, F::hidden, R::greedy, 1});
    }
  return p;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, AdaCuda, ::testing::ValuesIn(params()), [](const auto& info) {
  return std::string(info.param.name) + "_" + dtype_name(info.param.t) + (info.param.tau > 0.5 ? "_tau80" : "_tau30") +
         (info.param.queries == AdaQueries::all ? "_all" : "") + (info.param.proportional ? "_prop" : "") +
         (info.param.reconstruct == AdaReconstruct::lstsq ? "_lstsq" : "") + (info.param.window ? "_sinks_window" : "") +
         (info.param.features == AdaFeatures::keys ? "_keys" : "") + (info.param.rule == select::Rule::span ? "_span" : "") +
         (info.param.dense ? "_dense" + std::to_string(info.param.dense) : "");
});

// The study's measurements on the GPU (attention error against exact attention on the same layer
// input, Jaccard against the full selection on the same features) equal the CPU's, layer by layer,
// in float32 where both pick the same representatives.
TEST(AdaCudaStudy, MeasurementsMatchCpu) {
  if (!cuda::gpu_available()) GTEST_SKIP() << "no GPU";
  for (const char* name : {"llama_gqa", "gpt2"}) {
    auto cpu = Model::load(model_path(name));
    const std::vector<int32_t> ids = ids_for(name, cpu->spec().vocab_size);
    AdaOptions o = options(0.8);
    o.measure_error = o.compare_full = true;
    const AdaAttentionFactory f(o);
    Sequence cs = cpu->new_sequence(&f);
    cpu->forward(cs, ids);
    auto gpu = Model::load(model_path(name));
    gpu->to_device(Device::Cuda, DType::F32);
    Sequence gs = gpu->new_sequence(&f);
    gpu->forward(gs, ids);
    double largest = 0;
    for (int l = 0; l < int(cpu->spec().n_layers); ++l) {
      const AdaLayerTrace& c = *cs.trace(l);
      const AdaLayerTrace& g = *gs.trace(l);
      ASSERT_EQ(differing(c.selection, g.selection), 0) << name << " layer " << l;
      EXPECT_GE(g.attention_error, 0) << name << " layer " << l << ": not measured";
      EXPECT_NEAR(g.attention_error, c.attention_error, 1e-4 + 1e-3 * c.attention_error) << name << " layer " << l;
      EXPECT_EQ(g.jaccard_vs_full, c.jaccard_vs_full) << name << " layer " << l;
      largest = std::max(largest, c.attention_error);
    }
    EXPECT_GT(largest, 0) << name << ": every token a representative at every layer; the case tests nothing";
    std::printf("[ measured ] %s: largest attention error over layers %.4f\n", name, largest);
  }
}

// The prefill protocol on the GPU: the configurations whose selection the GPU lacks are left out with
// a note, the rest (full, cascade, its variants, the tau sweep) run.
TEST(AdaCudaStudy, PrefillProtocolLeavesOutWhatTheGpuLacks) {
  if (!cuda::gpu_available()) GTEST_SKIP() << "no GPU";
  engine::StudyRequest r;
  r.params.model = (test::bundled_model_dir() / "stories260K.bin").string();
  r.params.text = test::sample_text();
  r.params.ctx = 64;
  r.params.windows = 1;
  r.params.tau_sweep = {0.5};
  r.params.device = "cuda";
  const engine::PreparedStudy s = engine::prepare_study(r);
  std::set<std::string> names, left_out;
  for (const auto& c : s.configs) names.insert(c.name);
  for (const auto& n : s.notes) left_out.insert(n.substr(1, n.find('`', 1) - 1));
  for (const char* kept : {"cascade", "full", "cascade+all-queries", "cascade+proportional", "cascade@tau=0.5"})
    EXPECT_TRUE(names.count(kept)) << kept;
  for (const char* out : {"inherit", "capped:8", "random:0", "exact-trajectory"}) EXPECT_TRUE(left_out.count(out)) << out;
}

TEST(AdaCudaErrors, OptionsTheGpuLacksAreRefused) {
  if (!cuda::gpu_available()) GTEST_SKIP() << "no GPU";
  auto m = Model::load(data_dir() / "models" / "llama");
  m->to_device(Device::Cuda, DType::F32);
  AdaOptions inherit = options(0.3, select::Mode::inherit);
  AdaOptions all_earlier = options(0.3, select::Mode::full);
  all_earlier.select.rule = select::Rule::all_earlier;
  for (const AdaOptions& o : {inherit, all_earlier}) {
    const AdaAttentionFactory f(o);
    EXPECT_THROW(m->new_sequence(&f), Error);
  }
  const ExactAttentionFactory exact;  // exact attention named explicitly is the GPU's own
  EXPECT_NO_THROW(m->new_sequence(&exact));
}

// Decoding needs the selector's float64 rows: after a tf32 Gram the prefill runs and a decoded
// token is one clear error (the prefill keeps no features for a selector it cannot make).
TEST(AdaCudaErrors, DecodingAfterALowPrecisionGramIsRefused) {
  if (!cuda::gpu_available()) GTEST_SKIP() << "no GPU";
  auto m = Model::load(model_path("llama_gqa"));
  m->to_device(Device::Cuda, DType::F32);
  AdaOptions o = options(0.3);
  o.gram_precision = select::gpu::Precision::tf32;
  const AdaAttentionFactory f(o);
  Sequence s = m->new_sequence(&f);
  const std::vector<int32_t> ids = ids_for("llama_gqa", m->spec().vocab_size);
  ASSERT_NO_THROW(m->forward(s, ids));
  try {
    m->forward(s, std::span<const int32_t>(ids.data(), 1));
    FAIL() << "a token decoded after a tf32 Gram";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs float64 features (--gram-precision f64 or f16-certified), not tf32"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace cascade

#else
TEST(AdaCuda, NotBuilt) { GTEST_SKIP() << cascade::cuda::describe_gpu(); }
#endif
