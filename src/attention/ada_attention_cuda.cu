// ADA on the GPU: the twin of ada_attention.cc. The selection runs on the device
// (select/gpu_selection.h: full at layer 0 and for --select full, the exact cascade after); the
// layer's AdaPlan (attention/ada_plan.h, computed on the host from the selection, exactly as the CPU
// computes it) is uploaded and carried out: the query rows gathered (representatives, or every
// token), Q/K/V at their positions, the plan's keys (the representatives, sinks; with a window every
// token's, the window a mask in the attention kernel) attended to, the output projection, and with queries=reps every
// token copying its parent's output or (lstsq) mixing its representatives' outputs. The compressed
// cache that decoding continues from is gathered from the same rows. With reconstruct lstsq the plan
// reads the normalised features on the host: they are downloaded once per layer (T x d float64), and
// a decoded token's features are normalised on the host from its downloaded row.
// Decoding: the new token decided on the device (select/gpu_incremental.h), the plan's step
// carried out on the compressed cache. A pass of several tokens (a continuation's chunk) is decided
// in one go and carried out as one batch (one projection, one append, one attention) where the plan
// allows: the greedy rule, no lstsq mix, no window ring; otherwise token by token. A one-token pass
// (generation) where the plan allows that and has no sinks is resident: the decision stays on the
// device, the plan's step too (the append at the representative's slot, its n and bias, the kept or
// taken output, by kernels that read the decision), the attention runs over the cache's capacity
// with its unused slots hidden, and nothing comes back, so a step is a CUDA graph like exact
// attention's; the host's trace and plan catch up from the logged decisions when they are read or
// before a pass of another kind.
// The study's measurements (measure_error, compare_full) run exact attention and the full selection
// on the same device input beside the layer, untimed.
// Variants (SPEC 6): keys features are the layer's K after rotary (projected for every token first),
// normalised on the device like X_l; the span rule downloads the normalised features and runs the
// CPU's selection (select/span_basis.h is sequential in token order) and decides a decoded token
// with the CPU's incremental selector on its downloaded features; dense layers are the exact GPU
// layers, traced as keeping every token.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <optional>
#include <vector>

#include "attention/ada_attention.h"
#include "attention/ada_attention_kernels.cuh"
#include "attention/exact_attention.h"
#include "attention/gpu_attention.cuh"
#include "core/error.h"
#include "cuda/check.h"
#include "ops/cuda_common.cuh"
#include "cuda/pool_buffer.h"
#include "select/gpu_incremental.h"
#include "select/gpu_selection.h"

