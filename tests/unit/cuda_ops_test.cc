// Every CUDA op (src/ops/*_cuda.cu) against its CPU twin, per dtype (f32, fp16, bf16), on fresh
// random inputs of odd sizes, with the output poisoned (NaN bytes) before the call so that every
// element must be written. Inputs are rounded to the dtype first and the CPU twin runs in float32
// (or double) on those rounded values: the reference.
//
// Tolerance, FlashAttention's rule: the op's error against the reference must be at most twice the
// error of a plain same-dtype computation (the reference's output rounded to the dtype; for
// attention, the stage-wise rounded computation: logits, probabilities and output each rounded to
// the dtype) plus a floor of 1e-5 (f32) / 1e-3 (fp16, bf16) times the reference's largest value.
// Every failure names the seed of the inputs (CASCADE_TEST_SEED=<seed> replays them). Skips (not
// fails) when there is no GPU; compiles to one skipped test in a CPU-only build.
#include <gtest/gtest.h>

#include "cuda/runtime.h"

#ifdef CASCADE_WITH_CUDA
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "cuda/buffer.h"
#include "cuda/context.h"
#include "arch/weights.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/attention_cudnn.h"
#include "ops/cuda_ops.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/rotary.h"
#include "ops/token_nll.h"
#include "support/attention_reference.h"
#include "support/test_seed.h"

