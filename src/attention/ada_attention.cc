// ADA on the CPU: the selection (select/), the layer's AdaPlan, then the plan carried out through the
// same projections and attention core as exact attention (attention/projections.h, ops/attention.h).
#include "attention/ada_attention.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "attention/exact_attention.h"
#include "attention/projections.h"
#include "core/clock.h"
#include "core/error.h"
#include "ops/attention.h"
#include "select/incremental.h"

namespace cascade {

namespace {

using Clock = std::chrono::steady_clock;

// The proportional bias is built for this many query rows at a time (AdaPlan::bias_rows): a slab of
// 32 x nk floats, and the attention's rows are independent (its GEMMs stay as wide as the keys).
// The oracle's 64-token sequences cross a slab boundary.
constexpr int64_t kBiasRows = 32;

// Rows `rows` of src [*, width] into dst [rows.size(), width].
std::vector<float> gather(const float* src, int64_t width, const std::vector<int32_t>& rows) {
  std::vector<float> dst(rows.size() * size_t(width));
  for (size_t i = 0; i < rows.size(); ++i) std::copy(src + rows[i] * width, src + (rows[i] + 1) * width, &dst[i * size_t(width)]);
  return dst;
}

class AdaLayer : public LayerAttention {
 public:
  AdaLayer(const AttentionContext& c, const AdaOptions& o, const AdaLayer* below) : c_(c), o_(o), below_(below) {}

  void forward(const float* x, int64_t n, const int64_t* pos, float* out) override {
    if (!plan_) {
      prefill(x, n, pos, out);
      return;
    }
    for (int64_t i = 0; i < n; ++i) decode(x + i * d(), pos[i], out + i * d());
  }

  int64_t cache_bytes() const override { return int64_t((k_.size() + v_.size()) * sizeof(float)); }
  const AdaLayerTrace* trace() const override { return &trace_; }

 private:
  int64_t d() const { return c_.spec->d_model; }
  int64_t qd() const { return c_.spec->n_heads * c_.spec->head_dim; }
  int64_t kd() const { return c_.spec->n_kv_heads * c_.spec->head_dim; }
  bool all() const { return o_.queries == AdaQueries::all; }

  // Attention of nq queries q at positions qpos over the compressed cache.
  ops::AttentionArgs args(const float* q, int64_t nq, const int64_t* qpos, float* o) const {
    ops::AttentionArgs a;
    a.q = q;
    a.ldq = qd();
    a.nq = nq;
    a.k = k_.data();
    a.v = v_.data();
    a.ldkv = kd();
    a.nk = plan_->cache_size();
    a.heads = c_.spec->n_heads;
    a.kv_heads = c_.spec->n_kv_heads;
    a.head_dim = c_.spec->head_dim;
    a.q_pos = qpos;
    a.k_pos = plan_->cache_pos().data();
    a.keys_sorted = plan_->cache_sorted();
    a.scale = attention_scale(*c_.spec);
    a.out = o;
    a.ldo = qd();
    return a;
  }

  // What the selection reads for n tokens x at positions pos: x itself (hidden) or their keys after
  // rotary (keys, computed into buf); its width in *width.
  const float* features(const float* x, int64_t n, const int64_t* pos, std::vector<float>& buf, int64_t* width) const {
    *width = o_.features == AdaFeatures::keys ? kd() : d();
    if (o_.features == AdaFeatures::hidden) return x;
    buf.resize(size_t(n * kd()));
    project_keys(c_, x, n, pos, buf.data());
    return buf.data();
  }

  // Token t's output in reps mode: its representative's (copy) or the plan's mix of representatives'.
  void reconstruct(int32_t copy_from, const MixRow* mix, float* out) const {
    if (!mix) {
      const float* src = &rep_out_[size_t(copy_from) * size_t(d())];
      std::copy(src, src + d(), out);
      return;
    }
    std::fill(out, out + d(), 0.f);
    for (int k = 0; k < kMixTerms && mix->rep[k] >= 0; ++k) {
      const float* src = &rep_out_[size_t(mix->rep[k]) * size_t(d())];
      for (int64_t i = 0; i < d(); ++i) out[i] += mix->coef[k] * src[i];
    }
  }

