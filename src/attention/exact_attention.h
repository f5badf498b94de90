// Exact causal attention with a growing key/value cache: the baseline of every comparison.
#pragma once
#include "model/layer_attention.h"

namespace cascade {

class ExactAttentionFactory : public AttentionFactory {
 public:
  std::vector<std::unique_ptr<LayerAttention>> make(const std::vector<AttentionContext>& layers) const override;
};

}  // namespace cascade