namespace cascade {
namespace {

namespace gpu = ops::gpu;

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float round_to(DType t, float x) {
  if (t == DType::F16) return f16_to_f32(f32_to_f16(x));
  if (t == DType::BF16) return bf16_to_f32(to_bf16(x));
  return x;
}

std::vector<float> rounded(DType t, std::vector<float> v) {
  for (float& x : v) x = round_to(t, x);
  return v;
}

// A device array of dtype t holding host float values (rounded to t).
struct Dev {
  DType t;
  cuda::Buffer<unsigned char> buf;
  int64_t n;
  Dev(DType t_, const std::vector<float>& h) : t(t_), buf(h.size() * dtype_size(t_)), n(int64_t(h.size())) {
    std::vector<unsigned char> bytes(buf.size());
    for (size_t i = 0; i < h.size(); ++i) {
      if (t == DType::F32) std::memcpy(&bytes[4 * i], &h[i], 4);
      else {
        const uint16_t b = t == DType::F16 ? f32_to_f16(h[i]) : to_bf16(h[i]);
        std::memcpy(&bytes[2 * i], &b, 2);
      }
    }
    buf.upload(bytes, cuda::context().stream);
  }
  Dev(DType t_, int64_t n_) : t(t_), buf(size_t(n_) * dtype_size(t_)), n(n_) { poison(); }
  void poison() {
    CASCADE_CUDA_CHECK(cudaMemsetAsync(buf.data(), 0xff, buf.size(), cuda::context().stream));  // NaN in every dtype
  }
  void* p() { return buf.data(); }
  std::vector<float> get() const {
    CASCADE_CUDA_CHECK(cudaStreamSynchronize(cuda::context().stream));
    const std::vector<unsigned char> b = buf.download(cuda::context().stream);
    std::vector<float> h(static_cast<size_t>(n));
    for (size_t i = 0; i < h.size(); ++i) {
      if (t == DType::F32) std::memcpy(&h[i], &b[4 * i], 4);
      else {
        uint16_t u;
        std::memcpy(&u, &b[2 * i], 2);
        h[i] = t == DType::F16 ? f16_to_f32(u) : bf16_to_f32(u);
      }
    }
    return h;
  }
};

template <typename V>
cuda::Buffer<V> dev_of(const std::vector<V>& h) {
  return cuda::Buffer<V>::from_host(h, cuda::context().stream);
}

std::vector<float> randn(std::mt19937& rng, int64_t n, float sd = 1.f) {
  std::normal_distribution<float> d(0.f, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

float floor_for(DType t) { return t == DType::F32 ? 1e-5f : 1e-3f; }

// got vs ref: every value finite (so written) and max |got - ref| <= 2 * max |plain - ref| + floor.
void expect_within(const std::vector<float>& got, const std::vector<float>& ref, const std::vector<float>& plain, DType t,
                   const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  float scale = 0, err = 0, plain_err = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << what << ": element " << i << " not written (or not finite): " << got[i];
    scale = std::max(scale, std::fabs(ref[i]));
    err = std::max(err, std::fabs(got[i] - ref[i]));
    plain_err = std::max(plain_err, std::fabs(plain[i] - ref[i]));
  }
  const float tol = 2 * plain_err + floor_for(t) * std::max(scale, 1e-3f);
  EXPECT_LE(err, tol) << what << " (" << dtype_name(t) << "): max error " << err << ", plain same-dtype error " << plain_err
                      << ", scale " << scale;
}

void expect_within(const std::vector<float>& got, const std::vector<float>& ref, DType t, const std::string& what) {
  expect_within(got, ref, rounded(t, ref), t, what);
}

class CudaOps : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    if (!cuda::gpu_available()) GTEST_SKIP() << "no GPU: " << cuda::describe_gpu();
  }
  gpu::Stream st() { return cuda::context().stream; }
  const test::Seed seed_{std::random_device{}()};  // fresh inputs every run unless the seed is given
  std::mt19937 rng{seed_.value()};
};

Norm make_norm(std::mt19937& rng, int64_t d, bool bias) {
  Norm w;
  w.weight = Tensor::zeros({d});
  auto g = randn(rng, d, 0.3f);
  for (int64_t j = 0; j < d; ++j) w.weight.data()[j] = 1.f + g[size_t(j)];
  if (bias) {
    w.bias = Tensor::zeros({d});
    auto b = randn(rng, d, 0.2f);
    std::copy(b.begin(), b.end(), w.bias.data());
  }
  return w;
}

TEST_P(CudaOps, NormWithAndWithoutResidualAdd) {
  const DType t = GetParam();
  for (NormKind kind : {NormKind::LayerNorm, NormKind::RMSNorm}) {
    for (int64_t d : {301, 576, 2048}) {  // 576 and 2048: the 16-bit kernel that loads 8 elements at a time
      const int64_t n = 37;
      const Norm w = make_norm(rng, d, kind == NormKind::LayerNorm);
      auto g = dev_of(std::vector<float>(w.weight.data(), w.weight.data() + d));
      cuda::Buffer<float> b;
      if (!w.bias.empty()) b = dev_of(std::vector<float>(w.bias.data(), w.bias.data() + d));
      const auto h = rounded(t, randn(rng, n * d, 2.f)), add = rounded(t, randn(rng, n * d));
      // Plain norm.
      Dev dh(t, h), dy(t, n * d);
      const gpu::NormArgs args{.t = t, .kind = kind, .gamma = g.data(), .beta = b.size() ? b.data() : nullptr, .eps = 1e-5,
                               .n = n, .d = d};
      gpu::NormArgs a1 = args;
      a1.h = dh.p();
      a1.y = dy.p();
      gpu::norm(a1, st());
      std::vector<float> ref(static_cast<size_t>(n * d));
      ops::norm(kind, w.gamma(), w.beta(), 1e-5, h.data(), n, d, ref.data());
      expect_within(dy.get(), ref, t, "norm");
      // Fused residual add: h += add (rounded to the dtype), y = norm(h); h is written back.
      Dev dh2(t, h), da(t, add), dy2(t, n * d);
      gpu::NormArgs a2 = args;
      a2.h = dh2.p();
      a2.add = da.p();
      a2.y = dy2.p();
      gpu::norm(a2, st());
      std::vector<float> hs(static_cast<size_t>(n * d));
      for (size_t i = 0; i < hs.size(); ++i) hs[i] = round_to(t, h[i] + add[i]);
      ops::norm(kind, w.gamma(), w.beta(), 1e-5, hs.data(), n, d, ref.data());
      expect_within(dy2.get(), ref, t, "add+norm");
      expect_within(dh2.get(), hs, t, "add+norm residual");
      // In place (y aliases h), as the post-LN wiring uses it.
      Dev dh3(t, h), da3(t, add);
      gpu::NormArgs a3 = args;
      a3.h = dh3.p();
      a3.add = da3.p();
      a3.y = dh3.p();
      gpu::norm(a3, st());
      expect_within(dh3.get(), ref, t, "add+norm in place");
    }
  }
}

TEST_P(CudaOps, ActivationsAndAdds) {
  const DType t = GetParam();
  const int64_t n = 10007;
  for (Activation a : {Activation::GeluTanh, Activation::GeluErf, Activation::Relu, Activation::SiluGlu, Activation::GeluTanhGlu}) {
    auto x = rounded(t, randn(rng, n, 3.f)), up = rounded(t, randn(rng, n));
    Dev dx(t, x), du(t, up);
    gpu::activation(t, a, dx.p(), ops::is_glu(a) ? du.p() : nullptr, n, st());
    ops::activation(a, x.data(), ops::is_glu(a) ? up.data() : nullptr, n);
    expect_within(dx.get(), x, t, "activation " + std::to_string(int(a)));
  }
  auto y = rounded(t, randn(rng, n)), a = rounded(t, randn(rng, n)), b = rounded(t, randn(rng, n));
  Dev dy(t, y), da(t, a), db(t, b), dy2(t, y);
  gpu::add(t, dy.p(), da.p(), nullptr, n, st());
  gpu::add(t, dy2.p(), da.p(), db.p(), n, st());
  std::vector<float> r1(y), r2(y);
  for (int64_t i = 0; i < n; ++i) {
    r1[size_t(i)] += a[size_t(i)];
    r2[size_t(i)] += a[size_t(i)] + b[size_t(i)];
  }
  expect_within(dy.get(), r1, t, "add");
  expect_within(dy2.get(), r2, t, "add2");
  Dev dz(t, a);
  cuda::Buffer<float> f(static_cast<size_t>(n));
  CASCADE_CUDA_CHECK(cudaMemsetAsync(f.data(), 0xff, f.bytes(), st()));
  gpu::to_f32(t, dz.p(), f.data(), n, st());
  EXPECT_EQ(f.download(st()), a);
}

TEST_P(CudaOps, RotaryBothLayoutsPartialDim) {
  const DType t = GetParam();
  struct Case {
    RotaryStyle style;
    int64_t rotary_dim, head_dim;
    std::string scaling;
  };
  for (const Case& c : {Case{RotaryStyle::Interleaved, 24, 80, "default"}, Case{RotaryStyle::Half, 16, 64, "default"},
                        Case{RotaryStyle::Half, 128, 128, "llama3"}, Case{RotaryStyle::Half, 96, 96, "linear"}}) {
    RopeScaling scaling;
    scaling.type = c.scaling;
    scaling.factor = 8;
    const ops::Rotary r(c.style, c.rotary_dim, 10000, scaling);
    const int64_t n = 29, heads = 3, ld = heads * c.head_dim + 16;  // a row stride wider than the heads
    std::vector<int64_t> pos(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) pos[size_t(i)] = 5000 + 37 * i;  // long positions: angle rounding matters
    auto x = rounded(t, randn(rng, n * ld));
    Dev dx(t, x);
    auto dpos = dev_of(pos);
    auto inv = dev_of(r.inv_freq());
    gpu::rotary({.t = t, .style = c.style, .rotary_dim = c.rotary_dim, .inv_freq = inv.data(), .x = dx.p(), .n = n,
                 .ld = ld, .heads = heads, .head_dim = c.head_dim, .pos = dpos.data()},
                st());
    r.apply(x.data(), n, ld, heads, c.head_dim, pos.data());
    expect_within(dx.get(), x, t, "rotary");
  }
}

TEST_P(CudaOps, EmbeddingAndPositions) {
  const DType t = GetParam();
  const int64_t V = 97, e = 75, n = 13, P = 40, off = 2;
  auto table = rounded(t, randn(rng, V * e)), positions = rounded(t, randn(rng, P * e));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  std::vector<int64_t> pos(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    ids[size_t(i)] = int32_t((i * 31 + 7) % V);
    pos[size_t(i)] = 20 + i;
  }
  Dev dt(t, table), dp(t, positions), out(t, n * e);
  auto did = dev_of(ids);
  auto dpos = dev_of(pos);
  gpu::embed(t, dt.p(), did.data(), n, e, out.p(), st());
  std::vector<float> ref(static_cast<size_t>(n * e));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < e; ++j) ref[size_t(i * e + j)] = table[size_t(ids[size_t(i)] * e + j)];
  EXPECT_EQ(out.get(), ref);
  gpu::add_positions(t, dp.p(), dpos.data(), off, n, e, out.p(), st());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < e; ++j) ref[size_t(i * e + j)] += positions[size_t((pos[size_t(i)] + off) * e + j)];
  expect_within(out.get(), ref, t, "positions");
}

