#include "attention/kv_press.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "attention/projections.h"
#include "core/clock.h"
#include "core/error.h"
#include "ops/attention.h"

namespace cascade {

namespace {

using Clock = std::chrono::steady_clock;

// One KV head's cache: its own positions, since heads keep different context entries.
struct HeadCache {
  std::vector<float> k, v;  // [entries, head_dim]
  std::vector<int64_t> pos;
};

class KvPressAttention : public LayerAttention {
 public:
  // below: ada-kv's layer under this one whose selection the cascade continues (null at layer 0 and
  // after dense layers, and for the peers).
  KvPressAttention(const AttentionContext& c, const KvPressOptions& o, const KvPressAttention* below)
      : c_(c), o_(o), below_(below), heads_(size_t(c.spec->n_kv_heads)) {}

  void forward(const float* x, int64_t n, const int64_t* pos, float* out) override {
    const ArchSpec& a = *c_.spec;
    const int64_t qd = a.n_heads * a.head_dim, kd = a.n_kv_heads * a.head_dim;
    auto t0 = Clock::now();
    std::vector<float> q(size_t(n * qd)), k(size_t(n * kd)), v(size_t(n * kd));
    project_qkv(c_, x, n, pos, q.data(), k.data(), v.data());
    append(k.data(), v.data(), n, pos);
    c_.times->projections += seconds_since(t0);

    t0 = Clock::now();
    std::vector<float> o(size_t(n * qd));
    attend(q.data(), n, pos, o.data());
    c_.times->attention += seconds_since(t0);

    if (!compressed_) {
      t0 = Clock::now();
      compress(x, q.data(), k.data(), v.data(), n);
      c_.times->selection += seconds_since(t0);  // choosing the kept entries is this method's selection
    }

    t0 = Clock::now();
    project_out(c_, o.data(), n, out);
    c_.times->projections += seconds_since(t0);
  }

  int64_t cache_bytes() const override {
    int64_t floats = 0;
    for (const HeadCache& h : heads_) floats += int64_t(h.k.size() + h.v.size());
    return floats * int64_t(sizeof(float));
  }

  const KvPressTrace& press_trace() const { return trace_; }

 private:
  void append(const float* k, const float* v, int64_t n, const int64_t* pos) {
    const int64_t hd = c_.spec->head_dim, kd = c_.spec->n_kv_heads * hd;
    for (int64_t g = 0; g < int64_t(heads_.size()); ++g) {
      HeadCache& h = heads_[size_t(g)];
      for (int64_t i = 0; i < n; ++i) {
        h.k.insert(h.k.end(), k + i * kd + g * hd, k + i * kd + (g + 1) * hd);
        h.v.insert(h.v.end(), v + i * kd + g * hd, v + i * kd + (g + 1) * hd);
      }
      h.pos.insert(h.pos.end(), pos, pos + n);
    }
  }

  // Each KV head with its group of query heads, over that head's own entries.
  void attend(const float* q, int64_t n, const int64_t* pos, float* o) const {
    const ArchSpec& a = *c_.spec;
    const int64_t hd = a.head_dim, qd = a.n_heads * hd, group = a.n_heads / a.n_kv_heads;
    for (int64_t g = 0; g < int64_t(heads_.size()); ++g) {
      const HeadCache& h = heads_[size_t(g)];
      ops::AttentionArgs args;
      args.q = q + g * group * hd;
      args.ldq = qd;
      args.nq = n;
      args.k = h.k.data();
      args.v = h.v.data();
      args.ldkv = hd;
      args.nk = int64_t(h.pos.size());
      args.heads = group;
      args.kv_heads = 1;
      args.head_dim = hd;
      args.q_pos = pos;
      args.k_pos = h.pos.data();
      args.scale = attention_scale(a);
      args.out = o + g * group * hd;
      args.ldo = qd;
      ops::attention(args);
    }
  }

