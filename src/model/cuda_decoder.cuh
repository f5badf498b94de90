// The GPU decoder's types (model/model_cuda.cu): a sequence's state (its layers' GpuLayerAttention
// objects), the CudaDecoder and GpuLayers, the steps of model/residual_wiring.h on device buffers;
// the device weights are in model/device_weights.cuh. CUDA code only; internal to model_cuda.cu
// (everything else reaches the decoder through model/device_decoder.h, and the attention methods
// through attention/gpu_attention.cuh).
#pragma once
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "arch/arch_spec.h"
#include "arch/weights.h"
#include "attention/gpu_attention.cuh"
#include "core/error.h"
#include "cuda/context.h"
#include "model/device_decoder.h"
#include "model/device_weights.cuh"
#include "ops/activation.h"
#include "ops/cuda_ops.h"
#include "ops/rotary.h"

namespace cascade::cuda_decoder {

// A captured forward: the values its kernels' arguments were taken from, and its executable graph.
// A key is captured on its second forward in a row (seen: the last one launched without a graph),
// so a one-off forward (a prompt's prefill) does not pay for a capture it would never replay.
struct GraphSlot {
  std::vector<uintptr_t> key, seen;
  cudaGraphExec_t exec = nullptr;
  GraphSlot() = default;
  GraphSlot(const GraphSlot&) = delete;
  GraphSlot& operator=(const GraphSlot&) = delete;
  ~GraphSlot() {
    if (exec) cudaGraphExecDestroy(exec);
  }
};

// Passes of fewer tokens are decoding steps: one graph serves every step (see GpuLayerAttention).
constexpr int64_t kDecodeRows = ops::gpu::kTileMinQueries;

class CudaSequence : public DeviceSequence {
 public:
  std::vector<std::unique_ptr<GpuLayerAttention>> layers;
  PhaseTimes* times = nullptr;
  int64_t len = 0;
  int64_t cache_bytes() const override {
    int64_t b = 0;
    for (const auto& l : layers) b += l->cache_bytes();
    return b;
  }
  const AdaLayerTrace* trace(int64_t l) const override {
    return l >= 0 && l < int64_t(layers.size()) ? layers[size_t(l)]->trace() : nullptr;
  }
};

class CudaDecoder : public DeviceDecoder {
 public:
  CudaDecoder(const ArchSpec& a, const StoredWeights& w, const ops::Rotary& r, DType t, bool graphs,
              ops::AttentionKernel kernel);

  DType dtype() const override { return t_; }
  std::unique_ptr<DeviceSequence> new_sequence(const AttentionFactory& method, PhaseTimes* times) const override;
  Tensor forward(DeviceSequence& base, std::span<const int32_t> tokens, int64_t start, bool last_only) const override;
  DeviceLogits forward_on_device(DeviceSequence& base, std::span<const int32_t> tokens, int64_t start,
                                 bool last_only) const override;
  std::vector<double> forward_nll(DeviceSequence& base, std::span<const int32_t> tokens, int64_t start,
                                  int64_t first_row) const override;

 private:
  friend struct GpuLayers;
  // The device work of a forward whose ids and positions are uploaded: embeddings, layers, head into
  // logits_. timed: CUDA events around each attention kernel (not inside a graph).
  void device_pass(CudaSequence& s, int64_t n, int64_t start, bool last_only, bool timed) const;
  // The forward up to the logits in logits_ (buffers sized, ids and positions uploaded, every layer
  // prepared, the device work with or without a graph); returns whether a graph ran.
  bool run(CudaSequence& s, std::span<const int32_t> tokens, int64_t start, bool last_only) const;
  // After run() and the stream's synchronisation: the attention kernels' time, or NaN under a graph.
  void collect_times(CudaSequence& s, bool graph) const;
  // device_pass through the slot's graph: captured (or the slot's graph updated) when its key differs.
  void graph_pass(CudaSequence& s, int64_t n, int64_t start, bool last_only) const;
  // What a layer is given for the pass of n tokens at start.
  GpuPass pass(int64_t n, int64_t start) const;