// A device pointer `cols` elements of dtype t into an array (a column block of wider rows).
void* at_column(Dev& d, int64_t cols) { return static_cast<unsigned char*>(d.p()) + cols * int64_t(dtype_size(d.t)); }

// gather_rows with row strides wider than the copied width on both sides, reading a column block from
// the middle of each row (ADA's representatives' K columns out of the fused Q/K/V rows): ids in any
// order, repeated. Each destination row gets its source row's block; the rest of the row is not the
// op's to write and must stay poisoned.
TEST_P(CudaOps, GatherRowsStrided) {
  const DType t = GetParam();
  const int64_t rows = 53, width = 40, col = 48, lds = 3 * width + 8, ldd = width + 13, n = 29;
  const auto src = rounded(t, randn(rng, rows * lds));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = int32_t((i * 17 + 5) % rows);
  ids[3] = ids[20];
  Dev ds(t, src), dd(t, n * ldd);
  auto did = dev_of(ids);
  gpu::gather_rows(t, at_column(ds, col), lds, did.data(), n, width, dd.p(), ldd, st());
  const std::vector<float> got = dd.get();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < ldd; ++j) {
      const float g = got[size_t(i * ldd + j)];
      if (j < width) ASSERT_EQ(g, src[size_t(ids[size_t(i)] * lds + col + j)]) << "row " << i << " column " << j;
      else ASSERT_TRUE(std::isnan(g)) << "row " << i << " column " << j << " is past the width but was written: " << g;
    }
}

// scatter_rows into cache rows: source rows with a wide stride (a column block of each row), cache
// rows in any order, a column block of each cache row. The rows written are poisoned first; every
// other value of the cache, padding included, must be left as it was.
TEST_P(CudaOps, ScatterRowsIntoCacheRows) {
  const DType t = GetParam();
  const int64_t n = 11, width = 36, col = 36, lds = 3 * width, cache_rows = 40, ldd = 2 * width + 8, dcol = width;
  const std::vector<int64_t> rows = {17, 3, 39, 0, 22, 8, 31, 1, 38, 12, 25};
  const auto src = rounded(t, randn(rng, n * lds));
  std::vector<float> cache = rounded(t, randn(rng, cache_rows * ldd)), want = cache;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < width; ++j) {
      const size_t k = size_t(rows[size_t(i)] * ldd + dcol + j);
      cache[k] = NAN;
      want[k] = src[size_t(i * lds + col + j)];
    }
  Dev ds(t, src), dc(t, cache);
  auto drows = dev_of(rows);
  gpu::scatter_rows(t, at_column(ds, col), lds, n, width, drows.data(), at_column(dc, dcol), ldd, st());
  EXPECT_EQ(dc.get(), want);
}

