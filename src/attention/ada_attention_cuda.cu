// ADA attention on the GPU (SPEC 3-4): the GPU decoder's attention step when the sequence runs ADA
// (GpuLayers::ada_*, declared in model/cuda_decoder.cuh; the CPU twin is ada_attention.cc).
// Prefill: the selection on the device (select/gpu_selection.h: full at layer 0 and for --select full,
// the exact cascade after). queries=reps: the representatives' rows gathered, Q/K/V and the r x r
// attention at their original positions, the output projection on r rows, every token copying its
// parent's output. queries=all: Q/K/V of every token, the representatives' K/V gathered into the
// compressed cache, every query attending to the representatives before it and to its own key (the
// kernels' own-key term), the output projection on every row.
// --proportional: log n_s(t) added to representative s's logits (a bias matrix built on the host as
// the CPU does; while decoding, n_s kept per representative).
// Decoding: the new token decided on the device (select/gpu_incremental.h); a representative appends
// its K/V to the compressed cache; it attends (and, with queries=all, so does any other token, over
// the cache and its own key), else it copies its parent's output.
#include <algorithm>
#include <cmath>
#include <vector>

#include "model/cuda_decoder.cuh"

namespace cascade::cuda_decoder {

ops::gpu::AttentionArgs GpuLayers::ada_args(const AdaGpuLayer& L, const void* q, int64_t ldq, int64_t nq,
                                            const int64_t* qpos, void* o) const {
  const ArchSpec& a = m.a_;
  ops::gpu::AttentionArgs g;
  g.dtype = m.t_;
  g.q = q;
  g.ldq = ldq;
  g.nq = nq;
  g.k = const_cast<PoolBytes&>(L.k).data();
  g.v = const_cast<PoolBytes&>(L.v).data();
  g.ldkv = a.n_kv_heads * a.head_dim;
  g.nk = L.r;
  g.heads = a.n_heads;
  g.kv_heads = a.n_kv_heads;
  g.head_dim = a.head_dim;
  g.q_pos = qpos;
  g.k_pos = reinterpret_cast<const int64_t*>(const_cast<PoolBytes&>(L.rep_pos_d).data());
  g.keys_sorted = true;
  g.scale = attention_scale(a);
  g.out = o;
  g.ldo = a.n_heads * a.head_dim;
  return g;
}

// Room for `need` representatives in layer L's compressed cache (the rows kept).
void GpuLayers::ada_reserve(AdaGpuLayer& L, int64_t need) {
  if (need <= L.cap) return;
  const int64_t cap = std::min(m.a_.max_positions, std::max({need, 2 * L.cap, int64_t(64)}));
  const size_t kvb = size_t(s.row_bytes), ob = size_t(m.a_.d_model) * dtype_size(m.t_);
  PoolBytes k(cap * kvb, st), v(cap * kvb, st), o(cap * ob, st), p(size_t(cap) * 8, st);
  if (L.r) {
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(k.data(), L.k.data(), L.r * kvb, cudaMemcpyDeviceToDevice, st));
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(v.data(), L.v.data(), L.r * kvb, cudaMemcpyDeviceToDevice, st));
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(o.data(), L.out.data(), L.r * ob, cudaMemcpyDeviceToDevice, st));
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(p.data(), L.rep_pos_d.data(), size_t(L.r) * 8, cudaMemcpyDeviceToDevice, st));
  }
  L.k = std::move(k);
  L.v = std::move(v);
  L.out = std::move(o);
  L.rep_pos_d = std::move(p);
  L.cap = cap;
}

// Q, K, V of rows x [rows, d] at device positions pos (rotary applied), into m.qkv_.
void GpuLayers::ada_project(int64_t l, const void* x, int64_t rows, const int64_t* pos) {
  const ArchSpec& a = m.a_;
  const DevLayer& w = m.layers_[size_t(l)];
  const int64_t qd = a.n_heads * a.head_dim, kd = a.n_kv_heads * a.head_dim, ld = qd + 2 * kd;
  ops::gpu::linear(m.t_, x, w.qkv.in, rows, w.qkv.w.data(), w.qkv.in, w.qkv.out, w.qkv.b.size() ? w.qkv.b.data() : nullptr,
                   m.t_, m.qkv_.data(), w.qkv.out, st);
  ops::gpu::rotary(m.t_, m.rot_style_, m.rot_dim_, m.inv_freq_.data(), m.qkv_.data(), rows, ld, a.n_heads, a.head_dim, pos, st);
  ops::gpu::rotary(m.t_, m.rot_style_, m.rot_dim_, m.inv_freq_.data(), at<void>(m.qkv_.data(), qd, m.t_), rows, ld,
                   a.n_kv_heads, a.head_dim, pos, st);
}

