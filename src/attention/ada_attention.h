// ADA attention (SPEC sections 3 and 4): per layer, select representatives from the layer's
// features (full selection at layer 0, then the configured cascade mode from the layer below) and
// run attention on them only.
//  - queries=reps (default): Q, K, V for representatives only, r x r causal attention at original
//    positions; a non-representative copies its parent's sub-layer output.
//  - queries=all: every token's query attends to the representatives before it and to itself.
//  - proportional: logit of representative s for query position t gets + log n_s(t).
// Decoding continues the prefill's selection state token by token (select::IncrementalSelector), so
// token-by-token logits equal the prefill logits of the same sequence (every rule is causal).
// Each layer keeps a trace (selection, costs, attention error) for the study and the Python API.
#pragma once
#include <memory>
#include <vector>

#include "model/layer_attention.h"
#include "select/selection.h"

namespace cascade {

enum class AdaQueries { reps, all };

struct AdaOptions {
  select::Options select;          // tau, similarity, rule
  select::ModeSpec mode;           // how layer l+1 is chosen from layer l
  AdaQueries queries = AdaQueries::reps;
  bool proportional = false;
  bool measure_error = false;      // also run exact attention on the same input (study only)
  bool compare_full = false;       // also run the full selection on the same features (study only;
                                   // its cost and time are not counted in the layer's)
};

// What one layer did on the prefill, plus decode-time counts.
struct AdaLayerTrace {
  select::Selection selection;     // of the prefill
  double attention_error = -1;     // ||O_ada - O_full||_F / ||O_full||_F on the same input; -1 if not measured
  double jaccard_vs_full = -1;     // Jaccard(this layer's set, full selection on the same features); -1 if not compared
  int64_t decode_reps = 0, decode_tokens = 0;  // tokens appended after the prefill, and how many were reps
  select::GramCounts decode_cost;
};

class AdaAttentionFactory : public AttentionFactory {
 public:
  explicit AdaAttentionFactory(AdaOptions o);  // validates the options (cascade::Error)
  std::vector<std::unique_ptr<LayerAttention>> make(const std::vector<AttentionContext>& layers) const override;
  const AdaOptions& options() const { return o_; }

 private:
  AdaOptions o_;
};

// The trace of a layer of a sequence built by AdaAttentionFactory (nullptr for any other attention).
const AdaLayerTrace* ada_trace(const LayerAttention& layer);

}  // namespace cascade
