// ADA attention: selection (select/), then compressed attention on the representatives through the
// same projections and attention core as exact attention (attention/projections.h, ops/attention.h).
#include "attention/ada_attention.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <optional>

#include "attention/projections.h"
#include "core/error.h"
#include "ops/attention.h"
#include "select/incremental.h"

namespace cascade {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }


class AdaLayer : public LayerAttention {
 public:
  AdaLayer(const AttentionContext& c, const AdaOptions& o, const AdaLayer* below) : c_(c), o_(o), below_(below) {}

  void forward(const float* x, int64_t n, const int64_t* pos, float* out) override {
    if (T_ == 0) {
      prefill(x, n, pos, out);
      return;
    }
    for (int64_t i = 0; i < n; ++i) decode(x + i * d(), pos[i], out + i * d());
  }

  int64_t cache_bytes() const override { return int64_t((k_.size() + v_.size()) * sizeof(float)); }
  const AdaLayerTrace& trace() const { return trace_; }
  // Whether token t (in this layer) is a representative; inherit imposes the layer below's flag.
  bool is_rep(int64_t t) const { return is_rep_[size_t(t)] != 0; }

 private:
  int64_t d() const { return c_.spec->d_model; }
  int64_t qd() const { return c_.spec->n_heads * c_.spec->head_dim; }
  int64_t kd() const { return c_.spec->n_kv_heads * c_.spec->head_dim; }

  ops::AttentionArgs args(const float* q, int64_t nq, const int64_t* qpos, float* o) const {
    ops::AttentionArgs a;
    a.q = q;
    a.ldq = qd();
    a.nq = nq;
    a.k = k_.data();
    a.v = v_.data();
    a.ldkv = kd();
    a.nk = int64_t(rep_pos_.size());
    a.heads = c_.spec->n_heads;
    a.kv_heads = c_.spec->n_kv_heads;
    a.head_dim = c_.spec->head_dim;
    a.q_pos = qpos;
    a.k_pos = rep_pos_.data();
    a.scale = attention_scale(*c_.spec);
    a.out = o;
    a.ldo = qd();
    return a;
  }

