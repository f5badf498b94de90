// The attention interface, one per device. The decoders (model/) run a layer's attention sub-layer
// through it and never know which method runs: an AttentionFactory (exact attention, ADA, ...) makes
// one object per layer of a sequence, LayerAttention on the CPU or GpuLayerAttention on the GPU. Each
// object gets the layer's features X_l (the pre-attention norm's output, SPEC "selection features")
// of the new tokens, returns the sub-layer output after the output projection, and owns that layer's
// cache for one sequence, so prefill and token-by-token decoding go through the same call.
// A method is one implementation per device: its CPU layers in attention/<method>.cc, its GPU layers
// in attention/<method>_cuda.cu (their device types in attention/gpu_attention.cuh).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "arch/arch_spec.h"
#include "arch/weights.h"
#include "ops/rotary.h"
#include "select/selection.h"

namespace cascade {

// Wall time per phase, accumulated over a sequence (seconds).
struct PhaseTimes {
  double selection = 0, projections = 0, attention = 0, total = 0;
};

// What a selection-based method (ADA) chose in one layer: its selection over every token seen so far
// (the prefill's, extended by each decoded token's decision) and the study's measurements.
struct AdaLayerTrace {
  select::Selection selection;
  double attention_error = -1;     // ||O_ada - O_full||_F / ||O_full||_F on the same input; -1 if not measured
  double jaccard_vs_full = -1;     // Jaccard(this layer's set, full selection on the same features); -1 if not compared
  int64_t decode_reps = 0, decode_tokens = 0;  // tokens appended after the prefill, and how many were reps
};

// What an attention sub-layer needs from the model on the CPU.
struct AttentionContext {
  const ArchSpec* spec = nullptr;
  const LayerWeights* w = nullptr;
  const ops::Rotary* rotary = nullptr;
  int layer = 0;
  PhaseTimes* times = nullptr;
};

class LayerAttention {
 public:
  virtual ~LayerAttention() = default;
  // x: [n, d_model] features of n new tokens at positions pos[0..n) (continuing the cache);
  // out: [n, d_model] the attention sub-layer output after the output projection.
  virtual void forward(const float* x, int64_t n, const int64_t* pos, float* out) = 0;
  virtual int64_t cache_bytes() const = 0;
  // The layer's selection, for methods that select tokens (nullptr otherwise).
  virtual const AdaLayerTrace* trace() const { return nullptr; }
};

struct GpuAttentionContext;  // attention/gpu_attention.cuh
struct GpuPass;

// What a captured pass's kernels took from the host besides the pass's token count and start.
struct GraphKey {
  std::vector<uintptr_t> shape;    // values that fix launch shapes (a cache's capacity): a new graph
  std::vector<uintptr_t> buffers;  // buffer addresses: the graph's arguments are updated in place
};

// A layer's attention on the GPU: buffers are device pointers in the decoder's compute dtype.
class GpuLayerAttention {
 public:
  virtual ~GpuLayerAttention() = default;
  // Before every pass, outside any graph capture (a replayed pass runs no host code of forward):
  // room for p's tokens and the host-side bookkeeping of the pass.
  virtual void prepare(const GpuPass& p) { (void)p; }
  // x: [p.n, d_model] features of the pass's tokens; out: [p.n, d_model] the sub-layer output.
  virtual void forward(const GpuPass& p, const void* x, void* out) = 0;
  // Whether pass p (after prepare(p)) may be captured as a CUDA graph: every argument its kernels read
  // from the host is fixed by the pass's shape and by graph_key (no host round trip inside forward).
  virtual bool capturable(const GpuPass& p) const {
    (void)p;
    return false;
  }
  // Appends what its kernels' arguments were taken from: a graph is replayed only while it is unchanged.
  virtual void graph_key(GraphKey& key) const { (void)key; }
  virtual int64_t cache_bytes() const = 0;
  virtual const AdaLayerTrace* trace() const { return nullptr; }
};

// An attention method: builds the per-layer attention objects of one sequence on either device; it
// may wire layers together (the cascade hands layer l's selection to layer l+1).
class AttentionFactory {
 public:
  virtual ~AttentionFactory() = default;
  virtual std::vector<std::unique_ptr<LayerAttention>> make(const std::vector<AttentionContext>& layers) const = 0;
  // The GPU twin; it throws check_gpu()'s cascade::Error first.
  virtual std::vector<std::unique_ptr<GpuLayerAttention>> make_gpu(const std::vector<GpuAttentionContext>& layers) const;
  // Throws, naming the CPU path, when the GPU twin lacks this method or these options (a method
  // without one, a test's or the study's CPU instrument, always throws); callable before a model
  // is loaded.
  virtual void check_gpu() const;
};

}  // namespace cascade
