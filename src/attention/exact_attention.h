// Exact causal attention with a growing key/value cache: the baseline of every comparison. CPU
// layers in exact_attention.cc, GPU layers in exact_attention_cuda.cu.
#pragma once
#include "attention/layer_attention.h"

namespace cascade {

class ExactAttentionFactory : public AttentionFactory {
 public:
  std::vector<std::unique_ptr<LayerAttention>> make(const std::vector<AttentionContext>& layers) const override;
  std::vector<std::unique_ptr<GpuLayerAttention>> make_gpu(const std::vector<GpuAttentionContext>& layers) const override;
  void check_gpu() const override {}
};

}  // namespace cascade
