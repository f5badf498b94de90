// The decoder on the GPU, exact attention or ADA (SPEC 3-4: GpuLayers::ada_*): weights uploaded once
// in the compute dtype (F32, F16 or BF16; norm weights stay float32), activations in that dtype with
// float32 accumulation in every op (src/ops/*_cuda.cu), the per-layer KV cache on the device, logits
// back as float32. The residual wiring is the CPU decoder's own (model/residual_wiring.h); this file
// supplies its steps on device buffers. Q, K and V come from one GEMM against the three weights
// stacked at upload.
//
// CUDA graphs (exact attention; on unless the decoder is made without): a forward's device work is
// captured on its second occurrence and replayed while nothing its kernels read from the host
// changes (GraphSlot's key: the token count, the buffers' addresses, the cache's capacity, and the
// start for a prefill). A decoding step depends on its position only through device memory
// (positions uploaded before the graph runs, K and V scattered to their rows by position, attention
// over the whole cache masked by position), so one graph serves every step until the cache grows.
// ADA is not captured: its selection comes back to the host every layer. Types: model/cuda_decoder.cuh;
// the ADA step: attention/ada_attention_cuda.cu.
#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "cuda/runtime.h"
#include "model/cuda_decoder.cuh"
#include "model/residual_wiring.h"

namespace cascade {

namespace cuda_decoder {

CudaDecoder::CudaDecoder(const ArchSpec& a, const StoredWeights& w, const ops::Rotary& r, DType t, bool graphs)
    : a_(a), t_(t), graphs_(graphs) {
  CASCADE_CHECK(t == DType::F32 || t == DType::F16 || t == DType::BF16, "--dtype: ", dtype_name(t),
                " is not a compute dtype");
  CASCADE_CHECK(ops::gpu::attention_supports(a.head_dim), "--device cuda: head size ", a.head_dim,
                " has no GPU attention kernel (at most 256)");
  cuda::Context& ctx = cuda::context();
  {  // keep freed KV caches in the stream-ordered pool for the next sequence
    int dev = 0;
    cudaMemPool_t pool;
    CASCADE_CUDA_CHECK(cudaGetDevice(&dev));
    CASCADE_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
    uint64_t keep = ~uint64_t(0);
    CASCADE_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
  }
  DeviceWeights dw = upload_weights(a, w, t);
  embed_ = std::move(dw.embed);
  positions_ = std::move(dw.positions);
  project_in_ = std::move(dw.project_in);
  project_out_ = std::move(dw.project_out);
  layers_ = std::move(dw.layers);
  final_norm_ = std::move(dw.final_norm);
  head_tied_ = dw.head_tied;
  head_ = std::move(dw.head);
  if (r.enabled()) inv_freq_ = cuda::Buffer<float>::from_host(r.inv_freq());
  rot_style_ = r.style();
  rot_dim_ = r.dim();
  std::vector<int64_t> iota(size_t(a.max_positions));
  for (int64_t i = 0; i < a.max_positions; ++i) iota[size_t(i)] = i;
  iota_ = cuda::Buffer<int64_t>::from_host(iota, ctx.stream);
}

void CudaDecoder::reserve_cache(CudaSequence& s, int64_t need, cudaStream_t st) const {
  if (need <= s.cap) return;
  const int64_t cap = std::min(a_.max_positions, std::max({need, 2 * s.cap, int64_t(256)}));
  for (size_t l = 0; l < s.k.size(); ++l) {
    PoolBytes k(size_t(cap * s.row_bytes), st), v(size_t(cap * s.row_bytes), st);
    if (s.len) {
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(k.data(), s.k[l].data(), size_t(s.len * s.row_bytes), cudaMemcpyDeviceToDevice, st));
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(v.data(), s.v[l].data(), size_t(s.len * s.row_bytes), cudaMemcpyDeviceToDevice, st));
    }
    s.k[l] = std::move(k);  // the old buffers are freed in stream order, after the copies
    s.v[l] = std::move(v);
  }
  s.cap = cap;
}

