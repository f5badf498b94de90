#include "attention/exact_attention.h"

#include <chrono>
#include <vector>

#include "attention/projections.h"
#include "core/clock.h"
#include "ops/attention.h"

namespace cascade {

namespace {

using Clock = std::chrono::steady_clock;

class ExactAttention : public LayerAttention {
 public:
  explicit ExactAttention(const AttentionContext& c) : c_(c) {}

  void forward(const float* x, int64_t n, const int64_t* pos, float* out) override {
    const ArchSpec& a = *c_.spec;
    const int64_t qd = a.n_heads * a.head_dim, kd = a.n_kv_heads * a.head_dim;
    const int64_t old = int64_t(pos_.size());
    auto t0 = Clock::now();
    std::vector<float> q(static_cast<size_t>(n * qd));
    k_.resize(size_t((old + n) * kd));
    v_.resize(size_t((old + n) * kd));
    project_qkv(c_, x, n, pos, q.data(), k_.data() + old * kd, v_.data() + old * kd);
    pos_.insert(pos_.end(), pos, pos + n);
    c_.times->projections += seconds_since(t0);

    t0 = Clock::now();
    std::vector<float> o(static_cast<size_t>(n * qd));
    ops::AttentionArgs args;
    args.q = q.data();
    args.ldq = qd;
    args.nq = n;
    args.k = k_.data();
    args.v = v_.data();
    args.ldkv = kd;
    args.nk = old + n;
    args.heads = a.n_heads;
    args.kv_heads = a.n_kv_heads;
    args.head_dim = a.head_dim;
    args.q_pos = pos;
    args.k_pos = pos_.data();
    args.scale = attention_scale(a);
    args.out = o.data();
    args.ldo = qd;
    ops::attention(args);
    c_.times->attention += seconds_since(t0);

    t0 = Clock::now();
    project_out(c_, o.data(), n, out);
    c_.times->projections += seconds_since(t0);
  }

  int64_t cache_bytes() const override { return int64_t((k_.size() + v_.size()) * sizeof(float)); }

 private:
  AttentionContext c_;
  std::vector<float> k_, v_;  // [tokens, kv_heads * head_dim]
  std::vector<int64_t> pos_;
};

}  // namespace

std::vector<std::unique_ptr<LayerAttention>> ExactAttentionFactory::make(const std::vector<AttentionContext>& layers) const {
  std::vector<std::unique_ptr<LayerAttention>> out;
  for (const auto& c : layers) out.push_back(std::make_unique<ExactAttention>(c));
  return out;
}

}  // namespace cascade