// Perplexity's per-row NLL on the device against the CPU's ops::token_nll, row by row, on logits
// holding values of the dtype (what a model in that dtype returns): a vocabulary off every block size
// (GPT-2's), a small one, one of a single token; rows far from zero (the maximum must be taken out
// first), rows of ties, and targets at the row's maximum. Both sum in float64; only the order differs.
TEST_P(CudaOps, TokenNll) {
  const DType t = GetParam();
  for (int64_t vocab : {50257, 131, 1}) {
    const int64_t rows = 37;
    std::vector<float> logits = rounded(t, randn(rng, rows * vocab, 4.f));
    std::vector<int32_t> targets(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      float* row = logits.data() + r * vocab;
      if (r % 5 == 1) std::fill(row, row + vocab, round_to(t, 2.5f));  // every logit equal
      if (r % 5 == 2)
        for (int64_t v = 0; v < vocab; ++v) row[v] = round_to(t, row[v] + 900.f);  // exp overflows without the max
      targets[size_t(r)] = int32_t((r * 7919) % vocab);
      if (r % 5 == 3) targets[size_t(r)] = int32_t(std::max_element(row, row + vocab) - row);
    }
    auto dl = dev_of(logits);
    auto dt = dev_of(targets);
    cuda::Buffer<double> out(static_cast<size_t>(rows));
    CASCADE_CUDA_CHECK(cudaMemsetAsync(out.data(), 0xff, out.bytes(), st()));  // NaN
    gpu::token_nll(dl.data(), rows, vocab, dt.data(), out.data(), st());
    const std::vector<double> got = out.download(st());
    for (int64_t r = 0; r < rows; ++r) {
      const double want = ops::token_nll(logits.data() + r * vocab, vocab, targets[size_t(r)]);
      EXPECT_NEAR(got[size_t(r)], want, 1e-9 * std::max(1.0, want)) << "vocab " << vocab << " row " << r;
    }
  }
}

// The CPU twin's view of a row-major [out, in] weight matrix w and an optional bias.
Linear host_linear(const std::vector<float>& w, int64_t in, int64_t out, const float* bias) {
  Linear l;
  l.w = w.data();
  l.ld = in;
  l.in = in;
  l.out = out;
  l.bias = bias;
  return l;
}

// 1 to 4 rows of 16-bit operands take the GEMV kernel (ops/gemv_cuda.cu; the second shape: many pieces a
// lane, a partial last step), 67 rows and f32 cuBLASLt.
TEST_P(CudaOps, LinearThroughCublasLtAndGemv) {
  const DType t = GetParam();
  struct Shape {
    int64_t in, out, ldx, ldy;
  };
  for (const Shape& sh : {Shape{200, 120, 208, 128}, Shape{4360, 37, 4368, 40}}) {
    const int64_t in = sh.in, out = sh.out, ldx = sh.ldx, ldy = sh.ldy;
    for (bool bias : {false, true}) {
      for (int64_t n : {1, 3, 4, 67}) {
        for (DType yt : {t, DType::F32}) {
          auto w = rounded(t, randn(rng, out * in, 0.1f)), x = rounded(t, randn(rng, n * ldx));
          auto b = rounded(yt, randn(rng, out));
          const Linear l = host_linear(w, in, out, bias ? b.data() : nullptr);
          Dev dw(t, w), dx(t, x), db(yt, b), dy(yt, n * ldy);
          gpu::linear({.t = t, .x = dx.p(), .ldx = ldx, .n = n, .w = dw.p(), .in = in, .out = out,
                       .bias = bias ? db.p() : nullptr, .yt = yt, .y = dy.p(), .ldy = ldy},
                      st());
          std::vector<float> ref(static_cast<size_t>(n * ldy));
          ops::linear(l, x.data(), n, ldx, ref.data(), ldy);
          std::vector<float> got = dy.get(), g2, r2;
          for (int64_t i = 0; i < n; ++i)  // the padding columns are not the op's to write
            for (int64_t j = 0; j < out; ++j) {
              g2.push_back(got[size_t(i * ldy + j)]);
              r2.push_back(ref[size_t(i * ldy + j)]);
            }
          expect_within(g2, r2, yt, "linear in=" + std::to_string(in) + " n=" + std::to_string(n) + (bias ? " bias" : ""));
        }
      }
    }
  }
}