// K and V of the first `rows` rows of m.qkv_ appended to L's cache at row L.r (room reserved).
void GpuLayers::ada_append(AdaGpuLayer& L, int64_t rows) {
  const ArchSpec& a = m.a_;
  const int64_t qd = a.n_heads * a.head_dim, kd = a.n_kv_heads * a.head_dim, ld = qd + 2 * kd;
  const size_t es = dtype_size(m.t_);
  CASCADE_CUDA_CHECK(cudaMemcpy2DAsync(L.k.data() + size_t(L.r * kd) * es, size_t(kd) * es,
                                       at<unsigned char>(m.qkv_.data(), qd, m.t_), size_t(ld) * es, size_t(kd) * es,
                                       size_t(rows), cudaMemcpyDeviceToDevice, st));
  CASCADE_CUDA_CHECK(cudaMemcpy2DAsync(L.v.data() + size_t(L.r * kd) * es, size_t(kd) * es,
                                       at<unsigned char>(m.qkv_.data(), qd + kd, m.t_), size_t(ld) * es, size_t(kd) * es,
                                       size_t(rows), cudaMemcpyDeviceToDevice, st));
}

// queries=all: the queries in m.qkv_ flagged in mask (device) also see their own K/V row there.
void GpuLayers::ada_own_keys(ops::gpu::AttentionArgs& g, const uint8_t* mask) const {
  const int64_t qd = m.a_.n_heads * m.a_.head_dim, kd = m.a_.n_kv_heads * m.a_.head_dim;
  g.own_k = at<void>(m.qkv_.data(), qd, m.t_);
  g.own_v = at<void>(m.qkv_.data(), qd + kd, m.t_);
  g.ldown = qd + 2 * kd;
  g.own_mask = mask;
}

// The output projection of `rows` attention outputs in m.o_ into y [rows, d].
void GpuLayers::ada_out(int64_t l, int64_t rows, void* y) {
  const DevLayer& w = m.layers_[size_t(l)];
  ops::gpu::linear(m.t_, m.o_.data(), m.a_.n_heads * m.a_.head_dim, rows, w.o.w.data(), w.o.in, w.o.out,
                   w.o.b.size() ? w.o.b.data() : nullptr, m.t_, y, m.a_.d_model, st);
}

// x [rows, d] in the compute dtype -> float32 (the selection's input), in m.xf_.
const float* GpuLayers::ada_features_f32(const void* x, int64_t rows) {
  if (m.t_ == DType::F32) return static_cast<const float*>(x);
  m.xf_.reserve(size_t(rows * m.a_.d_model));
  ops::gpu::to_f32(m.t_, x, m.xf_.data(), rows * m.a_.d_model, st);
  return m.xf_.data();
}

void GpuLayers::ada_attention(int64_t l, void* x, void* out) {
  AdaGpuLayer& L = s.ada_layers[size_t(l)];
  if (start == 0) ada_prefill(l, L, x, out);
  else
    for (int64_t i = 0; i < n; ++i) ada_decode(l, L, at<void>(x, i * m.a_.d_model, m.t_), i, at<void>(out, i * m.a_.d_model, m.t_));
}

