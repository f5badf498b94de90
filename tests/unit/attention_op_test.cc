// The CPU attention op (ops/attention.h) against a plain float64 statement of its contract
// (support/attention_reference.h), with the sliding window of ADA's sinks/window variant: a window
// with and without pinned keys, window 1, a window wider than every distance, with own keys, with a
// bias, and over a decode ring's unsorted keys. (The GPU op is held against this CPU op in
// cuda_ops_test.cc.)
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ops/attention.h"
#include "support/attention_reference.h"
#include "support/test_seed.h"

namespace cascade {
namespace {

enum class Keys { prefill, gathered, ring };

struct Case {
  std::string name;
  Keys keys;
  int64_t nq, nk, window;
  bool pinned = false, own = false, bias = false;
};

// Arrays of one case, drawn from rng; args() points an AttentionArgs at them.
struct Inputs {
  static constexpr int64_t kHeads = 4, kKvHeads = 2, kHd = 24, kQd = kHeads * kHd, kKd = kKvHeads * kHd;
  std::vector<float> q, k, v, own_k, own_v, bias, out;
  std::vector<int64_t> qpos, kpos;
  std::vector<uint8_t> own_mask, pinned;

  Inputs(const Case& c, std::mt19937_64& rng) {
    std::normal_distribution<float> n(0.f, 1.f);
    auto draw = [&](int64_t count) {
      std::vector<float> x(static_cast<size_t>(count));
      for (float& e : x) e = n(rng);
      return x;
    };
    q = draw(c.nq * kQd);
    k = draw(c.nk * kKd);
    v = draw(c.nk * kKd);
    kpos.resize(size_t(c.nk));
    qpos.resize(size_t(c.nq));
    for (int64_t j = 0; j < c.nk; ++j) {
      switch (c.keys) {
        case Keys::prefill: kpos[size_t(j)] = j; break;
        case Keys::gathered: kpos[size_t(j)] = 3 * j + (j * j) % 3; break;  // ADA's representatives
        // A decode ring: slot j holds position (j + nk / 3) mod nk, one slot unused (never visible).
        case Keys::ring: kpos[size_t(j)] = j == 5 ? std::numeric_limits<int64_t>::max() / 2 : (j + c.nk / 3) % c.nk; break;
      }
    }
    for (int64_t i = 0; i < c.nq; ++i)
      qpos[size_t(i)] = c.keys == Keys::prefill ? i
                        : c.keys == Keys::ring  ? c.nk + i
                        : c.own                 ? i
                                                : kpos[size_t(i * (c.nk - 1) / (c.nq - 1))];
    if (c.own) {
      own_k = draw(c.nq * kKd);
      own_v = draw(c.nq * kKd);
      for (int64_t i = 0; i < c.nq; ++i) own_mask.push_back(i % 3 != 1);
    }
    if (c.pinned)
      for (int64_t j = 0; j < c.nk; ++j) pinned.push_back(j < 2 || j % 7 == 3);  // sinks and representatives
    if (c.bias) {
      std::uniform_real_distribution<float> u(0.f, 2.f);
      for (int64_t e = 0; e < c.nq * c.nk; ++e) bias.push_back(u(rng));
    }
    out.assign(size_t(c.nq * kQd), std::numeric_limits<float>::quiet_NaN());
  }

  ops::AttentionArgs args(const Case& c) {
    ops::AttentionArgs a;
    a.q = q.data();
    a.ldq = kQd;
    a.nq = c.nq;
    a.k = k.data();
    a.v = v.data();
    a.ldkv = kKd;
    a.nk = c.nk;
    a.heads = kHeads;
    a.kv_heads = kKvHeads;
    a.head_dim = kHd;
    a.q_pos = qpos.data();
    a.k_pos = kpos.data();
    a.keys_sorted = c.keys != Keys::ring;
    if (c.bias) {
      a.bias = bias.data();
      a.ldbias = c.nk;
    }
    a.window = c.window;
    if (c.pinned) a.key_pinned = pinned.data();
    if (c.own) {
      a.own_k = own_k.data();
      a.own_v = own_v.data();
      a.ldown = kKd;
      a.own_mask = own_mask.data();
    }
    a.scale = 1.f / std::sqrt(float(kHd));
    a.out = out.data();
    a.ldo = kQd;
    return a;
  }
};

// Keys that the window hides from some query although they are visible by position: a window case
// whose window hides nothing would test nothing.
int64_t hidden_by_window(const ops::AttentionArgs& a) {
  ops::AttentionArgs plain = a;
  plain.window = 0;
  int64_t hidden = 0;
  for (int64_t i = 0; i < a.nq; ++i)
    for (int64_t j = 0; j < a.nk; ++j) hidden += test::attention_sees(plain, i, j) && !test::attention_sees(a, i, j);
  return hidden;
}

TEST(AttentionOp, MatchesPlainStatementWithWindow) {
  const test::Seed seed(20261204);
  std::mt19937_64 rng(seed.value());
  const std::vector<Case> cases = {
      {"no window", Keys::prefill, 40, 40, 0},
      {"window 7", Keys::prefill, 40, 40, 7},
      {"window 7, pinned", Keys::prefill, 40, 40, 7, true},
      {"window 1", Keys::prefill, 40, 40, 1},
      {"window 1, pinned", Keys::prefill, 40, 40, 1, true},
      {"window 50 over 600 queries (the op's query blocks)", Keys::prefill, 600, 600, 50, true},
      {"gathered keys, own keys, window 10, pinned", Keys::gathered, 150, 50, 10, true, true},
      {"gathered keys, bias, window 12, pinned", Keys::gathered, 30, 50, 12, true, false, true},
      {"gathered keys, bias, own keys, window 9", Keys::gathered, 150, 50, 9, false, true, true},
      {"decode ring (unsorted), own keys, window 20, pinned", Keys::ring, 3, 60, 20, true, true},
      {"decode ring (unsorted), window 25", Keys::ring, 3, 60, 25},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Inputs in(c, rng);
    const ops::AttentionArgs a = in.args(c);
    if (c.window > 0) {
      ASSERT_GT(hidden_by_window(a), 0) << "the window hides no key";
    }
    ops::attention(a);
    const std::vector<double> ref = test::attention_reference(a);
    for (size_t e = 0; e < ref.size(); ++e)
      ASSERT_NEAR(in.out[e], ref[e], 2e-5 * (1 + std::abs(ref[e])))
          << "output " << e << " (row " << int64_t(e) / Inputs::kQd << ")";
  }
}

// A window wider than every distance hides nothing: the output equals the op's without a window,
// bit for bit (pinned or not).
TEST(AttentionOp, WindowWiderThanEveryDistanceIsNoWindow) {
  const test::Seed seed(20261205);
  std::mt19937_64 rng(seed.value());
  for (const Case& c : {Case{"wide window", Keys::gathered, 150, 50, 1000, true, true, true},
                        Case{"wide window, ring", Keys::ring, 3, 60, 64, false, true}}) {
    SCOPED_TRACE(c.name);
    Inputs in(c, rng);
    ops::AttentionArgs a = in.args(c);
    ASSERT_EQ(hidden_by_window(a), 0);
    ops::attention(a);
    const std::vector<float> windowed = in.out;
    a.window = 0;
    a.key_pinned = nullptr;
    ops::attention(a);
    EXPECT_EQ(windowed, in.out);
  }
}

}  // namespace
}  // namespace cascade
