// ADA on the GPU: the twin of ada_attention.cc. The selection runs on the device
// (select/gpu_selection.h: full at layer 0 and for --select full, the exact cascade after); the
// layer's AdaPlan (attention/ada_plan.h, computed on the host from the selection, exactly as the CPU
// computes it) is uploaded and carried out: the query rows gathered (representatives, or every
// token), Q/K/V at their positions, the representatives' K/V gathered into the compressed cache,
// the attention (own key and bias where the plan says), the output projection, and with
// queries=reps every token copying its parent's output.
// Decoding: the new token decided on the device (select/gpu_incremental.h), the plan's step
// carried out on the compressed cache.
// Variants (SPEC 6): keys features are the layer's K after rotary (projected for every token first),
// normalised on the device like X_l; the span rule downloads the normalised features and runs the
// CPU's selection (select/span_basis.h is sequential in token order) and decides a decoded token
// with the CPU's incremental selector on its downloaded features; dense layers are the exact GPU
// layers, traced as keeping every token.
#include <algorithm>
#include <chrono>
#include <memory>
#include <numeric>
#include <optional>
#include <vector>

#include "attention/ada_attention.h"
#include "attention/exact_attention.h"
#include "attention/gpu_attention.cuh"
#include "core/error.h"
#include "cuda/pool_buffer.h"
#include "select/gpu_incremental.h"
#include "select/gpu_selection.h"