TEST_P(CudaOps, LinearWithActivationEpilogue) {
  const DType t = GetParam();
  for (Activation act : {Activation::Relu, Activation::GeluTanh}) {
    const gpu::Epilogue ep = gpu::linear_fuses(act, t);
    if (ep == gpu::Epilogue::None) continue;  // GELU in f32 runs as its own kernel
    for (int64_t n : {2, 45}) {  // 2 rows: the GEMV kernel's epilogue (16-bit); 45: cuBLASLt's
      for (bool bias : {false, true}) {
        const int64_t in = 136, out = 264;
        auto w = rounded(t, randn(rng, out * in, 0.2f)), x = rounded(t, randn(rng, n * in)), b = rounded(t, randn(rng, out));
        const Linear l = host_linear(w, in, out, bias ? b.data() : nullptr);
        Dev dw(t, w), dx(t, x), db(t, b), dy(t, n * out);
        gpu::linear({.t = t, .x = dx.p(), .ldx = in, .n = n, .w = dw.p(), .in = in, .out = out, .bias = bias ? db.p() : nullptr,
                     .yt = t, .y = dy.p(), .ldy = out, .act = ep},
                    st());
        std::vector<float> ref(static_cast<size_t>(n * out));
        ops::linear(l, x.data(), n, in, ref.data(), out);
        // The plain computation rounds the GEMM output to the dtype before the activation.
        std::vector<float> plain = rounded(t, ref);
        ops::activation(act, ref.data(), nullptr, n * out);
        ops::activation(act, plain.data(), nullptr, n * out);
        const std::string label = std::string("linear+") + (act == Activation::Relu ? "relu" : "gelu") +
                                  (bias ? "+bias" : "") + " n=" + std::to_string(n);
        expect_within(dy.get(), ref, rounded(t, plain), t, label);
      }
    }
  }
}

// act(x Wg^T + bg) * (x Wu^T + bu): against the CPU's linears and activation, and, where a decoding
// step's rows take the one-pass kernel (16-bit, 1-4 rows), bit for bit against the GPU's two linears and
// its activation kernel (the op's contract: the same roundings in the same order).
TEST_P(CudaOps, LinearGluAsTwoLinearsAndTheActivation) {
  const DType t = GetParam();
  for (Activation act : {Activation::SiluGlu, Activation::GeluTanhGlu})
    for (int64_t n : {1, 3, 4, 45})
      for (bool bias : {false, true}) {
        const int64_t in = 4360, out = 264;
        auto wg = rounded(t, randn(rng, out * in, 0.05f)), wu = rounded(t, randn(rng, out * in, 0.05f));
        auto x = rounded(t, randn(rng, n * in)), bg = rounded(t, randn(rng, out)), bu = rounded(t, randn(rng, out));
        Dev dwg(t, wg), dwu(t, wu), dx(t, x), dbg(t, bg), dbu(t, bu), dy(t, n * out), dscratch(t, n * out);
        const gpu::LinearArgs gate{.t = t, .x = dx.p(), .ldx = in, .n = n, .w = dwg.p(), .in = in, .out = out,
                                   .bias = bias ? dbg.p() : nullptr, .yt = t, .y = dy.p(), .ldy = out};
        dy.poison();
        gpu::linear_glu({.gate = gate, .up_w = dwu.p(), .up_bias = bias ? dbu.p() : nullptr, .act = act, .scratch = dscratch.p()},
                        st());
        const std::vector<float> got = dy.get();
        std::vector<float> ref_g(static_cast<size_t>(n * out)), ref_u(ref_g.size());
        const Linear lg = host_linear(wg, in, out, bias ? bg.data() : nullptr);
        const Linear lu = host_linear(wu, in, out, bias ? bu.data() : nullptr);
        ops::linear(lg, x.data(), n, in, ref_g.data(), out);
        ops::linear(lu, x.data(), n, in, ref_u.data(), out);
        std::vector<float> plain_g = rounded(t, ref_g), plain_u = rounded(t, ref_u);
        ops::activation(act, ref_g.data(), ref_u.data(), n * out);
        ops::activation(act, plain_g.data(), plain_u.data(), n * out);
        const std::string label = std::string("linear_glu ") + (act == Activation::SiluGlu ? "silu" : "gelu") +
                                  (bias ? "+bias" : "") + " n=" + std::to_string(n);
        expect_within(got, ref_g, rounded(t, plain_g), t, label);
        if (t == DType::F32 || n > 4) continue;  // the one-pass kernel's rows: 16-bit, 1 to 4
        Dev dg(t, n * out), du(t, n * out);
        gpu::LinearArgs g2 = gate, u2 = gate;
        g2.y = dg.p();
        u2.w = dwu.p();
        u2.bias = bias ? dbu.p() : nullptr;
        u2.y = du.p();
        gpu::linear(g2, st());
        gpu::linear(u2, st());
        gpu::activation(t, act, dg.p(), du.p(), n * out, st());
        EXPECT_EQ(dg.get(), got) << label << ": one pass against two linears and the activation";
      }
}