  void prefill(const float* x, int64_t n, const int64_t* pos, float* out) {
    auto t0 = Clock::now();
    std::vector<float> buf;
    int64_t width = 0;
    const float* f = features(x, n, pos, buf, &width);
    const select::Features z = select::normalize(f, n, width, o_.select.similarity);
    const select::Selection* prev = below_ ? &below_->trace_.selection : nullptr;
    trace_.selection = select::run_layer(z, prev, o_.select, o_.mode, c_.layer);
    selector_.emplace(z, trace_.selection, o_.select);
    plan_.emplace(trace_.selection, pos, n, o_.plan(), &z);
    c_.times->selection += seconds_since(t0);
    if (o_.compare_full) trace_.jaccard_vs_full = select::jaccard(trace_.selection.reps, select::run_full(z, o_.select).reps);
    const AdaPlan& p = *plan_;

    // Q/K/V of the query rows at their positions; the prefill's keys are some of those rows.
    t0 = Clock::now();
    const int64_t rows = int64_t(p.query_tokens().size());
    std::vector<float> xr;
    if (!all()) xr = gather(x, d(), p.query_tokens());
    std::vector<float> q(size_t(rows * qd())), kk(size_t(rows * kd())), vv(size_t(rows * kd()));
    project_qkv(c_, all() ? x : xr.data(), rows, p.query_pos().data(), q.data(), kk.data(), vv.data());
    const std::vector<float> keys_k = gather(kk.data(), kd(), p.key_rows()), keys_v = gather(vv.data(), kd(), p.key_rows());
    c_.times->projections += seconds_since(t0);

    t0 = Clock::now();
    std::vector<float> o(size_t(rows * qd()));
    ops::AttentionArgs a = args(q.data(), rows, p.query_pos().data(), o.data());
    a.k = keys_k.data();
    a.v = keys_v.data();
    a.nk = p.nk();
    a.k_pos = p.key_pos().data();
    a.keys_sorted = true;
    a.window = p.key_window();
    if (!p.key_pinned().empty()) a.key_pinned = p.key_pinned().data();
    if (!p.own_key().empty()) {
      a.own_k = kk.data();
      a.own_v = vv.data();
      a.ldown = kd();
      a.own_mask = p.own_key().data();
    }
    if (p.has_bias()) {  // a block of query rows at a time: with a window the whole bias is T x T
      std::vector<float> bias;
      for (int64_t r0 = 0; r0 < rows; r0 += kBiasRows) {
        ops::AttentionArgs b = a;
        b.nq = std::min(kBiasRows, rows - r0);
        b.q = q.data() + r0 * qd();
        b.q_pos = p.query_pos().data() + r0;
        b.out = o.data() + r0 * qd();
        if (b.own_mask) {
          b.own_k = kk.data() + r0 * kd();
          b.own_v = vv.data() + r0 * kd();
          b.own_mask += r0;
        }
        bias.resize(size_t(b.nq * p.nk()));
        p.bias_rows(r0, b.nq, bias.data());
        b.bias = bias.data();
        b.ldbias = p.nk();
        ops::attention(b);
      }
    } else {
      ops::attention(a);
    }
    c_.times->attention += seconds_since(t0);
    k_ = gather(kk.data(), kd(), p.cache_rows());  // the compressed cache decoding continues from
    v_ = gather(vv.data(), kd(), p.cache_rows());

    t0 = Clock::now();
    std::vector<float> sub(size_t(rows * d()));
    project_out(c_, o.data(), rows, sub.data());
    c_.times->projections += seconds_since(t0);
    if (all()) {
      std::copy(sub.begin(), sub.end(), out);
    } else {  // the representatives' outputs are kept: a later non-representative copies or mixes them
      rep_out_ = std::move(sub);
      for (int64_t t = 0; t < n; ++t)
        reconstruct(p.mixes() ? -1 : p.copy_from()[size_t(t)], p.mixes() ? &p.mix()[size_t(t)] : nullptr, out + t * d());
    }
    plan_->end_prefill();
    if (o_.measure_error) trace_.attention_error = error_against_exact(x, n, pos, out);
  }

