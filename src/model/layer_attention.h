// The swappable attention step. The decoder hands each layer's attention sub-layer the features X_l
// (the output of the pre-attention norm, SPEC "selection features") of the new tokens and takes back
// the sub-layer output after the output projection. Exact attention and ADA (attention/) implement
// it; each object owns that layer's cache for one sequence, so prefill and token-by-token decoding
// go through the same call.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "arch/arch_spec.h"
#include "model/weights.h"
#include "ops/rotary.h"

namespace cascade {

// Wall time per phase, accumulated over a sequence (seconds).
struct PhaseTimes {
  double selection = 0, projections = 0, attention = 0, total = 0;
};

// What an attention sub-layer needs from the model.
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
};

// Builds the per-layer attention objects of one sequence; it may wire layers together (the cascade
// hands layer l's selection to layer l+1).
class AttentionFactory {
 public:
  virtual ~AttentionFactory() = default;
  virtual std::vector<std::unique_ptr<LayerAttention>> make(const std::vector<AttentionContext>& layers) const = 0;
};

}  // namespace cascade