  // Per KV head, the kept entries of the context x (its Q and K after rotary, its V): the peers'
  // scores, or ada-kv's selection. A budget that keeps everything scores nothing (kvpress returns
  // early at compression_ratio 0), so it never meets the methods' minimum context lengths.
  std::vector<std::vector<int64_t>> choose(const float* x, const float* q, const float* k, const float* v, int64_t n) {
    const ArchSpec& a = *c_.spec;
    std::vector<int64_t> all(static_cast<size_t>(n));
    std::iota(all.begin(), all.end(), int64_t(0));
    if (o_.ada_kv) {
      if (c_.layer < o_.ada_kv->ada.dense_layers) return std::vector<std::vector<int64_t>>(heads_.size(), all);
      const bool keys = o_.ada_kv->ada.features == AdaFeatures::keys;
      AdaKvChoice ch = ada_kv_choose(*o_.ada_kv, keys ? k : x, n, keys ? a.n_kv_heads * a.head_dim : a.d_model,
                                     below_ ? &below_->trace_.selection : nullptr, c_.layer);
      trace_.selection = std::move(ch.selection);
      return std::vector<std::vector<int64_t>>(heads_.size(), ch.kept);
    }
    const int64_t kept = press::kept_count(o_.budget, n);
    if (kept == n) return std::vector<std::vector<int64_t>>(heads_.size(), all);
    const press::Context ctx{n, a.n_heads, a.n_kv_heads, a.head_dim, q, k, double(attention_scale(a)), v, c_.rotary};
    return press::top_positions(press::scores(o_.method, ctx, kept, o_.params), a.n_kv_heads, n, kept);
  }

  // After the context's exact prefill (the caches hold exactly its n entries, in order, at positions
  // 0..n-1): keep each KV head's chosen entries.
  void compress(const float* x, const float* q, const float* k, const float* v, int64_t n) {
    compressed_ = true;
    const int64_t hd = c_.spec->head_dim;
    trace_.context = n;
    trace_.kept = choose(x, q, k, v, n);
    for (size_t g = 0; g < heads_.size(); ++g) {
      HeadCache& h = heads_[g];
      if (int64_t(trace_.kept[g].size()) == n) continue;
      HeadCache kept_cache;
      for (int64_t j : trace_.kept[g]) {
        kept_cache.k.insert(kept_cache.k.end(), h.k.begin() + j * hd, h.k.begin() + (j + 1) * hd);
        kept_cache.v.insert(kept_cache.v.end(), h.v.begin() + j * hd, h.v.begin() + (j + 1) * hd);
        kept_cache.pos.push_back(h.pos[size_t(j)]);
      }
      h = std::move(kept_cache);
    }
  }

  AttentionContext c_;
  KvPressOptions o_;
  const KvPressAttention* below_;
  std::vector<HeadCache> heads_;
  bool compressed_ = false;
  KvPressTrace trace_;
};

}  // namespace

double KvPressTrace::kept_fraction() const {
  if (context == 0 || kept.empty()) return 1;
  double sum = 0;
  for (const auto& h : kept) sum += double(h.size()) / double(context);
  return sum / double(kept.size());
}

AdaKvChoice ada_kv_choose(const AdaKvOptions& o, const float* f, int64_t n, int64_t width,
                          const select::Selection* below, int layer) {
  AdaKvChoice ch;
  const select::Features z = select::normalize(f, n, width, o.ada.select.similarity);
  ch.selection = select::run_layer(z, below, o.ada.select, o.ada.mode, layer);
  ch.kept = ada_kv_kept(o, ch.selection, n);
  return ch;
}

std::vector<int64_t> ada_kv_kept(const AdaKvOptions& o, const select::Selection& selection, int64_t n) {
  std::vector<uint8_t> keep(size_t(n), 0);
  for (int32_t s : selection.reps) keep[size_t(s)] = 1;
  for (int64_t t = 0; t < std::min(o.sinks, n); ++t) keep[size_t(t)] = 1;
  for (int64_t t = std::max<int64_t>(0, n - o.window); t < n; ++t) keep[size_t(t)] = 1;
  std::vector<int64_t> kept;
  for (int64_t t = 0; t < n; ++t)
    if (keep[size_t(t)]) kept.push_back(t);
  return kept;
}

KvPressFactory::KvPressFactory(KvPressOptions o) : o_(o) {
  if (!(o_.budget > 0 && o_.budget <= 1)) fail("--kv-budget must be in (0, 1], got ", o_.budget);
  if (o_.ada_kv) {
    (void)AdaAttentionFactory(o_.ada_kv->ada);  // ADA's own checks of the selection options
    if (o_.ada_kv->sinks < 0 || o_.ada_kv->window < 0)
      fail("--ada-sinks and --ada-window must be >= 0, got ", o_.ada_kv->sinks, " and ", o_.ada_kv->window);
  }
}

std::vector<std::unique_ptr<LayerAttention>> KvPressFactory::make(const std::vector<AttentionContext>& layers) const {
  return chain<LayerAttention, KvPressAttention>(layers);
}

const KvPressTrace* kv_press_trace(const LayerAttention* layer) {
  const auto* press = dynamic_cast<const KvPressAttention*>(layer);
  return press ? &press->press_trace() : nullptr;
}

}  // namespace cascade