void GpuLayers::ada_prefill(int64_t l, AdaGpuLayer& L, void* x, void* out) {
  const ArchSpec& a = m.a_;
  const AdaOptions& o = *s.ada;
  const int64_t d = a.d_model, qd = a.n_heads * a.head_dim;
  // Selection on the device: full at layer 0 (and for --select full), the exact cascade after.
  select::gpu::DeviceFeatures z = select::gpu::normalize_device(ada_features_f32(x, n), n, d, o.select.similarity);
  const AdaGpuLayer* below = l > 0 ? &s.ada_layers[size_t(l - 1)] : nullptr;
  select::gpu::GpuSelection g = (below && o.mode.mode == select::Mode::cascade)
                                    ? select::gpu::run_cascade(z, below->sel, o.select)
                                    : select::gpu::run_full(z, o.select, {}, below ? &below->sel : nullptr);
  s.times.selection += (z.ms_normalize() + g.stats.ms_total) * 1e-3;
  L.sel = std::move(g.sel);
  L.stats = g.stats;
  L.z.emplace(std::move(z));
  const auto& reps = L.sel.reps;
  const int64_t r = int64_t(reps.size());
  L.rep_index.assign(size_t(n), -1);
  for (int64_t i = 0; i < r; ++i) L.rep_index[size_t(reps[size_t(i)])] = int32_t(i);
  L.rep_pos.assign(reps.begin(), reps.end());  // start == 0: position == index
  std::vector<int32_t> copy(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) copy[size_t(t)] = L.rep_index[size_t(L.sel.parent[size_t(t)])];
  L.r = 0;
  ada_reserve(L, r);
  m.rep_ids_.reserve(size_t(r));
  m.copy_ids_.reserve(size_t(n));
  CASCADE_CUDA_CHECK(cudaMemcpyAsync(m.rep_ids_.data(), reps.data(), size_t(r) * 4, cudaMemcpyHostToDevice, st));
  CASCADE_CUDA_CHECK(cudaMemcpyAsync(m.copy_ids_.data(), copy.data(), size_t(n) * 4, cudaMemcpyHostToDevice, st));
  CASCADE_CUDA_CHECK(cudaMemcpyAsync(L.rep_pos_d.data(), L.rep_pos.data(), size_t(r) * 8, cudaMemcpyHostToDevice, st));
  const int64_t ld = qd + 2 * a.n_kv_heads * a.head_dim;
  const bool all = o.queries == AdaQueries::all;
  if (o.proportional) {  // log n_s(t) for each query row (t its position) and representative s
    const select::ChildCounts cc(L.sel.parent);
    const int64_t rows = all ? n : r;
    std::vector<float> bias(static_cast<size_t>(rows * r), 0.f);
    for (int64_t i = 0; i < rows; ++i) {
      const int32_t t = all ? int32_t(i) : reps[size_t(i)];
      for (int64_t j = 0; j < r && reps[size_t(j)] <= t; ++j) bias[size_t(i * r + j)] = float(std::log(double(cc.n(reps[size_t(j)], t))));
    }
    m.bias_.reserve(bias.size());
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(m.bias_.data(), bias.data(), bias.size() * 4, cudaMemcpyHostToDevice, st));
    L.counts.assign(size_t(r), 1);  // n_s at the end of the prompt, for decoding
    for (int64_t t = 0; t < n; ++t)
      if (L.sel.parent[size_t(t)] != t) ++L.counts[size_t(L.rep_index[size_t(L.sel.parent[size_t(t)])])];
  }
  // The bias, when there is one, on the attention arguments (rows: the queries, columns: the representatives).
  auto with_bias = [&](ops::gpu::AttentionArgs g) {
    if (o.proportional) {
      g.bias = m.bias_.data();
      g.ldbias = r;
    }
    return g;
  };
  if (all) {
    // Every token's Q/K/V at its position; the representatives' K/V into the compressed cache; each
    // query attends to the representatives before it and, unless it is one, to its own key.
    std::vector<uint8_t> own(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) own[size_t(t)] = L.rep_index[size_t(t)] < 0 ? 1 : 0;
    m.own_mask_.reserve(size_t(n));
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(m.own_mask_.data(), own.data(), size_t(n), cudaMemcpyHostToDevice, st));
    ada_project(l, x, n, m.pos_.data());
    const int64_t kd = a.n_kv_heads * a.head_dim;
    ops::gpu::gather_rows(m.t_, at<void>(m.qkv_.data(), qd, m.t_), ld, m.rep_ids_.data(), r, kd, L.k.data(), kd, st);
    ops::gpu::gather_rows(m.t_, at<void>(m.qkv_.data(), qd + kd, m.t_), ld, m.rep_ids_.data(), r, kd, L.v.data(), kd, st);
    L.r = r;
    ops::gpu::AttentionArgs g = with_bias(ada_args(L, m.qkv_.data(), ld, n, m.pos_.data(), m.o_.data()));
    ada_own_keys(g, m.own_mask_.data());
    timed_attention(g);
    ada_out(l, n, out);
    return;
  }
  // Gather the representatives' rows, project them at their original positions, attend r x r.
  m.xr_.reserve(size_t(r * d) * dtype_size(m.t_));
  ops::gpu::embed(m.t_, x, m.rep_ids_.data(), r, d, m.xr_.data(), st);
  const int64_t* pos = reinterpret_cast<const int64_t*>(L.rep_pos_d.data());
  ada_project(l, m.xr_.data(), r, pos);
  ada_append(L, r);
  L.r = r;
  timed_attention(with_bias(ada_args(L, m.qkv_.data(), ld, r, pos, m.o_.data())));
  // Output projection on r rows, kept as the representatives' sub-layer outputs; every token copies
  // its parent's (a representative its own).
  ada_out(l, r, L.out.data());
  ops::gpu::embed(m.t_, L.out.data(), m.copy_ids_.data(), n, d, out, st);
}