  void prefill(const float* x, int64_t n, const int64_t* pos, float* out) {
    auto t0 = Clock::now();
    const select::Features z = select::normalize(x, n, d(), o_.select.similarity);
    const select::Selection* prev = below_ ? &below_->trace_.selection : nullptr;
    trace_.selection = select::run_layer(z, prev, o_.select, o_.mode, c_.layer);
    const select::Selection& sel = trace_.selection;
    selector_.emplace(z, sel, o_.select);
    c_.times->selection += since(t0);
    if (o_.compare_full) trace_.jaccard_vs_full = select::jaccard(sel.reps, select::run_full(z, o_.select).reps);

    const auto& reps = sel.reps;
    const int64_t r = int64_t(reps.size());
    is_rep_.assign(size_t(n), 0);
    for (int32_t s : reps) is_rep_[size_t(s)] = 1;
    rep_index_.assign(size_t(n), -1);
    for (int64_t i = 0; i < r; ++i) rep_index_[size_t(reps[size_t(i)])] = int32_t(i);
    rep_pos_.resize(size_t(r));
    for (int64_t i = 0; i < r; ++i) rep_pos_[size_t(i)] = pos[reps[size_t(i)]];

    // Projections: representatives only (reps), or every token (all).
    t0 = Clock::now();
    const bool all = o_.queries == AdaQueries::all;
    const int64_t nrows = all ? n : r;
    std::vector<float> xr;
    std::vector<int64_t> rows_pos(static_cast<size_t>(nrows));
    const float* xin = x;
    if (!all) {
      xr.resize(size_t(r * d()));
      for (int64_t i = 0; i < r; ++i) std::copy(x + reps[size_t(i)] * d(), x + (reps[size_t(i)] + 1) * d(), &xr[size_t(i * d())]);
      xin = xr.data();
    }
    for (int64_t i = 0; i < nrows; ++i) rows_pos[size_t(i)] = all ? pos[i] : pos[reps[size_t(i)]];
    std::vector<float> q(static_cast<size_t>(nrows * qd())), kk(static_cast<size_t>(nrows * kd())), vv(static_cast<size_t>(nrows * kd()));
    project_qkv(c_, xin, nrows, rows_pos.data(), q.data(), kk.data(), vv.data());
    // The compressed cache: K, V of the representatives.
    k_.resize(size_t(r * kd()));
    v_.resize(size_t(r * kd()));
    for (int64_t i = 0; i < r; ++i) {
      const int64_t src = all ? reps[size_t(i)] : i;
      std::copy(&kk[size_t(src * kd())], &kk[size_t((src + 1) * kd())], &k_[size_t(i * kd())]);
      std::copy(&vv[size_t(src * kd())], &vv[size_t((src + 1) * kd())], &v_[size_t(i * kd())]);
    }
    c_.times->projections += since(t0);

    t0 = Clock::now();
    std::vector<float> o(static_cast<size_t>(nrows * qd()));
    ops::AttentionArgs args = this->args(q.data(), nrows, rows_pos.data(), o.data());
    std::vector<float> bias;
    if (o_.proportional) {
      const select::ChildCounts counts(sel.parent);
      bias.resize(size_t(nrows * r));
      for (int64_t i = 0; i < nrows; ++i)
        for (int64_t j = 0; j < r; ++j)
          bias[size_t(i * r + j)] = rows_pos[size_t(i)] >= rep_pos_[size_t(j)]
                                        ? float(std::log(double(counts.n(reps[size_t(j)], int32_t(rows_pos[size_t(i)])))))
                                        : 0.f;
      args.bias = bias.data();
      args.ldbias = r;
    }
    std::vector<uint8_t> own;
    if (all) {
      own.resize(size_t(n));
      for (int64_t t = 0; t < n; ++t) own[size_t(t)] = is_rep_[size_t(t)] ? 0 : 1;
      args.own_k = kk.data();
      args.own_v = vv.data();
      args.ldown = kd();
      args.own_mask = own.data();
    }
    ops::attention(args);
    c_.times->attention += since(t0);

    t0 = Clock::now();
    std::vector<float> sub(static_cast<size_t>(nrows * d()));
    project_out(c_, o.data(), nrows, sub.data());
    c_.times->projections += since(t0);
    // Sub-layer outputs of the representatives are kept: a later non-representative copies its parent's.
    rep_out_.resize(size_t(r * d()));
    for (int64_t i = 0; i < r; ++i) {
      const int64_t src = all ? reps[size_t(i)] : i;
      std::copy(&sub[size_t(src * d())], &sub[size_t((src + 1) * d())], &rep_out_[size_t(i * d())]);
    }
    for (int64_t t = 0; t < n; ++t) {
      const float* src = all ? &sub[size_t(t * d())] : &rep_out_[size_t(rep_index_[size_t(sel.parent[size_t(t)])] * d())];
      std::copy(src, src + d(), out + t * d());
    }
    T_ = n;
    if (o_.measure_error) trace_.attention_error = error_against_exact(x, n, pos, out);
  }

  // ||O_ada - O_full||_F / ||O_full||_F with exact attention run on the same layer input x.
  double error_against_exact(const float* x, int64_t n, const int64_t* pos, const float* ada) const {
    std::vector<float> q(static_cast<size_t>(n * qd())), kk(static_cast<size_t>(n * kd())), vv(static_cast<size_t>(n * kd())),
        o(static_cast<size_t>(n * qd())), full(static_cast<size_t>(n * d()));
    project_qkv(c_, x, n, pos, q.data(), kk.data(), vv.data());
    ops::AttentionArgs a = args(q.data(), n, pos, o.data());
    a.k = kk.data();
    a.v = vv.data();
    a.nk = n;
    a.k_pos = pos;
    ops::attention(a);
    project_out(c_, o.data(), n, full.data());
    double num = 0, den = 0;
    for (int64_t i = 0; i < n * d(); ++i) {
      num += double(ada[i] - full[size_t(i)]) * (ada[i] - full[size_t(i)]);
      den += double(full[size_t(i)]) * full[size_t(i)];
    }
    return den > 0 ? std::sqrt(num / den) : 0.0;
  }