namespace cascade {

namespace {

// Host vector -> device buffer (grown as needed), in stream order.
template <typename T>
const T* upload(cuda::PoolBytes& b, const std::vector<T>& h, cudaStream_t st) {
  b.reserve(std::max<size_t>(1, h.size()) * sizeof(T), st);
  if (!h.empty()) CASCADE_CUDA_CHECK(cudaMemcpyAsync(b.data(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, st));
  return reinterpret_cast<const T*>(b.data());
}

// Scratch shared by the ADA layers of one sequence (they run one at a time), from the stream-ordered
// pool: a new sequence's scratch costs no cudaMalloc (which would synchronise the device).
struct AdaGpuScratch {
  cuda::PoolBytes features;  // the selection's input in float32 (a layer's input or its keys)
  cuda::PoolBytes keys;      // keys features: the keys in the compute dtype, packed [rows, kd]
  cuda::PoolBytes rows;      // gathered query rows [rows, d]
  cuda::PoolBytes query_tokens, cache_rows, copy_from, query_pos, own_key, bias;
};

class AdaGpuLayer : public GpuLayerAttention {
 public:
  AdaGpuLayer(const GpuAttentionContext& c, const AdaOptions& o, const AdaGpuLayer* below,
              std::shared_ptr<AdaGpuScratch> scratch)
      : c_(c), o_(o), below_(below), sc_(std::move(scratch)) {}

  void forward(const GpuPass& p, const void* x, void* out) override {
    const int64_t d = c_.spec->d_model;
    if (!plan_) {
      CASCADE_CHECK(p.start == 0, "ADA GPU sequence without a prefill");
      prefill(p, x, out);
      return;
    }
    for (int64_t i = 0; i < p.n; ++i) decode(p, at(x, i * d, c_.dtype), i, at(out, i * d, c_.dtype));
  }

  int64_t cache_bytes() const override { return 2 * r_ * c_.kd() * int64_t(dtype_size(c_.dtype)); }
  const AdaLayerTrace* trace() const override { return &trace_; }

 private:
  bool all() const { return o_.queries == AdaQueries::all; }
  size_t es() const { return dtype_size(c_.dtype); }

  // x [rows, width] in the compute dtype -> float32.
  const float* to_f32(const void* x, int64_t rows, int64_t width, cudaStream_t st) {
    if (c_.dtype == DType::F32) return static_cast<const float*>(x);
    sc_->features.reserve(size_t(rows * width) * sizeof(float), st);
    float* f = reinterpret_cast<float*>(sc_->features.data());
    ops::gpu::to_f32(c_.dtype, x, f, rows * width, st);
    return f;
  }

  // The selection's input for the pass's rows x [rows, d] at device positions pos, in float32: x
  // (hidden), or the keys after rotary (keys: Q/K/V projected into qkv, the K columns packed).
  const float* features(const void* x, int64_t rows, const int64_t* pos, void* qkv, cudaStream_t st) {
    if (o_.features == AdaFeatures::hidden) return to_f32(x, rows, c_.spec->d_model, st);
    const int64_t kd = c_.kd();
    const size_t es = dtype_size(c_.dtype);
    gpu_project_qkv(c_, x, rows, pos, qkv, st);
    sc_->keys.reserve(size_t(rows * kd) * es, st);
    CASCADE_CUDA_CHECK(cudaMemcpy2DAsync(sc_->keys.data(), size_t(kd) * es, at(qkv, c_.qd(), c_.dtype), size_t(c_.qkv_ld()) * es,
                                         size_t(kd) * es, size_t(rows), cudaMemcpyDeviceToDevice, st));
    return to_f32(sc_->keys.data(), rows, kd, st);
  }
  int64_t width() const { return o_.features == AdaFeatures::keys ? c_.kd() : c_.spec->d_model; }
  bool span() const { return o_.select.rule == select::Rule::span; }

  // Room for `need` representatives in the compressed cache (K, V, outputs, positions).
  void reserve(int64_t need, cudaStream_t st) {
    if (need <= cap_) return;
    const int64_t cap = std::min(c_.spec->max_positions, std::max({need, 2 * cap_, int64_t(64)}));
    const size_t kvb = size_t(c_.kd()) * es(), ob = size_t(c_.spec->d_model) * es();
    cuda::PoolBytes k(size_t(cap) * kvb, st), v(size_t(cap) * kvb, st), o(size_t(cap) * ob, st), p(size_t(cap) * 8, st);
    if (r_) {
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(k.data(), k_.data(), size_t(r_) * kvb, cudaMemcpyDeviceToDevice, st));
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(v.data(), v_.data(), size_t(r_) * kvb, cudaMemcpyDeviceToDevice, st));
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(o.data(), out_.data(), size_t(r_) * ob, cudaMemcpyDeviceToDevice, st));
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(p.data(), rep_pos_.data(), size_t(r_) * 8, cudaMemcpyDeviceToDevice, st));
    }
    k_ = std::move(k);
    v_ = std::move(v);
    out_ = std::move(o);
    rep_pos_ = std::move(p);
    cap_ = cap;
  }
  const int64_t* rep_pos() const { return reinterpret_cast<const int64_t*>(rep_pos_.data()); }

  void prefill(const GpuPass& p, const void* x, void* out) {
    const int64_t n = p.n, d = c_.spec->d_model, qd = c_.qd(), kd = c_.kd(), ld = c_.qkv_ld();
    select::gpu::DeviceFeatures z =
        select::gpu::normalize_device(features(x, n, p.pos, p.qkv, p.st), n, width(), o_.select.similarity);
    const select::Selection* prev = below_ ? &below_->trace_.selection : nullptr;
    if (span()) {  // the CPU's selection on the downloaded features
      const auto t0 = std::chrono::steady_clock::now();
      select::Features hz{n, width(), z.download()};
      trace_.selection = select::run_layer(hz, prev, o_.select, o_.mode, c_.layer);
      host_selector_.emplace(hz, trace_.selection, o_.select);
      c_.times->selection += z.ms_normalize() * 1e-3 +
                             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } else {
      select::gpu::GpuSelection g = (prev && o_.mode.mode == select::Mode::cascade)
                                        ? select::gpu::run_cascade(z, *prev, o_.select)
                                        : select::gpu::run_full(z, o_.select, {}, prev);
      c_.times->selection += (z.ms_normalize() + g.stats.ms_total) * 1e-3;
      trace_.selection = std::move(g.sel);
      z_.emplace(std::move(z));
    }
    std::vector<int64_t> pos(static_cast<size_t>(n));
    std::iota(pos.begin(), pos.end(), int64_t(0));  // a prefill starts at position 0
    plan_.emplace(trace_.selection, pos.data(), n, o_.queries, o_.proportional);
    const AdaPlan& pl = *plan_;
    const int64_t r = pl.r(), rows = int64_t(pl.query_tokens().size());

    reserve(r, p.st);
    const int64_t* qpos = upload(sc_->query_pos, pl.query_pos(), p.st);
    const int32_t* cache_rows = upload(sc_->cache_rows, pl.cache_rows(), p.st);
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(rep_pos_.data(), pl.rep_pos().data(), size_t(r) * 8, cudaMemcpyHostToDevice, p.st));
    const void* xq = x;
    if (!all()) {
      sc_->rows.reserve(size_t(rows * d) * es(), p.st);
      ops::gpu::embed(c_.dtype, x, upload(sc_->query_tokens, pl.query_tokens(), p.st), rows, d, sc_->rows.data(), p.st);
      xq = sc_->rows.data();
    }
    gpu_project_qkv(c_, xq, rows, qpos, p.qkv, p.st);
    ops::gpu::gather_rows(c_.dtype, at(p.qkv, qd, c_.dtype), ld, cache_rows, r, kd, k_.data(), kd, p.st);
    ops::gpu::gather_rows(c_.dtype, at(p.qkv, qd + kd, c_.dtype), ld, cache_rows, r, kd, v_.data(), kd, p.st);
    r_ = r;
    ops::AttentionArgs g2 = gpu_attention_args(c_, p.qkv, ld, rows, qpos, k_.data(), v_.data(), r, rep_pos(), p.o);
    if (!pl.bias().empty()) {
      g2.bias = upload(sc_->bias, pl.bias(), p.st);
      g2.ldbias = r;
    }
    if (!pl.own_key().empty()) own_keys(g2, p, upload(sc_->own_key, pl.own_key(), p.st));
    p.timer->run(g2, p.st);
    if (all()) {
      gpu_project_out(c_, p.o, rows, out, p.st);
    } else {  // the representatives' outputs are kept: every token takes its parent's
      gpu_project_out(c_, p.o, rows, out_.data(), p.st);
      ops::gpu::embed(c_.dtype, out_.data(), upload(sc_->copy_from, pl.copy_from(), p.st), n, d, out, p.st);
    }
    plan_->end_prefill();
  }

  // The queries of the fused Q/K/V rows in p.qkv flagged in mask (device) also see their own K/V there.
  void own_keys(ops::AttentionArgs& g, const GpuPass& p, const uint8_t* mask) const {
    g.own_k = at(p.qkv, c_.qd(), c_.dtype);
    g.own_v = at(p.qkv, c_.qd() + c_.kd(), c_.dtype);
    g.ldown = c_.qkv_ld();
    g.own_mask = mask;
  }

  void decode(const GpuPass& p, const void* x, int64_t i, void* out) {
    const int64_t d = c_.spec->d_model, kd = c_.kd(), ld = c_.qkv_ld();
    const int64_t* qpos = p.pos + i;  // this token's position on the device
    const float* f = features(x, 1, qpos, p.qkv, p.st);
    select::IncrementalSelector::Step st;
    if (span()) {  // the CPU's decision on the downloaded features
      std::vector<float> fh(static_cast<size_t>(width()));
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(fh.data(), f, fh.size() * sizeof(float), cudaMemcpyDeviceToHost, p.st));
      CASCADE_CUDA_CHECK(cudaStreamSynchronize(p.st));
      st = host_selector_->step(fh.data());
    } else {
      if (!selector_) {  // the representatives' rows, made on the first decoded token; the features go
        CASCADE_CHECK(z_.has_value(), "ADA GPU sequence without a prefill");
        selector_.emplace(*z_, trace_.selection, o_.select);
        z_.reset();
      }
      st = selector_->step(f);
    }
    extend_selection(trace_.selection, st);
    ++trace_.decode_tokens;
    if (st.is_rep) ++trace_.decode_reps;
    const AdaPlan::Step s = plan_->decode(st, p.start + i);
    if (!s.attend) {  // the parent's sub-layer output
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(out, out_.data() + size_t(s.copy_from) * size_t(d) * es(), size_t(d) * es(),
                                         cudaMemcpyDeviceToDevice, p.st));
      return;
    }
    if (o_.features == AdaFeatures::hidden) gpu_project_qkv(c_, x, 1, qpos, p.qkv, p.st);  // keys: done above
    if (s.append) {
      reserve(r_ + 1, p.st);
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(rep_pos_.data() + size_t(r_) * 8, qpos, 8, cudaMemcpyDeviceToDevice, p.st));
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(k_.data() + size_t(r_ * kd) * es(), at(p.qkv, c_.qd(), c_.dtype), size_t(kd) * es(),
                                         cudaMemcpyDeviceToDevice, p.st));
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(v_.data() + size_t(r_ * kd) * es(), at(p.qkv, c_.qd() + kd, c_.dtype),
                                         size_t(kd) * es(), cudaMemcpyDeviceToDevice, p.st));
      ++r_;
    }
    ops::AttentionArgs g = gpu_attention_args(c_, p.qkv, ld, 1, qpos, k_.data(), v_.data(), r_, rep_pos(), p.o);
    if (!s.bias.empty()) {
      g.bias = upload(sc_->bias, s.bias, p.st);
      g.ldbias = int64_t(s.bias.size());
    }
    if (s.own_key) {
      sc_->own_key.reserve(1, p.st);
      CASCADE_CUDA_CHECK(cudaMemsetAsync(sc_->own_key.data(), 1, 1, p.st));
      own_keys(g, p, reinterpret_cast<const uint8_t*>(sc_->own_key.data()));
    }
    p.timer->run(g, p.st);
    if (!s.append || all()) {
      gpu_project_out(c_, p.o, 1, out, p.st);
      return;
    }
    void* kept = out_.data() + size_t((r_ - 1) * d) * es();  // a later non-representative copies it
    gpu_project_out(c_, p.o, 1, kept, p.st);
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(out, kept, size_t(d) * es(), cudaMemcpyDeviceToDevice, p.st));
  }

  GpuAttentionContext c_;
  AdaOptions o_;
  const AdaGpuLayer* below_;
  std::shared_ptr<AdaGpuScratch> sc_;
  AdaLayerTrace trace_;
  std::optional<select::gpu::DeviceFeatures> z_;  // the prefill's features, until decoding starts
  std::optional<select::gpu::DeviceIncremental> selector_;
  std::optional<select::IncrementalSelector> host_selector_;  // span: decisions on the host
  std::optional<AdaPlan> plan_;
  cuda::PoolBytes k_, v_, out_, rep_pos_;  // [cap, kd], [cap, kd], [cap, d] (reps' outputs), [cap] int64
  int64_t r_ = 0, cap_ = 0;
};

