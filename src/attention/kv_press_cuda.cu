// The peer KV-cache methods on the GPU: the twin of kv_press.cc. Each KV head keeps its own cache
// (K, V and positions on the device); the context's exact prefill fills it, then the scores of
// attention/kv_press_scores.h are computed from the context's Q and K with their attention weights on
// the device in float64 (kv_press_scores_cuda.cu: only per-key sums, or knorm's K, come to the host)
// and the kept entries are gathered on the device. Later tokens attend per KV head (its group of
// query heads over its own entries) with the attention kernels. ada-kv likewise: the device's selection
// (select/gpu_selection.h) of the context's features (the layer's input, or the keys) chooses; under
// the span rule or another mode the features come back to the host once and the CPU's (ada_kv_choose).
#include <algorithm>
#include <chrono>
#include <numeric>
#include <vector>

#include "attention/gpu_attention.cuh"
#include "attention/kv_press.h"
#include "attention/kv_press_scores_cuda.cuh"
#include "attention/projections.h"
#include "cuda/pool_buffer.h"
#include "select/gpu_selection.h"

namespace cascade {

namespace {

using Clock = std::chrono::steady_clock;

struct GpuHeadCache {
  cuda::PoolBytes k, v, pos;  // [cap, head_dim] in the compute dtype, [cap] int64
  int64_t n = 0, cap = 0;
};

// Rows [rows, ld] of a device buffer in dtype t -> their first `width` columns in float32 on the host.
std::vector<float> host_rows(DType t, const void* src, int64_t rows, int64_t width, int64_t ld, cudaStream_t st) {
  cuda::PoolBytes f32(size_t(rows * ld) * 4, st);
  ops::gpu::to_f32(t, src, reinterpret_cast<float*>(f32.data()), rows * ld, st);
  std::vector<float> all(size_t(rows * ld)), out(size_t(rows * width));
  CASCADE_CUDA_CHECK(cudaMemcpyAsync(all.data(), f32.data(), all.size() * 4, cudaMemcpyDeviceToHost, st));
  CASCADE_CUDA_CHECK(cudaStreamSynchronize(st));
  for (int64_t i = 0; i < rows; ++i) std::copy_n(&all[size_t(i * ld)], width, &out[size_t(i * width)]);
  return out;
}

class KvPressGpuLayer : public GpuLayerAttention {
 public:
  // below: as KvPressAttention's (ada-kv's layer whose selection the cascade continues).
  KvPressGpuLayer(const GpuAttentionContext& c, const KvPressOptions& o, const KvPressGpuLayer* below)
      : c_(c), o_(o), below_(below), rotary_(c.spec->rotary_embedding()), heads_(size_t(c.spec->n_kv_heads)) {}

  void forward(const GpuPass& p, const void* x, void* out) override {
    gpu_project_qkv(c_, x, p.n, p.pos, p.qkv, p.st);
    append(p);
    attend(p);
    if (!compressed_) compress(p, x);
    gpu_project_out(c_, p.o, p.n, out, p.st);
  }

  int64_t cache_bytes() const override {
    int64_t rows = 0;
    for (const GpuHeadCache& h : heads_) rows += h.n;
    return 2 * rows * c_.spec->head_dim * int64_t(dtype_size(c_.dtype));
  }

 private:
  int64_t hd() const { return c_.spec->head_dim; }
  size_t row_bytes() const { return size_t(hd()) * dtype_size(c_.dtype); }