  // ||O_ada - O_full||_F / ||O_full||_F with exact attention run on the same layer input x.
  double error_against_exact(const float* x, int64_t n, const int64_t* pos, const float* ada) const {
    std::vector<float> q(size_t(n * qd())), kk(size_t(n * kd())), vv(size_t(n * kd())), o(size_t(n * qd())),
        full(size_t(n * d()));
    project_qkv(c_, x, n, pos, q.data(), kk.data(), vv.data());
    ops::AttentionArgs a = args(q.data(), n, pos, o.data());
    a.k = kk.data();
    a.v = vv.data();
    a.nk = n;
    a.k_pos = pos;
    a.keys_sorted = true;
    a.bias = nullptr;
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
    const int64_t t = trace_.selection.T();
    std::vector<float> buf;
    int64_t width = 0;
    const float* f = features(x, 1, &p, buf, &width);
    select::IncrementalSelector::Step st;
    if (o_.mode.mode == select::Mode::inherit && below_) {
      const auto& below_parent = below_->trace_.selection.parent;
      st = selector_->step_imposed(f, below_parent[size_t(t)] == t);
    } else {
      st = selector_->step(f);
    }
    c_.times->selection += seconds_since(t0);
    extend_selection(trace_.selection, st);
    ++trace_.decode_tokens;
    if (st.is_rep) ++trace_.decode_reps;
    std::vector<double> z;
    if (plan_->mixes()) {  // the plan's least squares read the token's normalised features
      z.resize(size_t(width));
      select::normalize_row(f, width, o_.select.similarity, z.data());
    }
    const AdaPlan::Step s = plan_->decode(st, p, z.empty() ? nullptr : z.data());
    if (!s.attend) {  // the parent's sub-layer output, or the mix of representatives'
      reconstruct(s.copy_from, s.copy_from < 0 ? &s.mix : nullptr, out);
      return;
    }
    t0 = Clock::now();
    std::vector<float> q(static_cast<size_t>(qd())), kk(static_cast<size_t>(kd())), vv(static_cast<size_t>(kd()));
    project_qkv(c_, x, 1, &p, q.data(), kk.data(), vv.data());
    if (s.append) {
      k_.insert(k_.end(), kk.begin(), kk.end());
      v_.insert(v_.end(), vv.begin(), vv.end());
    }
    c_.times->projections += seconds_since(t0);
    t0 = Clock::now();
    std::vector<float> o(static_cast<size_t>(qd()));
    ops::AttentionArgs a = args(q.data(), 1, &p, o.data());
    if (!s.bias.empty()) {
      a.bias = s.bias.data();
      a.ldbias = int64_t(s.bias.size());
    }
    const uint8_t own = 1;
    if (s.own_key) {
      a.own_k = kk.data();
      a.own_v = vv.data();
      a.ldown = kd();
      a.own_mask = &own;
    }
    ops::attention(a);
    c_.times->attention += seconds_since(t0);
    if (s.ring_write) {  // the window's ring slot takes this token (the plan updates its position next step)
      std::copy(kk.begin(), kk.end(), k_.begin() + s.ring_slot * kd());
      std::copy(vv.begin(), vv.end(), v_.begin() + s.ring_slot * kd());
    }
    t0 = Clock::now();
    std::vector<float> sub(static_cast<size_t>(d()));
    project_out(c_, o.data(), 1, sub.data());
    c_.times->projections += seconds_since(t0);
    if (s.append && !all()) rep_out_.insert(rep_out_.end(), sub.begin(), sub.end());
    std::copy(sub.begin(), sub.end(), out);
  }

