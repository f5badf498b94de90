// Exact attention that also selects: each layer runs exact attention as usual and, on the side,
// the full selection (SPEC 1) and the exact cascade (SPEC 2) on its own features X_l. Nothing of
// the selection reaches the model, so the sets are those of the model's real activations.
//
// Why the study needs it: under ADA a non-representative copies its parent's attention output, so
// the next layer's features are ADA's, not the model's, and an exact duplicate stays a duplicate
// at every depth. Coherence across layers and the cascade's savings measured along ADA's own
// trajectory are therefore not the same quantity as on the model's activations; the study reports
// both (configuration `exact-trajectory`).
#pragma once
#include <memory>
#include <vector>

#include "attention/layer_attention.h"
#include "select/selection.h"

namespace cascade {

struct ObservedSelections {
  select::Selection full;     // on this layer's features
  select::Selection cascade;  // from the layer below's cascade set (layer 0: the full selection)
};

class ObservingFactory : public AttentionFactory {
 public:
  explicit ObservingFactory(select::Options o);  // greedy rule (the cascade's), validated
  std::vector<std::unique_ptr<LayerAttention>> make(const std::vector<AttentionContext>& layers) const override;

 private:
  select::Options o_;
};

// The selections a layer built by ObservingFactory made on its prefill (nullptr for any other layer).
const ObservedSelections* observed_selections(const LayerAttention& layer);

}  // namespace cascade
