// The peer KV-cache methods on the GPU (attention/kv_press_cuda.cu) against their CPU twin
// (attention/kv_press.cc, itself held against plain statements of kvpress's definitions in
// kv_press_test): a context prefilled, compressed, then a continuation chunk; in float32 the GPU's
// continuation logits equal the CPU's within the conformance bound, and so does its cache's size;
// token-by-token decoding on the GPU equals its own chunked continuation. ada-kv too, over hidden and
// keys features (the greedy rule's selection on the device, the span rule's on the host), dense
// layers, sinks and window. Skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

#include "attention/kv_press.h"
#include "attention/kv_press_scores.h"
#include "cuda/runtime.h"
#include "model/model.h"
#include "support/test_paths.h"

namespace cascade {
namespace {

std::vector<int32_t> ids(int64_t vocab, int64_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int32_t> d(0, int32_t(vocab - 1));
  std::vector<int32_t> out(static_cast<size_t>(n));
  for (auto& v : out) v = d(g);
  return out;
}

// max |a - b| against 1e-4 max |b| + 1e-5 over rows [0, rows).
void expect_close(const Tensor& a, const Tensor& b, int64_t rows, const std::string& what) {
  float worst = 0, scale = 0;
  for (int64_t i = 0; i < rows * b.dim(1); ++i) {
    worst = std::max(worst, std::fabs(a.data()[i] - b.data()[i]));
    scale = std::max(scale, std::fabs(b.data()[i]));
  }
  EXPECT_LE(worst, 1e-4f * scale + 1e-5f) << what;
}

class KvPressCuda : public ::testing::TestWithParam<const char*> {};

TEST_P(KvPressCuda, ContinuationEqualsTheCpu) {
  if (!cuda::gpu_available()) GTEST_SKIP() << "no GPU: " << cuda::describe_gpu();
  const auto path = test::data_dir() / "models" / GetParam();
  auto cpu = Model::load(path), gpu = Model::load(path);
  gpu->to_device(Device::Cuda, DType::F32);
  const std::vector<int32_t> context = ids(cpu->spec().vocab_size, 100, 3), next = ids(cpu->spec().vocab_size, 20, 4);
  std::vector<std::pair<std::string, KvPressOptions>> methods;
  for (const std::string& name : press::method_names())
    for (double budget : {0.25, 0.7, 0.004}) {
      KvPressOptions o;
      ASSERT_TRUE(press::parse_method(name, &o.method));
      o.budget = budget;
      methods.push_back({name + " budget " + std::to_string(budget), o});
    }
  for (int v = 0; v < 4; ++v) {
    AdaKvOptions a;
    a.ada.select.tau = v == 3 ? 0.5 : 0.8;
    a.ada.features = v % 2 ? AdaFeatures::keys : AdaFeatures::hidden;
    a.ada.select.rule = v >= 2 ? select::Rule::span : select::Rule::greedy;
    a.ada.dense_layers = v == 1 ? 1 : 0;
    a.sinks = v == 2 ? 4 : 0;
    a.window = v == 2 ? 8 : 0;
    KvPressOptions o;
    o.ada_kv = a;
    methods.push_back({"ada-kv variant " + std::to_string(v), o});
  }
  for (const auto& [label, o] : methods) {
    const KvPressFactory f(o);
    const std::string what = std::string(GetParam()) + " " + label;
    Sequence cs = cpu->new_sequence(&f), gs = gpu->new_sequence(&f);
    expect_close(gpu->forward(gs, context), cpu->forward(cs, context), int64_t(context.size()), what + " context");
    const Tensor want = cpu->forward(cs, next), got = gpu->forward(gs, next);
    expect_close(got, want, int64_t(next.size()), what + " continuation");
    EXPECT_EQ(gs.cache_bytes(), cs.cache_bytes()) << what;
    // Token by token on the GPU: its own chunked continuation.
    Sequence ds = gpu->new_sequence(&f);
    gpu->forward(ds, context);
    Tensor step = Tensor::zeros({int64_t(next.size()), got.dim(1)});
    for (size_t i = 0; i < next.size(); ++i) {
      const Tensor l = gpu->forward(ds, std::vector<int32_t>{next[i]}, true);
      std::copy(l.data(), l.data() + l.dim(1), step.row(int64_t(i)));
    }
    expect_close(step, got, int64_t(next.size()), what + " decoding");
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, KvPressCuda, ::testing::Values("llama_gqa", "gpt2", "gptj"));

// Every method's scores with the attention weights on the device, against the host's float64
// statement, on random Q and K (grouped heads, a context that is no multiple of the panel), one panel
// and several: the same numbers to ~1e-15, the same kept entries.
class KvPressCudaScores : public ::testing::TestWithParam<press::Method> {};

// Random Q, K and V of a context of n = 301 entries, 4 query heads over 2 KV heads of width 16.
struct RandomContext {
  static constexpr int64_t n = 301, heads = 4, kv_heads = 2, hd = 16;
  std::vector<float> q, k, v;
  explicit RandomContext(uint32_t seed) : q(size_t(n * heads * hd)), k(size_t(n * kv_heads * hd)), v(k.size()) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.f, 1.5f);
    for (auto* x : {&q, &k, &v})
      for (float& e : *x) e = d(g);
  }
  press::Context context(const ops::Rotary* rotary) const {
    return {n, heads, kv_heads, hd, q.data(), k.data(), 0.25, v.data(), rotary};
  }
};

TEST_P(KvPressCudaScores, OnTheDeviceEqualTheHost) {
  if (!cuda::gpu_available()) GTEST_SKIP() << "no GPU: " << cuda::describe_gpu();
  const press::Method m = GetParam();
  const RandomContext x(11);
  const int64_t n = x.n, kv_heads = x.kv_heads;
  const press::Context c = x.context(nullptr);
  const press::Params p;
  const std::vector<double> want = press::scores(m, c, n / 4, p);
  const double top = *std::max_element(want.begin(), want.end());
  for (int64_t panel : {0, 64, 1}) {
    const std::vector<double> got = press::scores_on_gpu(m, c, n / 4, p, panel);
    ASSERT_EQ(got.size(), want.size());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
    EXPECT_LE(worst, 1e-13 * std::fabs(top)) << "panel rows " << panel;
    EXPECT_EQ(press::top_positions(got, kv_heads, n, n / 4), press::top_positions(want, kv_heads, n, n / 4))
        << "panel rows " << panel;
  }
}

// Expected-attention undoes Q's rotary on the device in float32 as the host does (both rotary styles,
// a partial rotary dimension): the same scores but for the rare float32 cos/sin rounded differently
// (~1e-7 of a query; bound 1e-6 of the largest score), and the same kept entries.
TEST(KvPressCudaScores, ExpectedAttentionUndoesRotaryAsTheHost) {
  if (!cuda::gpu_available()) GTEST_SKIP() << "no GPU: " << cuda::describe_gpu();
  const RandomContext x(12);
  const int64_t n = x.n, kv_heads = x.kv_heads;
  for (RotaryStyle style : {RotaryStyle::Interleaved, RotaryStyle::Half}) {
    const ops::Rotary rotary(style, 12, 10000.0, RopeScaling{});
    const press::Context c = x.context(&rotary);
    const press::Params p;
    const std::vector<double> want = press::scores(press::Method::expected_attention, c, n / 4, p);
    const std::vector<double> got = press::scores_on_gpu(press::Method::expected_attention, c, n / 4, p);
    ASSERT_EQ(got.size(), want.size());
    const double top = *std::max_element(want.begin(), want.end());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
    EXPECT_LE(worst, 1e-6 * std::fabs(top)) << (style == RotaryStyle::Half ? "half" : "interleaved");
    EXPECT_EQ(press::top_positions(got, kv_heads, n, n / 4), press::top_positions(want, kv_heads, n, n / 4));
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, KvPressCudaScores,
                         ::testing::Values(press::Method::streaming, press::Method::snapkv, press::Method::tova,
                                           press::Method::h2o, press::Method::knorm, press::Method::random,
                                           press::Method::expected_attention),
                         [](const auto& info) {
                           std::string name = press::method_name(info.param);
                           std::replace(name.begin(), name.end(), '-', '_');  // a test name has no '-'
                           return name;
                         });

}  // namespace
}  // namespace cascade