  AttentionContext c_;
  AdaOptions o_;  // a copy: a sequence may outlive the factory that built it
  const AdaLayer* below_;
  AdaLayerTrace trace_;
  std::optional<select::IncrementalSelector> selector_;
  std::optional<AdaPlan> plan_;     // made by the prefill, extended while decoding
  std::vector<float> k_, v_;        // [r, kv_heads * head_dim] the compressed cache
  std::vector<float> rep_out_;      // queries=reps: [r, d_model] the representatives' sub-layer outputs
};

// A dense layer (--ada-dense-layers): exact attention, traced as a selection that keeps every token.
class AdaDenseLayer : public LayerAttention {
 public:
  AdaDenseLayer(std::unique_ptr<LayerAttention> exact, bool measured) : exact_(std::move(exact)) {
    if (measured) trace_.attention_error = 0;  // it is exact attention
  }
  void forward(const float* x, int64_t n, const int64_t* pos, float* out) override {
    exact_->forward(x, n, pos, out);
    extend_dense(trace_, n);
  }
  int64_t cache_bytes() const override { return exact_->cache_bytes(); }
  const AdaLayerTrace* trace() const override { return &trace_; }

 private:
  std::unique_ptr<LayerAttention> exact_;
  AdaLayerTrace trace_;
};

}  // namespace

void extend_dense(AdaLayerTrace& trace, int64_t n) {
  const bool decoding = trace.selection.T() > 0;
  for (int64_t i = 0; i < n; ++i) extend_selection(trace.selection, {true, int32_t(trace.selection.T())});
  if (decoding) trace.decode_tokens += n, trace.decode_reps += n;
}

AdaFeatures parse_ada_features(const std::string& text) {
  if (text == "hidden") return AdaFeatures::hidden;
  if (text == "keys") return AdaFeatures::keys;
  fail("unknown ADA features '", text, "' (expected hidden or keys)");
}

AdaAttentionFactory::AdaAttentionFactory(AdaOptions o) : o_(o) {
  (void)o_.select.theta();  // validates tau
  if (o_.sinks < 0 || o_.window < 0)
    fail("--ada-sinks and --ada-window must be non-negative, got ", o_.sinks, " and ", o_.window);
  if (o_.queries == AdaQueries::all && o_.reconstruct == AdaReconstruct::lstsq)
    fail("--ada-reconstruct lstsq is for --ada-queries reps (with all, every token attends and nothing is reconstructed)");
  if (o_.queries == AdaQueries::reps && (o_.sinks > 0 || o_.window > 0))
    fail("--ada-sinks and --ada-window are for --ada-queries all (with reps only representatives attend, and the"
         " others copy them)");
  // span needs only the inner products with earlier representatives, which the exact cascade has
  // (select/span_basis.h), so every mode takes it; all-earlier needs every earlier token.
  if (o_.select.rule == select::Rule::all_earlier &&
      (o_.mode.mode == select::Mode::cascade || o_.mode.mode == select::Mode::capped))
    fail("--rule all-earlier works with --select full, inherit or random: the exact cascade validates against "
         "representatives only, which the greedy and span rules do (SPEC section 2)");
  if (o_.dense_layers < 0) fail("--ada-dense-layers must be >= 0, got ", o_.dense_layers);
}

void AdaAttentionFactory::check_gpu() const {
  const char* cpu = ": use --device cpu for it";
  if (o_.mode.mode != select::Mode::full && o_.mode.mode != select::Mode::cascade)
    fail("--select ", select::to_string(o_.mode), " is not yet on the GPU (full and cascade are)", cpu);
  if (o_.select.rule == select::Rule::all_earlier) fail("--rule all-earlier is not yet on the GPU (greedy and span are)", cpu);
}

std::vector<std::unique_ptr<LayerAttention>> AdaAttentionFactory::make(const std::vector<AttentionContext>& layers) const {
  std::vector<std::unique_ptr<LayerAttention>> out;
  const size_t dense = size_t(std::min<int64_t>(o_.dense_layers, int64_t(layers.size())));
  auto exact = ExactAttentionFactory().make({layers.begin(), layers.begin() + ptrdiff_t(dense)});
  for (auto& e : exact) out.push_back(std::make_unique<AdaDenseLayer>(std::move(e), o_.measure_error));
  const AdaLayer* below = nullptr;  // layer `dense` runs the full selection
  for (size_t l = dense; l < layers.size(); ++l) {
    auto a = std::make_unique<AdaLayer>(layers[l], o_, below);
    below = a.get();
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace cascade