  // Room for `need` entries in head h's cache, keeping its n.
  void reserve(GpuHeadCache& h, int64_t need, cudaStream_t st) {
    if (need <= h.cap) return;
    const int64_t cap = cuda::grown_capacity(h.cap, need, 64);
    cuda::PoolBytes k(size_t(cap) * row_bytes(), st), v(size_t(cap) * row_bytes(), st), pos(size_t(cap) * 8, st);
    if (h.n) {
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(k.data(), h.k.data(), size_t(h.n) * row_bytes(), cudaMemcpyDeviceToDevice, st));
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(v.data(), h.v.data(), size_t(h.n) * row_bytes(), cudaMemcpyDeviceToDevice, st));
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(pos.data(), h.pos.data(), size_t(h.n) * 8, cudaMemcpyDeviceToDevice, st));
    }
    h.k = std::move(k);
    h.v = std::move(v);
    h.pos = std::move(pos);
    h.cap = cap;
  }

  // The pass's K and V (in p.qkv) and positions appended to every head's cache.
  void append(const GpuPass& p) {
    const size_t es = dtype_size(c_.dtype), ld = size_t(c_.qkv_ld()) * es;
    for (int64_t g = 0; g < int64_t(heads_.size()); ++g) {
      GpuHeadCache& h = heads_[size_t(g)];
      reserve(h, h.n + p.n, p.st);
      const void* k = at(p.qkv, c_.qd() + g * hd(), c_.dtype);
      const void* v = at(p.qkv, c_.qd() + c_.kd() + g * hd(), c_.dtype);
      CASCADE_CUDA_CHECK(cudaMemcpy2DAsync(h.k.data() + size_t(h.n) * row_bytes(), row_bytes(), k, ld, row_bytes(),
                                           size_t(p.n), cudaMemcpyDeviceToDevice, p.st));
      CASCADE_CUDA_CHECK(cudaMemcpy2DAsync(h.v.data() + size_t(h.n) * row_bytes(), row_bytes(), v, ld, row_bytes(),
                                           size_t(p.n), cudaMemcpyDeviceToDevice, p.st));
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(h.pos.data() + size_t(h.n) * 8, p.pos, size_t(p.n) * 8, cudaMemcpyDeviceToDevice, p.st));
      h.n += p.n;
    }
  }

  // Each KV head with its group of query heads, over that head's own entries.
  void attend(const GpuPass& p) {
    const int64_t group = c_.spec->n_heads / c_.spec->n_kv_heads;
    for (int64_t g = 0; g < int64_t(heads_.size()); ++g) {
      const GpuHeadCache& h = heads_[size_t(g)];
      ops::AttentionArgs a = gpu_attention_args(c_, at(p.qkv, g * group * hd(), c_.dtype), c_.qkv_ld(), p.n, p.pos,
                                                h.k.data(), h.v.data(), h.n, reinterpret_cast<const int64_t*>(h.pos.data()),
                                                at(p.o, g * group * hd(), c_.dtype));
      a.heads = group;
      a.kv_heads = 1;
      a.ldkv = hd();
      // The pass's tokens come after every kept entry: causal in index space. Stated where one shape
      // serves every layer and head (a cuDNN plan each): the context, and a peer's kept count.
      a.causal_by_index = !compressed_ || !o_.ada_kv;
      p.timer->run(a, p.st);
    }
  }

  // Per KV head, the kept entries of the context (the pass p, its input x): the peers' scores of the
  // context's Q and K, or ada-kv's selection of its features, brought to the host once.
  std::vector<std::vector<int64_t>> choose(const GpuPass& p, const void* x) {
    const ArchSpec& a = *c_.spec;
    const int64_t n = p.n, ld = c_.qkv_ld(), qd = c_.qd(), kd = c_.kd();
    std::vector<int64_t> all(static_cast<size_t>(n));
    std::iota(all.begin(), all.end(), int64_t(0));
    if (o_.ada_kv) {
      const AdaKvOptions& ak = *o_.ada_kv;
      if (c_.layer < ak.ada.dense_layers) return std::vector<std::vector<int64_t>>(heads_.size(), all);
      const bool keys = ak.ada.features == AdaFeatures::keys;
      const int64_t width = keys ? kd : a.d_model;
      const select::Selection* below = below_ ? &below_->selection_ : nullptr;
      if (select_on_device(below)) {
        selection_ = device_selection(p, x, width, below);
        return std::vector<std::vector<int64_t>>(heads_.size(), ada_kv_kept(ak, selection_, n));
      }
      const std::vector<float> f =
          keys ? host_rows(c_.dtype, at(p.qkv, qd, c_.dtype), n, kd, ld, p.st) : host_rows(c_.dtype, x, n, width, width, p.st);
      AdaKvChoice ch = ada_kv_choose(ak, f.data(), n, width, below, c_.layer);
      selection_ = std::move(ch.selection);
      return std::vector<std::vector<int64_t>>(heads_.size(), ch.kept);
    }
    const int64_t kept = press::kept_count(o_.budget, n);
    if (kept == n) return std::vector<std::vector<int64_t>>(heads_.size(), all);  // nothing scored (kvpress returns early)
    cuda::PoolBytes f32(size_t(n * ld) * 4, p.st);
    const float* qkv_f32 = reinterpret_cast<const float*>(f32.data());
    ops::gpu::to_f32(c_.dtype, p.qkv, reinterpret_cast<float*>(f32.data()), n * ld, p.st);
    const press::Context ctx{n, a.n_heads, a.n_kv_heads, hd(), nullptr, nullptr, double(attention_scale(a)), nullptr,
                             &rotary_};
    const std::vector<double> scores = press::scores_device(
        o_.method, {qkv_f32, ld, qkv_f32 + qd, ld, qkv_f32 + qd + kd, ld}, ctx, kept, o_.params, p.st);
    return press::top_positions(scores, a.n_kv_heads, n, kept);
  }

  // ada-kv's selection runs where ADA's GPU layers run theirs (the greedy rule, the full or the cascade
  // mode: select/gpu_selection.h, in the options' Gram precision, whose certified decisions are the
  // float64 selection's); the span rule and the other modes on the host, as the CPU's twin.
  bool select_on_device(const select::Selection* below) const {
    const AdaOptions& ada = o_.ada_kv->ada;
    return ada.select.rule == select::Rule::greedy &&
           (!below || ada.mode.mode == select::Mode::full || ada.mode.mode == select::Mode::cascade);
  }

  // The selection of the context's features (the layer's input x, or the keys after rotary in p.qkv)
  // on the device: only the selection itself comes to the host.
  select::Selection device_selection(const GpuPass& p, const void* x, int64_t width, const select::Selection* below) {
    const AdaOptions& ada = o_.ada_kv->ada;
    const int64_t n = p.n;
    cuda::PoolBytes f32(size_t(n * width) * 4, p.st), keys;  // stream-ordered frees
    const void* src = x;
    if (ada.features == AdaFeatures::keys) {
      keys.reserve(size_t(n * width) * dtype_size(c_.dtype), p.st);
      gpu_pack_keys(c_, p.qkv, n, keys.data(), p.st);
      src = keys.data();
    }
    float* f = reinterpret_cast<float*>(f32.data());
    ops::gpu::to_f32(c_.dtype, src, f, n * width, p.st);
    const select::gpu::DeviceFeatures z =
        select::gpu::normalize_device(f, n, width, ada.select.similarity, ada.gram_precision);
    return select::gpu::run_layer(z, below, ada.select, ada.mode.mode, {ada.gram_precision}).sel;
  }

  // After the context's exact prefill (each head's cache holds exactly its n entries, positions 0..n-1):
  // each head's kept entries gathered.
  void compress(const GpuPass& p, const void* x) {
    compressed_ = true;
    const auto t0 = Clock::now();
    const auto keep = choose(p, x);
    for (size_t g = 0; g < heads_.size(); ++g) {
      const int64_t kept = int64_t(keep[g].size());
      if (kept == p.n) continue;
      GpuHeadCache& h = heads_[g];
      const std::vector<int32_t> rows(keep[g].begin(), keep[g].end());
      cuda::PoolBytes ids(std::max<size_t>(1, rows.size()) * 4, p.st);
      if (!rows.empty())
        CASCADE_CUDA_CHECK(cudaMemcpyAsync(ids.data(), rows.data(), rows.size() * 4, cudaMemcpyHostToDevice, p.st));
      GpuHeadCache kept_cache;
      reserve(kept_cache, std::max<int64_t>(1, kept), p.st);
      if (kept) {
        const int32_t* idp = reinterpret_cast<const int32_t*>(ids.data());
        ops::gpu::gather_rows(c_.dtype, h.k.data(), hd(), idp, kept, hd(), kept_cache.k.data(), hd(), p.st);
        ops::gpu::gather_rows(c_.dtype, h.v.data(), hd(), idp, kept, hd(), kept_cache.v.data(), hd(), p.st);
        // Positions 0..n-1: a kept entry's position is its index.
        CASCADE_CUDA_CHECK(cudaMemcpyAsync(kept_cache.pos.data(), keep[g].data(), size_t(kept) * 8, cudaMemcpyHostToDevice,
                                           p.st));
      }
      kept_cache.n = kept;
      h = std::move(kept_cache);
    }
    c_.times->selection += std::chrono::duration<double>(Clock::now() - t0).count();
  }

  GpuAttentionContext c_;
  KvPressOptions o_;
  const KvPressGpuLayer* below_;
  ops::Rotary rotary_;  // the host's twin of the layer's rotary (expected-attention undoes Q's on the host)
  select::Selection selection_;  // ada-kv: this layer's selection of the context
  std::vector<GpuHeadCache> heads_;
  bool compressed_ = false;
};

}  // namespace

std::vector<std::unique_ptr<GpuLayerAttention>> KvPressFactory::make_gpu(const std::vector<GpuAttentionContext>& layers) const {
  return chain<GpuLayerAttention, KvPressGpuLayer>(layers);
}

}  // namespace cascade