// A dense layer (--ada-dense-layers): the exact GPU layer, traced as a selection that keeps every token.
class AdaDenseGpuLayer : public GpuLayerAttention {
 public:
  explicit AdaDenseGpuLayer(std::unique_ptr<GpuLayerAttention> exact) : exact_(std::move(exact)) {}
  void prepare(const GpuPass& p) override { exact_->prepare(p); }
  void forward(const GpuPass& p, const void* x, void* out) override {
    exact_->forward(p, x, out);
    extend_dense(trace_, p.n);
  }
  int64_t cache_bytes() const override { return exact_->cache_bytes(); }
  const AdaLayerTrace* trace() const override { return &trace_; }

 private:
  std::unique_ptr<GpuLayerAttention> exact_;
  AdaLayerTrace trace_;
};

}  // namespace

std::vector<std::unique_ptr<GpuLayerAttention>> AdaAttentionFactory::make_gpu(
    const std::vector<GpuAttentionContext>& layers) const {
  check_gpu();
  auto scratch = std::make_shared<AdaGpuScratch>();
  std::vector<std::unique_ptr<GpuLayerAttention>> out;
  const size_t dense = size_t(std::min<int64_t>(o_.dense_layers, int64_t(layers.size())));
  auto exact = ExactAttentionFactory().make_gpu({layers.begin(), layers.begin() + ptrdiff_t(dense)});
  for (auto& e : exact) out.push_back(std::make_unique<AdaDenseGpuLayer>(std::move(e)));
  const AdaGpuLayer* below = nullptr;  // layer `dense` runs the full selection
  for (size_t l = dense; l < layers.size(); ++l) {
    auto a = std::make_unique<AdaGpuLayer>(layers[l], o_, below, scratch);
    below = a.get();
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace cascade