  void decode(const float* x, int64_t p, float* out) {
    if (o_.mode.mode == select::Mode::random && below_)
      fail("--select random is a prefill control (its set is not causal); it cannot decode new tokens");
    auto t0 = Clock::now();
    select::IncrementalSelector::Step st;
    if (o_.mode.mode == select::Mode::inherit && below_) st = selector_->step_imposed(x, below_->is_rep(T_));
    else st = selector_->step(x);
    c_.times->selection += since(t0);
    is_rep_.push_back(st.is_rep ? 1 : 0);
    rep_index_.push_back(st.is_rep ? int32_t(rep_pos_.size()) : -1);
    ++trace_.decode_tokens;
    const bool all = o_.queries == AdaQueries::all;
    if (!st.is_rep && !all) {  // copy the parent's sub-layer output
      const float* src = &rep_out_[size_t(rep_index_[size_t(st.parent)] * d())];
      std::copy(src, src + d(), out);
      ++T_;
      return;
    }
    t0 = Clock::now();
    std::vector<float> q(static_cast<size_t>(qd())), kk(static_cast<size_t>(kd())), vv(static_cast<size_t>(kd()));
    project_qkv(c_, x, 1, &p, q.data(), kk.data(), vv.data());
    if (st.is_rep) {
      ++trace_.decode_reps;
      k_.insert(k_.end(), kk.begin(), kk.end());
      v_.insert(v_.end(), vv.begin(), vv.end());
      rep_pos_.push_back(p);
    }
    c_.times->projections += since(t0);
    t0 = Clock::now();
    std::vector<float> o(static_cast<size_t>(qd()));
    ops::AttentionArgs a = args(q.data(), 1, &p, o.data());
    std::vector<float> bias;
    if (o_.proportional) {  // n_s at this position: the selector's counts include this token now
      const auto& counts = selector_->counts();
      bias.resize(counts.size());
      for (size_t j = 0; j < counts.size(); ++j) bias[j] = float(std::log(double(counts[j])));
      a.bias = bias.data();
      a.ldbias = int64_t(bias.size());
    }
    const uint8_t own = st.is_rep ? 0 : 1;
    if (all) {
      a.own_k = kk.data();
      a.own_v = vv.data();
      a.ldown = kd();
      a.own_mask = &own;
    }
    ops::attention(a);
    c_.times->attention += since(t0);
    t0 = Clock::now();
    std::vector<float> sub(static_cast<size_t>(d()));
    project_out(c_, o.data(), 1, sub.data());
    c_.times->projections += since(t0);
    if (st.is_rep) rep_out_.insert(rep_out_.end(), sub.begin(), sub.end());
    std::copy(sub.begin(), sub.end(), out);
    ++T_;
  }

  AttentionContext c_;
  AdaOptions o_;  // a copy: a sequence may outlive the factory that built it
  const AdaLayer* below_;
  AdaLayerTrace trace_;
  std::optional<select::IncrementalSelector> selector_;
  int64_t T_ = 0;
  std::vector<uint8_t> is_rep_;
  std::vector<int32_t> rep_index_;  // token -> index among representatives, or -1
  std::vector<int64_t> rep_pos_;
  std::vector<float> k_, v_;        // [r, kv_heads * head_dim]
  std::vector<float> rep_out_;      // [r, d_model] sub-layer outputs of the representatives
};

}  // namespace

AdaAttentionFactory::AdaAttentionFactory(AdaOptions o) : o_(o) {
  (void)o_.select.theta();  // validates tau
  if (o_.select.rule == select::Rule::all_earlier &&
      (o_.mode.mode == select::Mode::cascade || o_.mode.mode == select::Mode::capped))
    fail("--rule all-earlier works with --select full, inherit or random: the exact cascade validates against "
         "representatives only, which is the greedy rule (SPEC section 2)");
}

std::vector<std::unique_ptr<LayerAttention>> AdaAttentionFactory::make(const std::vector<AttentionContext>& layers) const {
  std::vector<std::unique_ptr<LayerAttention>> out;
  const AdaLayer* below = nullptr;
  for (const auto& c : layers) {
    auto l = std::make_unique<AdaLayer>(c, o_, below);
    below = l.get();
    out.push_back(std::move(l));
  }
  return out;
}

const AdaLayerTrace* ada_trace(const LayerAttention& layer) {
  const auto* a = dynamic_cast<const AdaLayer*>(&layer);
  return a ? &a->trace() : nullptr;
}

}  // namespace cascade