bool CudaDecoder::run(CudaSequence& s, std::span<const int32_t> tokens, int64_t start, bool last_only) const {
  cudaStream_t st = cuda::context().stream;
  const ArchSpec& a = a_;
  const int64_t n = int64_t(tokens.size()), d = a.d_model, e = a.d_embed, V = a.vocab_size;
  const int64_t qd = a.n_heads * a.head_dim, kd = a.n_kv_heads * a.head_dim;
  const size_t es = dtype_size(t_);
  CASCADE_CHECK(start == s.len, "GPU sequence out of step: at ", s.len, ", asked to continue at ", start);
  if (!s.ada) reserve_cache(s, start + n, st);
  events_used_ = 0;
  // Every buffer the device work touches is sized here, before any capture (no allocation inside).
  for (Bytes* b : {&h_, &x_, &att_, &ff_}) b->reserve(size_t(n * d) * es);
  qkv_.reserve(size_t(n * (qd + 2 * kd)) * es);
  o_.reserve(size_t(n * qd) * es);
  hid_.reserve(size_t(n * a.d_ff) * es);
  if (ops::is_glu(a.act)) hid2_.reserve(size_t(n * a.d_ff) * es);
  emb_.reserve(size_t(n * e) * es);
  ids_.reserve(size_t(n));
  pos_.reserve(size_t(n));
  logits_.reserve(size_t((last_only ? 1 : n) * V));
  std::vector<int64_t> pos(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pos[size_t(i)] = start + i;
  CASCADE_CUDA_CHECK(cudaMemcpyAsync(ids_.data(), tokens.data(), size_t(n) * 4, cudaMemcpyHostToDevice, st));
  CASCADE_CUDA_CHECK(cudaMemcpyAsync(pos_.data(), pos.data(), size_t(n) * 8, cudaMemcpyHostToDevice, st));

  const bool graph = graphs_ && !s.ada;
  if (graph) graph_pass(s, n, start, last_only);
  else device_pass(s, n, start, last_only, true);
  s.len = start + n;
  return graph;
}

void CudaDecoder::collect_times(CudaSequence& s, bool graph) const {
  if (graph) {
    s.times.attention = std::numeric_limits<double>::quiet_NaN();  // not measured inside a graph
    return;
  }
  for (size_t i = 0; i + 1 < events_used_; i += 2) {
    float ms = 0;
    CASCADE_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[i], events_[i + 1]));
    s.times.attention += ms * 1e-3;
  }
}

Tensor CudaDecoder::forward(DeviceSequence& base, std::span<const int32_t> tokens, int64_t start, bool last_only) const {
  auto& s = static_cast<CudaSequence&>(base);
  cudaStream_t st = cuda::context().stream;
  const bool graph = run(s, tokens, start, last_only);
  const int64_t rows = last_only ? 1 : int64_t(tokens.size()), V = a_.vocab_size;
  Tensor out = Tensor::zeros({rows, V});
  CASCADE_CUDA_CHECK(cudaMemcpyAsync(out.data(), logits_.data(), size_t(rows * V) * 4, cudaMemcpyDeviceToHost, st));
  CASCADE_CUDA_CHECK(cudaStreamSynchronize(st));
  collect_times(s, graph);
  return out;
}

std::vector<double> CudaDecoder::forward_nll(DeviceSequence& base, std::span<const int32_t> tokens, int64_t start,
                                             int64_t first_row) const {
  auto& s = static_cast<CudaSequence&>(base);
  cudaStream_t st = cuda::context().stream;
  const int64_t n = int64_t(tokens.size()), rows = n - 1 - first_row, V = a_.vocab_size;
  const bool graph = run(s, tokens, start, false);
  nll_.reserve(size_t(std::max<int64_t>(1, rows)));
  // Row r's target is token r + 1, already on the device in ids_.
  ops::gpu::token_nll(logits_.data() + first_row * V, rows, V, ids_.data() + first_row + 1, nll_.data(), st);
  std::vector<double> out = nll_.download(size_t(rows), st);  // synchronises the stream
  collect_times(s, graph);
  return out;
}

void CudaDecoder::device_pass(CudaSequence& s, int64_t n, int64_t start, bool last_only, bool timed) const {
  cudaStream_t st = cuda::context().stream;
  const ArchSpec& a = a_;
  const int64_t d = a.d_model, e = a.d_embed, V = a.vocab_size;
  const size_t es = dtype_size(t_);
  // Embeddings (OPT: project_in), learned positions.
  if (project_in_.present()) {
    ops::gpu::embed(t_, embed_.data(), ids_.data(), n, e, emb_.data(), st);
    ops::gpu::linear(t_, emb_.data(), e, n, project_in_.w.data(), e, d, project_in_.b.size() ? project_in_.b.data() : nullptr,
                     t_, h_.data(), d, st);
  } else {
    ops::gpu::embed(t_, embed_.data(), ids_.data(), n, e, h_.data(), st);
  }
  if (a.learned_positions) ops::gpu::add_positions(t_, positions_.data(), pos_.data(), a.position_offset, n, d, h_.data(), st);

  GpuLayers backend{*this, s, n, start, st, timed};
  for (int64_t l = 0; l < a.n_layers; ++l) residual_layer(a, backend, l, h_.data(), x_.data(), att_.data(), ff_.data());

  // Final norm, project_out, head (float32 logits) on the rows asked for.
  const int64_t first = last_only ? n - 1 : 0, rows = n - first;
  void* hr = at<void>(h_.data(), first * d, t_);
  if (a.final_norm)
    ops::gpu::norm(t_, a.norm, hr, nullptr, final_norm_.g.data(), final_norm_.b.size() ? final_norm_.b.data() : nullptr,
                   a.norm_eps, rows, d, x_.data(), st);
  else
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(x_.data(), hr, size_t(rows * d) * es, cudaMemcpyDeviceToDevice, st));
  const void* head_in = x_.data();
  if (project_out_.present()) {
    ops::gpu::linear(t_, x_.data(), d, rows, project_out_.w.data(), d, e,
                     project_out_.b.size() ? project_out_.b.data() : nullptr, t_, emb_.data(), e, st);
    head_in = emb_.data();
  }
  const void* hw = head_tied_ ? static_cast<const void*>(embed_.data()) : head_.w.data();
  const void* hb = !head_tied_ && head_.b.size() ? head_.b.data() : nullptr;
  ops::gpu::linear(t_, head_in, e, rows, hw, e, V, hb, DType::F32, logits_.data(), V, st);
}