  ArchSpec a_;
  DType t_;
  bool graphs_;
  ops::AttentionKernel kernel_;
  Bytes embed_, positions_;
  DevLinear project_in_, project_out_, head_;
  bool head_tied_ = false;
  std::vector<DevLayer> layers_;
  DevNorm final_norm_;
  cuda::Buffer<float> inv_freq_;
  RotaryStyle rot_style_ = RotaryStyle::None;
  int64_t rot_dim_ = 0;
  cuda::Buffer<int64_t> iota_;
  // Scratch, grown on demand (one forward at a time per model).
  mutable Bytes h_, x_, att_, ff_, qkv_, o_, hid_, hid2_, emb_;
  mutable cuda::Buffer<int32_t> ids_;
  mutable cuda::Buffer<int64_t> pos_;  // the forward's positions, start .. start + n - 1
  mutable GraphSlot decode_graph_, prefill_graph_;
  mutable cuda::Buffer<float> logits_;
  mutable cuda::Buffer<double> nll_;
  mutable AttentionTimer timer_;
};

// The steps of residual_layer on device buffers (see model/residual_wiring.h).
struct GpuLayers {
  using Ptr = void*;
  const CudaDecoder& m;
  CudaSequence& s;
  GpuPass p;

  int64_t n() const { return p.n; }
  const DevNorm& nw(int64_t l, int which) const { return which == 1 ? m.layers_[size_t(l)].n1 : m.layers_[size_t(l)].n2; }
  void norm(int64_t l, int which, void* src, void* dst) { add_norm(l, which, src, nullptr, dst); }
  void add_norm(int64_t l, int which, void* h, void* add, void* dst) {
    const DevNorm& w = nw(l, which);
    ops::gpu::norm({.t = m.t_, .kind = m.a_.norm, .h = h, .add = add, .gamma = w.g.data(),
                    .beta = w.b.size() ? w.b.data() : nullptr, .eps = m.a_.norm_eps, .n = n(), .d = m.a_.d_model, .y = dst},
                   p.st);
  }
  ops::gpu::LinearArgs lin_args(const DevLinear& w, const void* x, void* y, ops::gpu::Epilogue act = ops::gpu::Epilogue::None) {
    return {.t = m.t_, .x = x, .ldx = w.in, .n = n(), .w = w.w.data(), .in = w.in, .out = w.out,
            .bias = w.b.size() ? w.b.data() : nullptr, .yt = m.t_, .y = y, .ldy = w.out, .act = act};
  }
  void lin(const DevLinear& w, const void* x, void* y, ops::gpu::Epilogue act = ops::gpu::Epilogue::None) {
    ops::gpu::linear(lin_args(w, x, y, act), p.st);
  }
  void attention(int64_t l, void* x, void* out) { s.layers[size_t(l)]->forward(p, x, out); }
  void mlp(int64_t l, void* x, void* out) {
    const DevLayer& w = m.layers_[size_t(l)];
    const int64_t nf = n() * m.a_.d_ff;
    if (ops::is_glu(m.a_.act)) {  // act(gate) * up in one op (one pass over both weights while decoding)
      ops::gpu::linear_glu({.gate = lin_args(w.gate, x, m.hid2_.data()), .up_w = w.up.w.data(),
                            .up_bias = w.up.b.size() ? w.up.b.data() : nullptr, .act = m.a_.act, .scratch = m.hid_.data()},
                           p.st);
      lin(w.down, m.hid2_.data(), out);
    } else {
      // ReLU (and GELU-tanh in 16-bit dtypes) in the up projection's epilogue, else its own kernel.
      if (ops::gpu::linear_fuses(m.a_.act, m.t_) == ops::gpu::Epilogue::None) {
        lin(w.up, x, m.hid_.data());
        ops::gpu::activation(m.t_, m.a_.act, m.hid_.data(), nullptr, nf, p.st);
      } else {
        lin(w.up, x, m.hid_.data(), ops::gpu::linear_fuses(m.a_.act, m.t_));
      }
      lin(w.down, m.hid_.data(), out);
    }
  }
  void add(void* h, void* x) { ops::gpu::add(m.t_, h, x, nullptr, n() * m.a_.d_model, p.st); }
  void add2(void* h, void* x, void* x2) { ops::gpu::add(m.t_, h, x, x2, n() * m.a_.d_model, p.st); }
};

}  // namespace cascade::cuda_decoder