// The plain same-dtype attention (FlashAttention's attention_ref without upcasting): logits,
// probabilities and the output each rounded to the dtype; the keys a query sees (position, window)
// as the op's contract states them (support/attention_reference.h).
std::vector<float> plain_attention(DType t, const ops::AttentionArgs& a) {
  const float *q = static_cast<const float*>(a.q), *k = static_cast<const float*>(a.k), *v = static_cast<const float*>(a.v);
  const float *own_k = static_cast<const float*>(a.own_k), *own_v = static_cast<const float*>(a.own_v);
  std::vector<float> out(static_cast<size_t>(a.nq * a.ldo), 0.f);
  const int64_t g = a.heads / a.kv_heads, hd = a.head_dim;
  for (int64_t h = 0; h < a.heads; ++h)
    for (int64_t i = 0; i < a.nq; ++i) {
      std::vector<double> s(static_cast<size_t>(a.nk));
      double mx = -INFINITY;
      for (int64_t j = 0; j < a.nk; ++j) {
        if (!test::attention_sees(a, i, j)) continue;
        double dot = 0;
        for (int64_t c = 0; c < hd; ++c) dot += double(q[i * a.ldq + h * hd + c]) * k[j * a.ldkv + (h / g) * hd + c];
        s[size_t(j)] = round_to(t, float(dot * a.scale)) + (a.bias ? a.bias[i * a.ldbias + j] : 0.f);
        mx = std::max(mx, s[size_t(j)]);
      }
      const bool own = a.own_mask && a.own_mask[i];  // the query's own key (ADA's all-queries mode)
      double own_s = 0;
      if (own) {
        double dot = 0;
        for (int64_t c = 0; c < hd; ++c) dot += double(q[i * a.ldq + h * hd + c]) * own_k[i * a.ldown + (h / g) * hd + c];
        own_s = round_to(t, float(dot * a.scale));
        mx = std::max(mx, own_s);
      }
      double sum = own ? std::exp(own_s - mx) : 0;
      for (int64_t j = 0; j < a.nk; ++j) sum += test::attention_sees(a, i, j) ? std::exp(s[size_t(j)] - mx) : 0;
      for (int64_t c = 0; c < hd; ++c) {
        double o = own ? double(round_to(t, float(std::exp(own_s - mx) / sum))) * own_v[i * a.ldown + (h / g) * hd + c] : 0;
        for (int64_t j = 0; j < a.nk; ++j)
          if (test::attention_sees(a, i, j))
            o += double(round_to(t, float(std::exp(s[size_t(j)] - mx) / sum))) * v[j * a.ldkv + (h / g) * hd + c];
        out[size_t(i * a.ldo + h * hd + c)] = round_to(t, float(o));
      }
    }
  return out;
}

// The GPU op's arguments with the CPU op's shapes and scalars; the caller sets the device arrays.
ops::AttentionArgs gpu_args_like(const ops::AttentionArgs& a, DType t) {
  ops::AttentionArgs g;
  g.dtype = t;
  g.ldq = a.ldq;
  g.nq = a.nq;
  g.ldkv = a.ldkv;
  g.nk = a.nk;
  g.heads = a.heads;
  g.kv_heads = a.kv_heads;
  g.head_dim = a.head_dim;
  g.scale = a.scale;
  g.ldo = a.ldo;
  g.ldown = a.ldown;
  g.ldbias = a.ldbias;
  return g;
}