void CudaDecoder::graph_pass(CudaSequence& s, int64_t n, int64_t start, bool last_only) const {
  cudaStream_t st = cuda::context().stream;
  const bool decode = n < kDecodeRows;
  GraphSlot& slot = decode ? decode_graph_ : prefill_graph_;
  std::vector<uintptr_t> key = {uintptr_t(n), uintptr_t(last_only), uintptr_t(s.cap), uintptr_t(decode ? -1 : start)};
  for (size_t l = 0; l < s.k.size(); ++l) {
    key.push_back(reinterpret_cast<uintptr_t>(s.k[l].data()));
    key.push_back(reinterpret_cast<uintptr_t>(s.v[l].data()));
  }
  for (const void* p : {static_cast<const void*>(h_.data()), static_cast<const void*>(x_.data()),
                        static_cast<const void*>(att_.data()), static_cast<const void*>(ff_.data()),
                        static_cast<const void*>(qkv_.data()), static_cast<const void*>(o_.data()),
                        static_cast<const void*>(hid_.data()), static_cast<const void*>(hid2_.data()),
                        static_cast<const void*>(emb_.data()), static_cast<const void*>(ids_.data()),
                        static_cast<const void*>(pos_.data()), static_cast<const void*>(logits_.data())})
    key.push_back(reinterpret_cast<uintptr_t>(p));
  if (slot.exec && key == slot.key) {
    CASCADE_CUDA_CHECK(cudaGraphLaunch(slot.exec, st));
    return;
  }
  if (key != slot.seen) {  // first sighting: launch the kernels, remember the key
    device_pass(s, n, start, last_only, false);
    slot.seen = std::move(key);
    return;
  }
  {
    cudaGraph_t g = nullptr;
    CASCADE_CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    try {
      device_pass(s, n, start, last_only, false);
    } catch (...) {
      cudaStreamEndCapture(st, &g);  // leaves the stream usable; the partial graph is dropped
      if (g) cudaGraphDestroy(g);
      throw;
    }
    CASCADE_CUDA_CHECK(cudaStreamEndCapture(st, &g));
    // Only the buffers moved (the same shape into a new sequence's cache, e.g. a benchmark's
    // repetitions): update the executable graph in place, which keeps its topology.
    // Anything else changes launch shapes or kernels and is instantiated anew.
    const bool same_shape = slot.exec && std::equal(key.begin(), key.begin() + 4, slot.key.begin());
    cudaGraphExecUpdateResultInfo info;
    if (slot.exec && (!same_shape || cudaGraphExecUpdate(slot.exec, g, &info) != cudaSuccess)) {
      (void)cudaGetLastError();
      cudaGraphExecDestroy(slot.exec);
      slot.exec = nullptr;
    }
    const cudaError_t made = slot.exec ? cudaSuccess : cudaGraphInstantiate(&slot.exec, g, 0);
    cudaGraphDestroy(g);
    CASCADE_CUDA_CHECK(made);
    slot.key = std::move(key);
  }
  CASCADE_CUDA_CHECK(cudaGraphLaunch(slot.exec, st));
}

}  // namespace cuda_decoder

std::unique_ptr<DeviceDecoder> make_cuda_decoder(const ArchSpec& spec, const StoredWeights& w, const ops::Rotary& rotary,
                                                 DType dtype, bool graphs) {
  cuda::require_gpu();
  return std::make_unique<cuda_decoder::CudaDecoder>(spec, w, rotary, dtype, graphs);
}

}  // namespace cascade