namespace cascade {

namespace {

// ---- helpers -----------------------------------------------------------------------------------

// Host vector -> device buffer (grown as needed), in stream order.
template <typename T>
const T* upload(cuda::PoolBytes& b, const std::vector<T>& h, cudaStream_t st) {
  b.reserve(std::max<size_t>(1, h.size()) * sizeof(T), st);
  if (!h.empty()) CASCADE_CUDA_CHECK(cudaMemcpyAsync(b.data(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, st));
  return reinterpret_cast<const T*>(b.data());
}

// A decoding pass runs as batches of at most this many tokens (AdaGpuLayer::decode_pass).
constexpr int64_t kBatchRows = 1024;

// Scratch shared by the ADA layers of one sequence (they run one at a time), from the stream-ordered
// pool: a new sequence's scratch costs no cudaMalloc (which would synchronise the device).
struct AdaGpuScratch {
  cuda::PoolBytes features;  // the selection's input in float32 (a layer's input or its keys)
  cuda::PoolBytes keys;      // keys features: the keys in the compute dtype, packed [rows, kd]
  cuda::PoolBytes rows;      // gathered query rows [rows, d]
  cuda::PoolBytes query_tokens, key_pos, cache_rows, copy_from, mix, query_pos, own_key, key_pinned, bias;
  cuda::PoolBytes parent, key_rep_token, log_n;  // the proportional bias's statement
  cuda::PoolBytes log_n_table;  // resident steps: float(log(double(k))) for k = 0 .. max_positions
  cuda::PoolBytes full, sums;  // measure_error: exact attention's output [T, d], the two norms
};

class AdaGpuLayer : public GpuLayerAttention {
 public:
  AdaGpuLayer(const GpuAttentionContext& c, const AdaOptions& o, const AdaGpuLayer* below,
              std::shared_ptr<AdaGpuScratch> scratch)
      : c_(c), o_(o), below_(below), sc_(std::move(scratch)) {}

  void prepare(const GpuPass& p) override {
    if (!resident_fits(p)) {
      leave_resident();
      return;
    }
    if (!resident_ || slots_ + pending_ + 1 > cap_) {  // (re)enter with the host's state, and room
      sync_resident();
      reserve(slots_ + pending_ + 1, p.st);
      enter_resident(p.st);
    }
    if (pending_ == 0) pending_start_ = p.start;
    ++pending_;
    selector().plan_resident(1);
  }

  void forward(const GpuPass& p, const void* x, void* out) override {
    const int64_t d = c_.spec->d_model;
    if (!plan_) {
      CASCADE_CHECK(p.start == 0, "ADA GPU sequence without a prefill");
      prefill(p, x, out);
      return;
    }
    if (resident_ && p.n == 1) {
      resident_step(p, x, out);
      return;
    }
    if (batched(p)) {  // in batches of at most kBatchRows: the decisions' products are [n, r + n]
      for (int64_t off = 0; off < p.n; off += kBatchRows) {
        GpuPass b = p;
        b.n = std::min(kBatchRows, p.n - off);
        b.start = p.start + off;
        b.pos = p.pos + off;
        decode_pass(b, at(x, off * d, c_.dtype), at(out, off * d, c_.dtype));
      }
      return;
    }
    for (int64_t i = 0; i < p.n; ++i) decode(p, at(x, i * d, c_.dtype), i, at(out, i * d, c_.dtype));
  }

  bool capturable(const GpuPass& p) const override { return resident_ && p.n == 1; }
  void graph_key(GraphKey& key) const override {
    key.shape.push_back(uintptr_t(cap_));
    selector_->graph_key(key.shape, key.buffers);
    const cuda::PoolBytes* read[] = {&k_, &v_, &out_, &pos_, &counts_, &bias_, &own_, &sc_->log_n_table, &sc_->features,
                                     &sc_->keys};
    for (const cuda::PoolBytes* b : read) key.buffers.push_back(reinterpret_cast<uintptr_t>(b->data()));
  }
  // Both read the host's state, which catches up with resident steps here (logically const).
  int64_t cache_bytes() const override {
    const_cast<AdaGpuLayer*>(this)->sync_resident();
    return 2 * slots_ * c_.kd() * int64_t(dtype_size(c_.dtype));
  }
  const AdaLayerTrace* trace() const override {
    const_cast<AdaGpuLayer*>(this)->sync_resident();
    return &trace_;
  }

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
    gpu_project_qkv(c_, x, rows, pos, qkv, st);
    sc_->keys.reserve(size_t(rows * c_.kd()) * es(), st);
    gpu_pack_keys(c_, qkv, rows, sc_->keys.data(), st);
    return to_f32(sc_->keys.data(), rows, c_.kd(), st);
  }
  int64_t width() const { return o_.features == AdaFeatures::keys ? c_.kd() : c_.spec->d_model; }
  bool span() const { return o_.select.rule == select::Rule::span; }

  // Room for `need` cache slots (K, V, representatives' outputs, positions).
  void reserve(int64_t need, cudaStream_t st) {
    if (need <= cap_) return;
    const int64_t cap = std::max(need, std::min(c_.spec->max_positions, cuda::grown_capacity(cap_, need, 64)));
    const size_t kvb = size_t(c_.kd()) * es(), ob = size_t(c_.spec->d_model) * es();
    cuda::PoolBytes k(size_t(cap) * kvb, st), v(size_t(cap) * kvb, st), o(size_t(cap) * ob, st), p(size_t(cap) * 8, st);
    if (slots_) {
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(k.data(), k_.data(), size_t(slots_) * kvb, cudaMemcpyDeviceToDevice, st));
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(v.data(), v_.data(), size_t(slots_) * kvb, cudaMemcpyDeviceToDevice, st));
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(p.data(), pos_.data(), size_t(slots_) * 8, cudaMemcpyDeviceToDevice, st));
      if (!all()) CASCADE_CUDA_CHECK(cudaMemcpyAsync(o.data(), out_.data(), size_t(slots_) * ob, cudaMemcpyDeviceToDevice, st));
    }
    k_ = std::move(k);
    v_ = std::move(v);
    out_ = std::move(o);
    pos_ = std::move(p);
    cap_ = cap;
  }
  const int64_t* cache_pos() const { return reinterpret_cast<const int64_t*>(pos_.data()); }

  // The plan's proportional bias [rows, nk] on the device (sc_->bias), built there; query_tokens: the
  // plan's query_tokens() on the device.
  const float* proportional_bias(const AdaPlan& pl, int64_t rows, const int32_t* query_tokens, cudaStream_t st) {
    const int64_t nk = pl.nk();
    sc_->bias.reserve(std::max<size_t>(1, size_t(rows * nk)) * sizeof(float), st);
    float* bias = reinterpret_cast<float*>(sc_->bias.data());
    CASCADE_CUDA_CHECK(cudaMemsetAsync(bias, 0, size_t(rows * nk) * sizeof(float), st));
    proportional_bias_kernel<<<unsigned((nk + 127) / 128), 128, 0, st>>>(
        upload(sc_->parent, pl.parent(), st), query_tokens, rows, upload(sc_->key_rep_token, pl.key_rep_token(), st), nk,
        upload(sc_->log_n, pl.log_n(), st), bias);
    CASCADE_CUDA_CHECK(cudaGetLastError());
    return bias;
  }

  // out [n, d] = the plan's mixes of the representatives' outputs.
  void mix_rows(const MixRow* mix, int64_t n, void* out, cudaStream_t st) const {
    ops::gpu::dispatch_dtype(c_.dtype, [&](auto tag) {
      using T = decltype(tag);
      mix_rows_kernel<T><<<unsigned(n), 128, 0, st>>>(reinterpret_cast<const T*>(out_.data()), mix, c_.spec->d_model,
                                                      static_cast<T*>(out));
    });
    CASCADE_CUDA_CHECK(cudaGetLastError());
  }

  void prefill(const GpuPass& p, const void* x, void* out) {
    const int64_t n = p.n, d = c_.spec->d_model, qd = c_.qd(), kd = c_.kd(), ld = c_.qkv_ld();
    const float* f = features(x, n, p.pos, p.qkv, p.st);  // the compute dtype's values, widened
    select::gpu::DeviceFeatures z = select::gpu::normalize_device(f, n, width(), o_.select.similarity, o_.gram_precision);
    const select::Selection* prev = below_ ? &below_->trace_.selection : nullptr;
    const bool lstsq = o_.reconstruct == AdaReconstruct::lstsq && !all();
    std::optional<select::Features> zh;  // the features on the host: span's selection, lstsq's plan
    if (span() || lstsq) zh.emplace(select::Features{n, width(), z.download()});
    if (span()) {  // the CPU's selection on the downloaded features
      const auto t0 = std::chrono::steady_clock::now();
      trace_.selection = select::run_layer(*zh, prev, o_.select, o_.mode, c_.layer);
      host_selector_.emplace(*zh, trace_.selection, o_.select);
      c_.times->selection += z.ms_normalize() * 1e-3 +
                             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (o_.compare_full) trace_.jaccard_vs_full = select::jaccard(trace_.selection.reps, select::run_full(*zh, o_.select).reps);
    } else {
      select::gpu::GpuSelection g = select::gpu::run_layer(z, prev, o_.select, o_.mode.mode, {o_.gram_precision});
      c_.times->selection += (z.ms_normalize() + g.stats.ms_total) * 1e-3;
      trace_.selection = std::move(g.sel);
      if (o_.compare_full)  // the full selection on the same device features, beside the layer (untimed)
        trace_.jaccard_vs_full = select::jaccard(trace_.selection.reps, select::gpu::run_full(z, o_.select).sel.reps);
    }
    std::vector<int64_t> pos(static_cast<size_t>(n));
    std::iota(pos.begin(), pos.end(), int64_t(0));  // a prefill starts at position 0
    {
      const auto t0 = std::chrono::steady_clock::now();
      plan_.emplace(trace_.selection, pos.data(), n, o_.plan(), lstsq ? &*zh : nullptr);
      c_.times->selection += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    // Decoding's selector keeps the representatives' feature rows in the compute dtype, which holds
    // them exactly (2 d bytes each in 16 bits, with 16 bytes of float64 statistics); every token's
    // features (z: 10 d bytes a token with f16-certified, 2.5 times its bf16 K/V without grouped
    // queries, 10 times in Llama-8B's shape) are released with this scope, not kept per layer until
    // a first decoded token (Llama-8B's shape at 131072 tokens: 5.4 GB a layer). Decoding continues a
    // float64 selection: after an f32 or tf32 Gram there is none and decoding is an error.
    if (!span() && select::gpu::keeps_float64(o_.gram_precision))
      selector_.emplace(z, f, c_.dtype, trace_.selection, o_.select);
    const AdaPlan& pl = *plan_;
    const int64_t rows = int64_t(pl.query_tokens().size()), nk = pl.nk();

    const int64_t* qpos = upload(sc_->query_pos, pl.query_pos(), p.st);
    // The query rows' tokens, read by the gather (reps) and the bias (proportional): uploaded once.
    const int32_t* query_tokens = !all() || pl.has_bias() ? upload(sc_->query_tokens, pl.query_tokens(), p.st) : nullptr;
    const void* xq = x;
    if (!all()) {
      sc_->rows.reserve(size_t(rows * d) * es(), p.st);
      ops::gpu::embed(c_.dtype, x, query_tokens, rows, d, sc_->rows.data(), p.st);
      xq = sc_->rows.data();
    }
    gpu_project_qkv(c_, xq, rows, qpos, p.qkv, p.st);
    // The compressed cache decoding continues from: rows of the projected K/V. Without a window those
    // are also the prefill's keys; with one the prefill attends to every row of p.qkv, masked.
    reserve(int64_t(pl.cache_rows().size()), p.st);
    slots_ = int64_t(pl.cache_rows().size());
    const int32_t* cache_rows = upload(sc_->cache_rows, pl.cache_rows(), p.st);
    ops::gpu::gather_rows(c_.dtype, at(p.qkv, qd, c_.dtype), ld, cache_rows, slots_, kd, k_.data(), kd, p.st);
    ops::gpu::gather_rows(c_.dtype, at(p.qkv, qd + kd, c_.dtype), ld, cache_rows, slots_, kd, v_.data(), kd, p.st);
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(pos_.data(), pl.cache_pos().data(), size_t(slots_) * 8, cudaMemcpyHostToDevice, p.st));
    ops::AttentionArgs g2 = gpu_attention_args(c_, p.qkv, ld, rows, qpos, k_.data(), v_.data(), nk, cache_pos(), p.o);
    if (!pl.cache_sorted()) {  // a window: every row's K/V, at the rows' positions, the window a mask
      g2.k = at(p.qkv, qd, c_.dtype);
      g2.v = at(p.qkv, qd + kd, c_.dtype);
      g2.ldkv = ld;
      g2.k_pos = upload(sc_->key_pos, pl.key_pos(), p.st);
      g2.window = pl.key_window();
      g2.key_pinned = upload(sc_->key_pinned, pl.key_pinned(), p.st);
    }
    if (pl.has_bias()) {
      g2.bias = proportional_bias(pl, rows, query_tokens, p.st);
      g2.ldbias = nk;
    }
    if (!pl.own_key().empty()) own_keys(g2, p, upload(sc_->own_key, pl.own_key(), p.st));
    p.timer->run(g2, p.st);
    if (all()) {
      gpu_project_out(c_, p.o, rows, out, p.st);
    } else if (pl.mixes()) {  // the representatives' outputs are kept; every token mixes them
      gpu_project_out(c_, p.o, rows, out_.data(), p.st);
      mix_rows(upload(sc_->mix, pl.mix(), p.st), n, out, p.st);
    } else {  // the representatives' outputs are kept; every token takes its parent's
      gpu_project_out(c_, p.o, rows, out_.data(), p.st);
      ops::gpu::embed(c_.dtype, out_.data(), upload(sc_->copy_from, pl.copy_from(), p.st), n, d, out, p.st);
    }
    plan_->end_prefill();
    if (o_.measure_error) trace_.attention_error = error_against_exact(p, x, out);
  }

  // ||O_ada - O_full||_F / ||O_full||_F with exact attention on the same layer input x (the pass's
  // scratch is free again), beside the layer: its kernels are not in the pass's attention time.
  double error_against_exact(const GpuPass& p, const void* x, const void* ada) {
    const int64_t n = p.n, d = c_.spec->d_model, qd = c_.qd(), kd = c_.kd(), ld = c_.qkv_ld();
    gpu_project_qkv(c_, x, n, p.pos, p.qkv, p.st);
    ops::AttentionArgs g =
        gpu_attention_args(c_, p.qkv, ld, n, p.pos, at(p.qkv, qd, c_.dtype), at(p.qkv, qd + kd, c_.dtype), n, p.pos, p.o);
    g.ldkv = ld;
    ops::gpu::attention(g, p.st);
    sc_->full.reserve(size_t(n * d) * es(), p.st);
    gpu_project_out(c_, p.o, n, sc_->full.data(), p.st);
    sc_->sums.reserve(2 * sizeof(double), p.st);
    double* sums = reinterpret_cast<double*>(sc_->sums.data());
    CASCADE_CUDA_CHECK(cudaMemsetAsync(sums, 0, 2 * sizeof(double), p.st));
    ops::gpu::dispatch_dtype(c_.dtype, [&](auto tag) {
      using T = decltype(tag);
      const unsigned blocks = unsigned(std::min<int64_t>(1024, (n * d + 255) / 256));
      diff_norms_kernel<T><<<blocks, 256, 0, p.st>>>(static_cast<const T*>(ada), reinterpret_cast<const T*>(sc_->full.data()),
                                                     n * d, sums);
    });
    CASCADE_CUDA_CHECK(cudaGetLastError());
    double h[2];
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(h, sums, sizeof h, cudaMemcpyDeviceToHost, p.st));
    CASCADE_CUDA_CHECK(cudaStreamSynchronize(p.st));
    return h[1] > 0 ? std::sqrt(h[0] / h[1]) : 0.0;
  }

  // The queries of the fused Q/K/V rows in p.qkv flagged in mask (device) also see their own K/V there.
  void own_keys(ops::AttentionArgs& g, const GpuPass& p, const uint8_t* mask) const {
    g.own_k = at(p.qkv, c_.qd(), c_.dtype);
    g.own_v = at(p.qkv, c_.qd() + c_.kd(), c_.dtype);
    g.ldown = c_.qkv_ld();
    g.own_mask = mask;
  }

  // A decoded token's normalised features on the host (lstsq), from its row of the selection's input.
  std::vector<double> host_features(const float* x_device, cudaStream_t st) const {
    const int64_t d = width();
    std::vector<float> xf(static_cast<size_t>(d));
    std::vector<double> z(static_cast<size_t>(d));
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(xf.data(), x_device, size_t(d) * sizeof(float), cudaMemcpyDeviceToHost, st));
    CASCADE_CUDA_CHECK(cudaStreamSynchronize(st));
    select::normalize_row(xf.data(), d, o_.select.similarity, z.data());
    return z;
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
      st = selector().step(f);
    }
    extend_selection(trace_.selection, st);
    ++trace_.decode_tokens;
    if (st.is_rep) ++trace_.decode_reps;
    const std::vector<double> z = plan_->mixes() ? host_features(f, p.st) : std::vector<double>{};
    const AdaPlan::Step s = plan_->decode(st, p.start + i, z.empty() ? nullptr : z.data());
    if (!s.attend && s.copy_from >= 0) {  // the parent's sub-layer output
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(out, out_.data() + size_t(s.copy_from) * size_t(d) * es(), size_t(d) * es(),
                                         cudaMemcpyDeviceToDevice, p.st));
      return;
    }
    if (!s.attend) {  // the mix of representatives' outputs
      mix_rows(upload(sc_->mix, std::vector<MixRow>{s.mix}, p.st), 1, out, p.st);
      return;
    }
    if (o_.features == AdaFeatures::hidden) gpu_project_qkv(c_, x, 1, qpos, p.qkv, p.st);  // keys: done above
    if (s.append) {
      reserve(slots_ + 1, p.st);
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(pos_.data() + size_t(slots_) * 8, qpos, 8, cudaMemcpyDeviceToDevice, p.st));
      copy_kv(p, slots_);
      ++slots_;
    }
    ops::AttentionArgs g = gpu_attention_args(c_, p.qkv, ld, 1, qpos, k_.data(), v_.data(), slots_, cache_pos(), p.o);
    g.keys_sorted = plan_->cache_sorted();
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
    if (s.ring_slot >= 0) {  // after the attention: the window's ring slot takes this token, or is hidden
      void* slot_pos = pos_.data() + size_t(s.ring_slot) * 8;
      if (s.ring_write) {
        CASCADE_CUDA_CHECK(cudaMemcpyAsync(slot_pos, qpos, 8, cudaMemcpyDeviceToDevice, p.st));
        copy_kv(p, s.ring_slot);
      } else {
        CASCADE_CUDA_CHECK(cudaMemcpyAsync(slot_pos, &kHiddenPos, 8, cudaMemcpyHostToDevice, p.st));
      }
    }
    if (!s.append || all()) {
      gpu_project_out(c_, p.o, 1, out, p.st);
      return;
    }
    void* kept = out_.data() + size_t((slots_ - 1) * d) * es();  // a later non-representative copies it
    gpu_project_out(c_, p.o, 1, kept, p.st);
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(out, kept, size_t(d) * es(), cudaMemcpyDeviceToDevice, p.st));
  }

  // Whether a decoding pass runs as one batch: several tokens, decided on the device in one go (the
  // greedy rule; span decides on the host), no lstsq mix (it needs each token's features on the
  // host) and no window (its ring changes the keys from one token to the next).
  bool batched(const GpuPass& p) const { return p.n > 1 && !span() && !plan_->mixes() && plan_->cache_sorted(); }

  // The pass's tokens decided together, then the plan's steps carried out as one batch: the tokens
  // that attend (reps: the new representatives; all: every token) projected at once, the appended
  // keys (new representatives and sinks) written to the cache, one attention in which each query sees
  // the cache up to its position (the keys appended after it lie later) with the proportional bias of
  // its own step, and the outputs (reps: every token takes its representative's kept output). The
  // same keys, biases and outputs as decode() token by token.
  void decode_pass(const GpuPass& p, const void* x, void* out) {
    const int64_t n = p.n, d = c_.spec->d_model, kd = c_.kd(), ld = c_.qkv_ld();
    const float* f = features(x, n, p.pos, p.qkv, p.st);
    const std::vector<select::IncrementalSelector::Step> decided = selector().steps(f, n);
    std::vector<AdaPlan::Step> steps;
    std::vector<int32_t> attend, append;  // the pass's rows that attend / whose K/V join the cache
    std::vector<int64_t> attend_pos, append_pos;
    std::vector<uint8_t> own;
    for (int64_t i = 0; i < n; ++i) {
      extend_selection(trace_.selection, decided[size_t(i)]);
      ++trace_.decode_tokens;
      if (decided[size_t(i)].is_rep) ++trace_.decode_reps;
      steps.push_back(plan_->decode(decided[size_t(i)], p.start + i));
      const AdaPlan::Step& s = steps.back();
      if (s.attend) {
        attend.push_back(int32_t(i));
        attend_pos.push_back(p.start + i);
        own.push_back(s.own_key);
      }
      if (s.append) {
        append.push_back(int32_t(i));
        append_pos.push_back(p.start + i);
      }
    }
    const int64_t slots0 = slots_, na = int64_t(attend.size()), nk = slots0 + int64_t(append.size());
    // Q/K/V of the attending rows at p.qkv's rows 0..na-1 (all: every row, in order).
    const int64_t* qpos = p.pos;
    if (all()) {
      if (o_.features == AdaFeatures::hidden) gpu_project_qkv(c_, x, n, p.pos, p.qkv, p.st);  // keys: done above
    } else if (na > 0) {
      sc_->rows.reserve(size_t(na * d) * es(), p.st);
      ops::gpu::embed(c_.dtype, x, upload(sc_->query_tokens, attend, p.st), na, d, sc_->rows.data(), p.st);
      qpos = upload(sc_->query_pos, attend_pos, p.st);
      gpu_project_qkv(c_, sc_->rows.data(), na, qpos, p.qkv, p.st);
    }
    reserve(nk, p.st);
    if (nk > slots0) {  // reps: the attending rows are the appended ones; all: a subset of p.qkv's rows
      std::vector<int32_t> from(append.size());
      for (size_t k = 0; k < append.size(); ++k) from[k] = all() ? append[k] : int32_t(k);
      const int32_t* rows = upload(sc_->cache_rows, from, p.st);
      const int64_t m = int64_t(from.size());
      ops::gpu::gather_rows(c_.dtype, at(p.qkv, c_.qd(), c_.dtype), ld, rows, m, kd, at(k_.data(), slots0 * kd, c_.dtype), kd,
                            p.st);
      ops::gpu::gather_rows(c_.dtype, at(p.qkv, c_.qd() + kd, c_.dtype), ld, rows, m, kd,
                            at(v_.data(), slots0 * kd, c_.dtype), kd, p.st);
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(pos_.data() + size_t(slots0) * 8, append_pos.data(), append_pos.size() * 8,
                                         cudaMemcpyHostToDevice, p.st));
    }
    slots_ = nk;
    if (na > 0) {
      ops::AttentionArgs g = gpu_attention_args(c_, p.qkv, ld, na, qpos, k_.data(), v_.data(), nk, cache_pos(), p.o);
      if (plan_->has_bias()) {  // each query's own step's bias, over the slots it saw (later ones lie after it)
        std::vector<float> bias(size_t(na * nk), 0.f);
        for (int64_t q = 0; q < na; ++q) {
          const std::vector<float>& b = steps[size_t(attend[size_t(q)])].bias;
          std::copy(b.begin(), b.end(), bias.begin() + q * nk);
        }
        g.bias = upload(sc_->bias, bias, p.st);
        g.ldbias = nk;
      }
      if (std::find(own.begin(), own.end(), uint8_t(1)) != own.end()) own_keys(g, p, upload(sc_->own_key, own, p.st));
      p.timer->run(g, p.st);
    }
    if (all()) {
      gpu_project_out(c_, p.o, n, out, p.st);
      return;
    }
    if (na > 0) gpu_project_out(c_, p.o, na, at(out_.data(), slots0 * d, c_.dtype), p.st);
    std::vector<int32_t> from(static_cast<size_t>(n));  // each token's representative's kept output
    for (int64_t i = 0, k = 0; i < n; ++i)
      from[size_t(i)] = steps[size_t(i)].copy_from >= 0 ? steps[size_t(i)].copy_from : int32_t(slots0 + k++);
    ops::gpu::embed(c_.dtype, out_.data(), upload(sc_->copy_from, from, p.st), n, d, out, p.st);
  }

  // The device selector, made at the end of the prefill.
  select::gpu::DeviceIncremental& selector() {
    CASCADE_CHECK(selector_.has_value(), "ADA decoding on the GPU needs float64 features (--gram-precision f64 or ",
                  "f16-certified), not ", select::gpu::precision_name(o_.gram_precision));
    return *selector_;
  }

  // ---- resident steps (the file's note) ----
  // A one-token pass that the device can decide and carry out alone: the greedy rule (span decides on
  // the host), no lstsq mix (it needs the token's features on the host), no window ring, no sinks
  // (a representative's slot is then its index among the representatives).
  bool resident_fits(const GpuPass& p) const {
    return plan_ && p.n == 1 && !span() && !plan_->mixes() && plan_->cache_sorted() && o_.sinks == 0;
  }

  // The device's copy of what the plan's steps need: the unused slots hidden (kHiddenPos, past every
  // query: a step attends over the capacity), and with proportional each slot's n and log n.
  void enter_resident(cudaStream_t st) {
    const std::vector<int64_t> hidden(size_t(cap_ - slots_), kHiddenPos);
    if (!hidden.empty())
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(pos_.data() + size_t(slots_) * 8, hidden.data(), hidden.size() * 8,
                                         cudaMemcpyHostToDevice, st));
    if (plan_->has_bias()) {
      if (sc_->log_n_table.bytes() == 0) {
        std::vector<float> table(size_t(c_.spec->max_positions) + 1, 0.f);
        for (size_t k = 1; k < table.size(); ++k) table[k] = log_count(int64_t(k));
        upload(sc_->log_n_table, table, st);
      }
      std::vector<int32_t> counts(size_t(cap_), 0);
      std::vector<float> bias(size_t(cap_), 0.f);
      const std::vector<int32_t>& n = plan_->persistent_counts();
      CASCADE_CHECK(int64_t(n.size()) == slots_, "ADA GPU: ", n.size(), " counted keys for ", slots_, " cache slots");
      for (size_t j = 0; j < n.size(); ++j) {
        counts[j] = n[j];
        bias[j] = log_count(n[j]);
      }
      upload(counts_, counts, st);
      upload(bias_, bias, st);
    }
    if (all()) own_.reserve(1, st);
    resident_ = true;
  }

  // The host's trace, plan and slot count caught up with the resident steps so far.
  void sync_resident() {
    if (pending_ == 0) return;
    const std::vector<select::IncrementalSelector::Step> steps = selector_->sync_resident();
    CASCADE_CHECK(int64_t(steps.size()) == pending_, "ADA GPU: ", steps.size(), " resident decisions for ", pending_,
                  " steps");
    for (size_t i = 0; i < steps.size(); ++i) {
      extend_selection(trace_.selection, steps[i]);
      ++trace_.decode_tokens;
      if (steps[i].is_rep) ++trace_.decode_reps;
      if (plan_->decode(steps[i], pending_start_ + int64_t(i)).append) ++slots_;
    }
    pending_ = 0;
  }

  // Before a pass of another kind: the host's state again the only one.
  void leave_resident() {
    if (!resident_) return;
    sync_resident();
    resident_ = false;
  }

  // One token, decided and carried out on the device (prepare() planned it): the decision, Q/K/V, the
  // plan's step, attention over the capacity (unused slots hidden), the output kept or taken.
  void resident_step(const GpuPass& p, const void* x, void* out) {
    const int64_t d = c_.spec->d_model, qd = c_.qd(), kd = c_.kd(), ld = c_.qkv_ld();
    select::gpu::DeviceIncremental& sel = *selector_;
    sel.step_resident(features(x, 1, p.pos, p.qkv, p.st));
    if (o_.features == AdaFeatures::hidden) gpu_project_qkv(c_, x, 1, p.pos, p.qkv, p.st);  // keys: done above
    const bool prop = plan_->has_bias();
    int32_t* counts = prop ? reinterpret_cast<int32_t*>(counts_.data()) : nullptr;
    float* bias = prop ? reinterpret_cast<float*>(bias_.data()) : nullptr;
    uint8_t* own = all() ? reinterpret_cast<uint8_t*>(own_.data()) : nullptr;
    ops::gpu::dispatch_dtype(c_.dtype, [&](auto tag) {
      using T = decltype(tag);
      resident_plan_kernel<T><<<1, 128, 0, p.st>>>(
          sel.decision(), static_cast<const T*>(at(p.qkv, qd, c_.dtype)), static_cast<const T*>(at(p.qkv, qd + kd, c_.dtype)),
          kd, p.pos, reinterpret_cast<T*>(k_.data()), reinterpret_cast<T*>(v_.data()), reinterpret_cast<int64_t*>(pos_.data()),
          counts, reinterpret_cast<const float*>(sc_->log_n_table.data()), bias, own);
    });
    CASCADE_CUDA_CHECK(cudaGetLastError());
    ops::AttentionArgs g = gpu_attention_args(c_, p.qkv, ld, 1, p.pos, k_.data(), v_.data(), cap_, cache_pos(), p.o);
    g.keys_sorted = true;  // the filled slots in position order, then the hidden ones
    if (prop) {
      g.bias = bias;
      g.ldbias = cap_;
    }
    if (own) own_keys(g, p, own);
    p.timer->run(g, p.st);
    gpu_project_out(c_, p.o, 1, out, p.st);
    if (all()) return;
    ops::gpu::dispatch_dtype(c_.dtype, [&](auto tag) {
      using T = decltype(tag);
      resident_output_kernel<T><<<1, 128, 0, p.st>>>(sel.decision(), static_cast<T*>(out), reinterpret_cast<T*>(out_.data()), d);
    });
    CASCADE_CUDA_CHECK(cudaGetLastError());
  }

  // The pass's (one-row) K and V into cache slot `slot`.
  void copy_kv(const GpuPass& p, int64_t slot) {
    const int64_t kd = c_.kd();
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(k_.data() + size_t(slot * kd) * es(), at(p.qkv, c_.qd(), c_.dtype), size_t(kd) * es(),
                                       cudaMemcpyDeviceToDevice, p.st));
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(v_.data() + size_t(slot * kd) * es(), at(p.qkv, c_.qd() + kd, c_.dtype),
                                       size_t(kd) * es(), cudaMemcpyDeviceToDevice, p.st));
  }

  GpuAttentionContext c_;
  AdaOptions o_;
  const AdaGpuLayer* below_;
  std::shared_ptr<AdaGpuScratch> sc_;
  AdaLayerTrace trace_;
  std::optional<select::gpu::DeviceIncremental> selector_;
  std::optional<select::IncrementalSelector> host_selector_;  // span: decisions on the host
  std::optional<AdaPlan> plan_;
  // The compressed cache, the plan's slots ([ring][persistent keys]): [cap, kd] K and V, [cap] int64
  // positions, and with queries=reps [cap, d] the representatives' outputs.
  cuda::PoolBytes k_, v_, out_, pos_;
  int64_t slots_ = 0, cap_ = 0;
  // Resident steps: whether the device's copy is live, the steps since the host's state last caught up
  // and the first one's position, each slot's n and log n (proportional) and the own-key flag
  // (all-queries), both [cap] where they grow with the cache.
  bool resident_ = false;
  int64_t pending_ = 0, pending_start_ = 0;
  cuda::PoolBytes counts_, bias_, own_;
};

// A dense layer (--ada-dense-layers): the exact GPU layer, traced as a selection that keeps every token.
class AdaDenseGpuLayer : public GpuLayerAttention {
 public:
  AdaDenseGpuLayer(std::unique_ptr<GpuLayerAttention> exact, bool measured) : exact_(std::move(exact)) {
    if (measured) trace_.attention_error = 0;  // it is exact attention
  }
  // The trace grows in prepare(), which runs before every pass, a replayed graph's too.
  void prepare(const GpuPass& p) override {
    exact_->prepare(p);
    extend_dense(trace_, p.n);
  }
  void forward(const GpuPass& p, const void* x, void* out) override { exact_->forward(p, x, out); }
  bool capturable(const GpuPass& p) const override { return exact_->capturable(p); }
  void graph_key(GraphKey& key) const override { exact_->graph_key(key); }
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
  for (auto& e : exact) out.push_back(std::make_unique<AdaDenseGpuLayer>(std::move(e), o_.measure_error));
  const AdaGpuLayer* below = nullptr;  // layer `dense` runs the full selection
  for (size_t l = dense; l < layers.size(); ++l) {
    auto a = std::make_unique<AdaGpuLayer>(layers[l], o_, below, scratch);
    below = a.get();
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace cascade