TEST_P(CudaOps, AttentionCausalByPositionGqaEveryHeadSize) {
  const DType t = GetParam();
  struct Case {
    int64_t hd, heads, kv_heads, nq, nk;
    bool gathered;  // keys at sparse sorted positions, queries a subset of them (ADA's representatives)
    bool decode;    // the last nq of nk positions
    // ADA's all-queries mode: keys gathered as above, queries at every position from 0 (or, with
    // decode, after the last key), each also seeing its own key unless it is one of the keys.
    bool own = false;
    bool bias = false;  // ADA's proportional option: a bias per (query, key), none on the own key
    // ADA's sinks/window variant: a sliding window, with keys 0, 1 and every 7th pinned (sinks,
    // representatives); ring: a decode ring's unsorted keys (slot j at position (j + nk / 3) mod nk,
    // slot 5 unused), keys_sorted false.
    int64_t window = 0;
    bool pinned = false, ring = false;
    // A decoding step over a cache's capacity (exact attention's captured step): with filled > 0 the
    // queries are the last nq of the first `filled` positions, the slots after them lie past every query.
    int64_t filled = 0;
  };
  std::vector<Case> cases;
  for (int64_t hd : {64, 80, 96, 128, 256}) {
    cases.push_back({hd, 4, 2, 133, 133, false, false});  // prefill, grouped-query, tile kernel (16-bit)
    cases.push_back({hd, 2, 2, 3, 141, false, true});     // decode steps: general kernel
  }
  // Enough heads for the tile kernel's 128-query blocks (8 blocks an SM of this GPU: attention_cuda.cu,
  // flash_wide); F32 has no tile kernel.
  const int64_t wide_heads = 4 * cuda::context().sm_count;
  if (t != DType::F32)
    for (int64_t hd : {64, 128}) cases.push_back({hd, wide_heads, wide_heads / 4, 130, 130, false, false});
  for (int64_t hd : {64, 128, 256}) cases.push_back({hd, 4, 2, 150, 50, true, false, true});  // own keys, tile kernel
  cases.push_back({128, 4, 2, 3, 50, true, true, true});  // own keys while decoding: general kernel
  cases.push_back({64, 4, 2, 70, 90, true, false, false, true});  // a bias: tile kernel
  cases.push_back({128, 4, 2, 150, 50, true, false, true, true});  // a bias and own keys: tile kernel
  cases.push_back({96, 4, 2, 3, 50, true, true, true, true});     // the same while decoding: general kernel
  cases.push_back({256, 16, 4, 1, 3000, false, true});  // one decoded token over many keys: split over keys
  // The decoding kernel (16-bit, head sizes 64/128/256): groups of 4 (Llama-3-8B's), 3 (SmolLM2's) and
  // 8 query heads, many ranges of keys, and a ring's unsorted keys with an unused slot.
  cases.push_back({128, 32, 8, 1, 5000, false, true});
  cases.push_back({64, 9, 3, 2, 2000, false, true});
  cases.push_back({64, 16, 2, 1, 1000, false, true});
  cases.push_back({128, 4, 2, 1, 141, false, true, false, false, 0, false, true});
  // The decoding kernel over a capacity partly filled (the splits share the filled keys): about half, a
  // handful, and two queries whose filled prefixes differ.
  cases.push_back({128, 32, 8, 1, 4096, false, true, false, false, 0, false, false, 2049});
  cases.push_back({128, 32, 8, 1, 4096, false, true, false, false, 0, false, false, 5});
  cases.push_back({64, 9, 3, 2, 3000, false, true, false, false, 0, false, false, 1700});
  // A chunk of queries after a cache (the diagonal at the bottom right): tile kernel, and cuDNN's.
  cases.push_back({128, 4, 2, 40, 141, false, true});
  cases.push_back({256, 8, 2, 33, 300, false, true});
  cases.push_back({64, 2, 1, 4, 300, true, false});     // few gathered queries: splits with no visible key
  cases.push_back({40, 3, 1, 51, 51, false, false});  // odd head size: general kernel
  cases.push_back({128, 4, 4, 70, 90, true, false});  // gathered keys at their original positions
  // Sliding windows: the tile kernel (16-bit; tiles of 64 keys, some wholly inside the window) and
  // the general one (f32, decoding).
  cases.push_back({64, 4, 2, 133, 133, false, false, false, false, 70, true});   // window, pinned keys
  cases.push_back({128, 4, 2, 133, 133, false, false, false, false, 17});        // window alone
  cases.push_back({96, 4, 2, 133, 133, false, false, false, false, 1, true});    // window 1, pinned keys
  cases.push_back({64, 4, 2, 133, 133, false, false, false, false, 1000, true}); // wider than every distance
  cases.push_back({128, 4, 2, 150, 50, true, false, true, true, 10, true});      // own keys, a bias, window
  cases.push_back({128, 4, 2, 3, 141, false, true, false, false, 40, true});     // decoding, window
  cases.push_back({64, 4, 2, 3, 141, false, true, true, false, 30, true, true});  // decode ring, own keys, window
  std::string no_cudnn;
  if (!gpu::cudnn_sdpa::available(&no_cudnn))  // a machine or build without it: Cascade's kernel alone
    std::cout << "cuDNN's attention not tested here: " << no_cudnn << "\n";
  for (const Case& c : cases) {
    const int64_t qd = c.heads * c.hd, kd = c.kv_heads * c.hd, ldq = qd + 8, ldkv = kd;
    std::vector<int64_t> kpos(static_cast<size_t>(c.nk)), qpos(static_cast<size_t>(c.nq));
    for (int64_t j = 0; j < c.nk; ++j)
      kpos[size_t(j)] = c.ring       ? (j == 5 ? std::numeric_limits<int64_t>::max() / 2 : (j + c.nk / 3) % c.nk)
                        : c.gathered ? 3 * j + (j * j) % 3
                                     : j;
    for (int64_t i = 0; i < c.nq; ++i)
      qpos[size_t(i)] = c.ring ? c.nk + i
                        : c.own ? (c.decode ? kpos.back() + 1 + i : i)
                        : c.gathered ? kpos[size_t(i * (c.nk - 1) / (c.nq - 1))]
                        : c.decode   ? (c.filled > 0 ? c.filled : c.nk) - c.nq + i
                                     : i;
    auto q = rounded(t, randn(rng, c.nq * ldq)), k = rounded(t, randn(rng, c.nk * ldkv)), v = rounded(t, randn(rng, c.nk * ldkv));
    std::vector<float> own_k, own_v;
    std::vector<uint8_t> own_mask;
    if (c.own) {
      own_k = rounded(t, randn(rng, c.nq * kd));
      own_v = rounded(t, randn(rng, c.nq * kd));
      for (int64_t i = 0; i < c.nq; ++i)
        own_mask.push_back(std::find(kpos.begin(), kpos.end(), qpos[size_t(i)]) == kpos.end() ? 1 : 0);
    }
    std::vector<uint8_t> pinned;
    if (c.pinned)
      for (int64_t j = 0; j < c.nk; ++j) pinned.push_back(j < 2 || j % 7 == 3);
    ops::AttentionArgs a;
    a.q = q.data();
    a.ldq = ldq;
    a.nq = c.nq;
    a.k = k.data();
    a.v = v.data();
    a.ldkv = ldkv;
    a.nk = c.nk;
    a.heads = c.heads;
    a.kv_heads = c.kv_heads;
    a.head_dim = c.hd;
    a.q_pos = qpos.data();
    a.k_pos = kpos.data();
    a.scale = 1.f / std::sqrt(float(c.hd));
    a.keys_sorted = !c.ring;
    a.window = c.window;
    if (c.pinned) a.key_pinned = pinned.data();
    std::vector<float> bias;
    if (c.bias) {
      std::uniform_real_distribution<float> u(0.f, 2.f);
      for (int64_t i = 0; i < c.nq * c.nk; ++i) bias.push_back(u(rng));
      a.bias = bias.data();
      a.ldbias = c.nk;
    }
    if (c.own) {
      a.own_k = own_k.data();
      a.own_v = own_v.data();
      a.ldown = kd;
      a.own_mask = own_mask.data();
    }
    std::vector<float> ref(static_cast<size_t>(c.nq * qd));
    a.out = ref.data();
    a.ldo = qd;
    ops::attention(a);
    const std::vector<float> plain = plain_attention(t, a);
    Dev dq(t, q), dk(t, k), dv(t, v), dout(t, c.nq * qd);
    auto dqp = dev_of(qpos);
    auto dkp = dev_of(kpos);
    Dev down_k(t, c.own ? own_k : std::vector<float>{0.f}), down_v(t, c.own ? own_v : std::vector<float>{0.f});
    auto down_mask = dev_of(c.own ? own_mask : std::vector<uint8_t>{0});
    auto dbias = dev_of(c.bias ? bias : std::vector<float>{0.f});
    auto dpinned = dev_of(c.pinned ? pinned : std::vector<uint8_t>{0});
    ops::AttentionArgs g = gpu_args_like(a, t);
    g.q = dq.p();
    g.k = dk.p();
    g.v = dv.p();
    g.q_pos = dqp.data();
    g.k_pos = dkp.data();
    g.out = dout.p();
    if (c.bias) g.bias = dbias.data();
    g.keys_sorted = a.keys_sorted;
    g.window = a.window;
    if (c.pinned) g.key_pinned = dpinned.data();
    if (c.own) {
      g.own_k = down_k.p();
      g.own_v = down_v.p();
      g.own_mask = down_mask.data();
    }
    const std::string what = "attention hd=" + std::to_string(c.hd) + " nq=" + std::to_string(c.nq) +
                             " nk=" + std::to_string(c.nk) + (c.gathered ? " gathered" : "") + (c.decode ? " decode" : "") +
                             (c.own ? " own keys" : "") + (c.bias ? " bias" : "") +
                             (c.window ? " window " + std::to_string(c.window) : "") + (c.pinned ? " pinned" : "") +
                             (c.ring ? " ring" : "") + (c.filled ? " filled " + std::to_string(c.filled) : "");
    g.kernel = ops::AttentionKernel::cascade;
    gpu::attention(g, st());
    expect_within(dout.get(), ref, plain, t, what);
    // Causal in index space (keys 0..nk-1, queries the last nq): cuDNN's fused attention where it
    // applies; it must run there for the head sizes the engine's models use.
    g.causal_by_index = !c.gathered && !c.own && !c.bias && !c.window && !c.ring && !c.filled;
    if (gpu::cudnn_sdpa::applies(g) && gpu::cudnn_sdpa::available()) {
      g.kernel = ops::AttentionKernel::cudnn;  // its plan built at this first call
      dout.poison();
      std::string why;
      if (gpu::cudnn_sdpa::run(g, st(), &why)) {
        expect_within(dout.get(), ref, plain, t, what + " (cuDNN)");
      } else if (c.hd == 64 || c.hd == 128 || c.hd == 256) {
        ADD_FAILURE() << what << ": cuDNN declined (" << why << ")";
      } else {
        std::cout << what << ": cuDNN declined (" << why << "); Cascade's kernel runs it\n";
      }
      g.kernel = ops::AttentionKernel::automatic;  // the op's own dispatch: the plan above, or Cascade's kernel
      dout.poison();
      gpu::attention(g, st());
      expect_within(dout.get(), ref, plain, t, what + " (automatic)");
    }
    g.causal_by_index = false;
    // Unsorted keys (no early stop, the splits over every key) give the same result when told.
    if (c.gathered || c.filled) {
      g.keys_sorted = false;
      dout.poison();
      gpu::attention(g, st());
      expect_within(dout.get(), ref, plain, t, "attention, keys_sorted=false");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaOps, ::testing::Values(DType::F32, DType::F16, DType::BF16),
                         [](const auto& info) { return dtype_name(info.param); });

}  // namespace
}  // namespace cascade

#else
TEST(CudaOps, NotBuilt) { GTEST_SKIP() << cascade::cuda::describe_gpu(); }
#endif
