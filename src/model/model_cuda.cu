// The decoder on the GPU, whatever the attention method (its GpuLayerAttention objects, made by
// AttentionFactory::make_gpu, run each layer's attention sub-layer): weights uploaded once
// in the compute dtype (F32, F16 or BF16; norm weights stay float32), activations in that dtype with
// float32 accumulation in every op (src/ops/*_cuda.cu), the per-layer KV cache on the device, logits
// back as float32. The residual wiring is the CPU decoder's own (model/residual_wiring.h); this file
// supplies its steps on device buffers. Q, K and V come from one GEMM against the three weights
// stacked at upload (the methods' GpuAttentionContext points at them).
//
// CUDA graphs (on unless the decoder is made without), for passes whose every layer is capturable
// (exact attention; ADA's one-token decoding steps, decided on the device): a forward's
// device work is captured on its second occurrence and replayed while nothing its kernels read from
// the host changes (GraphSlot's key: the token count, the start for a prefill, the scratch buffers'
// addresses, and each layer's GpuLayerAttention::graph_key). A decoding step depends on its position
// only through device memory (positions uploaded before the graph runs), so one graph serves every
// step until a cache grows. Types: model/cuda_decoder.cuh.
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

CudaDecoder::CudaDecoder(const ArchSpec& a, const StoredWeights& w, const ops::Rotary& r, DType t, bool graphs,
                         ops::AttentionKernel kernel)
    : a_(a), t_(t), graphs_(graphs), kernel_(kernel) {
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

std::unique_ptr<DeviceSequence> CudaDecoder::new_sequence(const AttentionFactory& method, PhaseTimes* times) const {
  std::vector<GpuAttentionContext> ctx(layers_.size());
  for (size_t l = 0; l < layers_.size(); ++l) {
    GpuAttentionContext& c = ctx[l];
    c.spec = &a_;
    c.dtype = t_;
    c.layer = int(l);
    c.qkv = layers_[l].qkv.view();
    c.o = layers_[l].o.view();
    c.rot_style = rot_style_;
    c.rot_dim = rot_dim_;
    c.inv_freq = inv_freq_.data();
    c.iota = iota_.data();
    c.times = times;
    c.attention_kernel = kernel_;
  }
  auto s = std::make_unique<CudaSequence>();
  s->layers = method.make_gpu(ctx);
  CASCADE_CHECK(s->layers.size() == layers_.size(), "attention method made ", s->layers.size(), " GPU layers for ",
                layers_.size());
  s->times = times;
  return s;
}

GpuPass CudaDecoder::pass(int64_t n, int64_t start) const {
  GpuPass p;
  p.n = n;
  p.start = start;
  p.pos = pos_.data();
  p.st = cuda::context().stream;
  p.qkv = qkv_.data();
  p.o = o_.data();
  p.timer = &timer_;
  return p;
}

bool CudaDecoder::run(CudaSequence& s, std::span<const int32_t> tokens, int64_t start, bool last_only) const {
  cudaStream_t st = cuda::context().stream;
  const ArchSpec& a = a_;
  const int64_t n = int64_t(tokens.size()), d = a.d_model, e = a.d_embed, V = a.vocab_size;
  const int64_t qd = a.n_heads * a.head_dim, kd = a.n_kv_heads * a.head_dim;
  const size_t es = dtype_size(t_);
  CASCADE_CHECK(start == s.len, "GPU sequence out of step: at ", s.len, ", asked to continue at ", start);
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

  const GpuPass p = pass(n, start);
  bool graph = graphs_;
  for (const auto& l : s.layers) {
    l->prepare(p);
    graph = graph && l->capturable(p);
  }
  if (graph) graph_pass(s, n, start, last_only);
  else device_pass(s, n, start, last_only, true);
  s.len = start + n;
  return graph;
}

void CudaDecoder::collect_times(CudaSequence& s, bool graph) const {
  if (graph) s.times->attention = std::numeric_limits<double>::quiet_NaN();  // not measured inside a graph
  else s.times->attention += timer_.seconds();
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

DeviceLogits CudaDecoder::forward_on_device(DeviceSequence& base, std::span<const int32_t> tokens, int64_t start,
                                            bool last_only) const {
  auto& s = static_cast<CudaSequence&>(base);
  cudaStream_t st = cuda::context().stream;
  const bool graph = run(s, tokens, start, last_only);
  DeviceLogits out;
  out.rows = last_only ? 1 : int64_t(tokens.size());
  out.vocab = a_.vocab_size;
  CASCADE_CUDA_CHECK(cudaGetDevice(&out.device));
  const size_t bytes = size_t(out.rows * out.vocab) * 4;
  float* p = nullptr;
  CASCADE_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), bytes));
  out.memory = std::shared_ptr<float>(p, [](float* q) { cudaFree(q); });
  CASCADE_CUDA_CHECK(cudaMemcpyAsync(p, logits_.data(), bytes, cudaMemcpyDeviceToDevice, st));
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
    ops::gpu::linear({.t = t_, .x = emb_.data(), .ldx = e, .n = n, .w = project_in_.w.data(), .in = e, .out = d,
                      .bias = project_in_.b.size() ? project_in_.b.data() : nullptr, .yt = t_, .y = h_.data(), .ldy = d},
                     st);
  } else {
    ops::gpu::embed(t_, embed_.data(), ids_.data(), n, e, h_.data(), st);
  }
  if (a.learned_positions) ops::gpu::add_positions(t_, positions_.data(), pos_.data(), a.position_offset, n, d, h_.data(), st);

  timer_.start_pass(timed);
  GpuLayers backend{*this, s, pass(n, start)};
  for (int64_t l = 0; l < a.n_layers; ++l) residual_layer(a, backend, l, h_.data(), x_.data(), att_.data(), ff_.data());

  // Final norm, project_out, head (float32 logits) on the rows asked for.
  const int64_t first = last_only ? n - 1 : 0, rows = n - first;
  void* hr = at(h_.data(), first * d, t_);
  if (a.final_norm)
    ops::gpu::norm({.t = t_, .kind = a.norm, .h = hr, .gamma = final_norm_.g.data(),
                    .beta = final_norm_.b.size() ? final_norm_.b.data() : nullptr, .eps = a.norm_eps, .n = rows, .d = d,
                    .y = x_.data()},
                   st);
  else
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(x_.data(), hr, size_t(rows * d) * es, cudaMemcpyDeviceToDevice, st));
  const void* head_in = x_.data();
  if (project_out_.present()) {
    ops::gpu::linear({.t = t_, .x = x_.data(), .ldx = d, .n = rows, .w = project_out_.w.data(), .in = d, .out = e,
                      .bias = project_out_.b.size() ? project_out_.b.data() : nullptr, .yt = t_, .y = emb_.data(), .ldy = e},
                     st);
    head_in = emb_.data();
  }
  const void* hw = head_tied_ ? static_cast<const void*>(embed_.data()) : head_.w.data();
  const void* hb = !head_tied_ && head_.b.size() ? head_.b.data() : nullptr;
  ops::gpu::linear({.t = t_, .x = head_in, .ldx = e, .n = rows, .w = hw, .in = e, .out = V, .bias = hb, .yt = DType::F32,
                    .y = logits_.data(), .ldy = V},
                   st);
}

void CudaDecoder::graph_pass(CudaSequence& s, int64_t n, int64_t start, bool last_only) const {
  cudaStream_t st = cuda::context().stream;
  const bool decode = n < kDecodeRows;
  GraphSlot& slot = decode ? decode_graph_ : prefill_graph_;
  GraphKey layer_key;
  for (const auto& l : s.layers) l->graph_key(layer_key);
  std::vector<uintptr_t> key = {uintptr_t(n), uintptr_t(last_only), uintptr_t(decode ? -1 : start)};
  key.insert(key.end(), layer_key.shape.begin(), layer_key.shape.end());
  const size_t shape_end = key.size();
  key.insert(key.end(), layer_key.buffers.begin(), layer_key.buffers.end());
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
    const bool same_shape = slot.exec && slot.key.size() == key.size() &&
                            std::equal(key.begin(), key.begin() + ptrdiff_t(shape_end), slot.key.begin());
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
                                                 DType dtype, bool graphs, ops::AttentionKernel kernel) {
  cuda::require_gpu();
  return std::make_unique<cuda_decoder::CudaDecoder>(spec, w, rotary, dtype, graphs, kernel);
}

}  // namespace cascade
