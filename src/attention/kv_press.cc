#include "attention/kv_press.h"

#include <chrono>
#include <cmath>

#include "attention/projections.h"
#include "core/error.h"
#include "ops/attention.h"

namespace cascade {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// One KV head's cache: its own positions, since heads keep different context entries.
struct HeadCache {
  std::vector<float> k, v;  // [entries, head_dim]
  std::vector<int64_t> pos;
};

class KvPressAttention : public LayerAttention {
 public:
  KvPressAttention(const AttentionContext& c, const KvPressOptions& o)
      : c_(c), o_(o), heads_(size_t(c.spec->n_kv_heads)) {}

  void forward(const float* x, int64_t n, const int64_t* pos, float* out) override {
    const ArchSpec& a = *c_.spec;
    const int64_t qd = a.n_heads * a.head_dim, kd = a.n_kv_heads * a.head_dim;
    auto t0 = Clock::now();
    std::vector<float> q(size_t(n * qd)), k(size_t(n * kd)), v(size_t(n * kd));
    project_qkv(c_, x, n, pos, q.data(), k.data(), v.data());
    append(k.data(), v.data(), n, pos);
    c_.times->projections += since(t0);

    t0 = Clock::now();
    std::vector<float> o(size_t(n * qd));
    attend(q.data(), n, pos, o.data());
    c_.times->attention += since(t0);

    if (!compressed_) {
      t0 = Clock::now();
      compress(q.data(), k.data(), n);
      c_.times->selection += since(t0);  // choosing the kept entries is this method's selection
    }

    t0 = Clock::now();
    project_out(c_, o.data(), n, out);
    c_.times->projections += since(t0);
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

  // After the context's exact prefill (the caches hold exactly its n entries, in order): keep each
  // KV head's chosen entries. A budget that keeps everything scores nothing (kvpress returns early
  // at compression_ratio 0), so it never meets the methods' minimum context lengths.
  void compress(const float* q, const float* k, int64_t n) {
    compressed_ = true;
    const ArchSpec& a = *c_.spec;
    const int64_t hd = a.head_dim, kept = press::kept_count(o_.budget, n);
    trace_.context = n;
    if (kept == n) {
      trace_.kept.assign(heads_.size(), heads_.front().pos);
      return;
    }
    const press::Context ctx{n, a.n_heads, a.n_kv_heads, hd, q, k, double(attention_scale(a))};
    trace_.kept = press::top_positions(press::scores(o_.method, ctx, kept, o_.params), a.n_kv_heads, n, kept);
    for (size_t g = 0; g < heads_.size(); ++g) {
      HeadCache& h = heads_[g];
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

KvPressFactory::KvPressFactory(KvPressOptions o) : o_(o) {
  if (!(o_.budget > 0 && o_.budget <= 1)) fail("--kv-budget must be in (0, 1], got ", o_.budget);
}

std::vector<std::unique_ptr<LayerAttention>> KvPressFactory::make(const std::vector<AttentionContext>& layers) const {
  std::vector<std::unique_ptr<LayerAttention>> out;
  for (const auto& c : layers) out.push_back(std::make_unique<KvPressAttention>(c, o_));
  return out;
}

const KvPressTrace* kv_press_trace(const LayerAttention* layer) {
  const auto* press = dynamic_cast<const KvPressAttention*>(layer);
  return press ? &press->press_trace() : nullptr;
}

}  // namespace cascade