void GpuLayers::ada_decode(int64_t l, AdaGpuLayer& L, const void* x, int64_t i, void* out) {
  const ArchSpec& a = m.a_;
  const int64_t d = a.d_model, qd = a.n_heads * a.head_dim, p = start + i;
  const size_t es = dtype_size(m.t_);
  const bool all = s.ada->queries == AdaQueries::all;
  if (!L.selector) {
    CASCADE_CHECK(L.z.has_value(), "ADA GPU sequence without a prefill");
    L.selector.emplace(*L.z, L.sel, s.ada->select);
    L.z.reset();
  }
  const select::IncrementalSelector::Step step = L.selector->step(ada_features_f32(x, 1));
  L.rep_index.push_back(step.is_rep ? int32_t(L.r) : -1);
  if (s.ada->proportional) {  // n_s now that this token is counted
    if (step.is_rep) L.counts.push_back(1);
    else ++L.counts[size_t(L.rep_index[size_t(step.parent)])];
  }
  if (!step.is_rep && !all) {  // the parent's sub-layer output
    const int64_t j = L.rep_index[size_t(step.parent)];
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(out, L.out.data() + size_t(j * d) * es, size_t(d) * es, cudaMemcpyDeviceToDevice, st));
    return;
  }
  const int64_t* pos = m.pos_.data() + i;  // this token's position on the device
  ada_project(l, x, 1, pos);
  if (step.is_rep) {
    ada_reserve(L, L.r + 1);
    L.rep_pos.push_back(p);
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(L.rep_pos_d.data() + size_t(L.r) * 8, pos, 8, cudaMemcpyDeviceToDevice, st));
    ada_append(L, 1);
    ++L.r;
  }
  const int64_t ld = qd + 2 * a.n_kv_heads * a.head_dim;
  ops::gpu::AttentionArgs g = ada_args(L, m.qkv_.data(), ld, 1, pos, m.o_.data());
  if (s.ada->proportional) {
    std::vector<float> bias(L.counts.size());
    for (size_t j = 0; j < bias.size(); ++j) bias[j] = float(std::log(double(L.counts[j])));
    m.bias_.reserve(bias.size());
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(m.bias_.data(), bias.data(), bias.size() * 4, cudaMemcpyHostToDevice, st));
    g.bias = m.bias_.data();
    g.ldbias = int64_t(bias.size());
  }
  if (!step.is_rep) {  // queries=all: a non-representative also sees its own key
    m.own_mask_.reserve(1);
    CASCADE_CUDA_CHECK(cudaMemsetAsync(m.own_mask_.data(), 1, 1, st));
    ada_own_keys(g, m.own_mask_.data());
  }
  timed_attention(g);
  if (!step.is_rep) {
    ada_out(l, 1, out);
    return;
  }
  void* dst = L.out.data() + size_t((L.r - 1) * d) * es;  // kept: a later non-representative copies it
  ada_out(l, 1, dst);
  CASCADE_CUDA_CHECK(cudaMemcpyAsync(out, dst, size_t(d) * es, cudaMemcpyDeviceToDevice, st));
}

}  // namespace cascade::cuda_decoder
