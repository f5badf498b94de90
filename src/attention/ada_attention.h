// ADA attention (SPEC sections 3 and 4): per layer, select representatives from the layer's
// features (full selection at layer 0, then the configured cascade mode from the layer below) and
// run attention on them only, as the layer's AdaPlan (attention/ada_plan.h) says:
//  - queries=reps (default): Q, K, V for representatives only, r x r causal attention at original
//    positions; a non-representative copies its parent's sub-layer output.
//  - queries=all: every token's query attends to the representatives before it and to itself.
//  - proportional: logit of representative s for query position t gets + log n_s(t).
//  - SPEC 6: reconstruct lstsq (reps: a non-representative takes a least-squares mix of at most 8
//    earlier representatives' outputs), sinks N and window W (all: extra keys 0..N-1, t-W+1..t).
// Decoding continues the prefill's selection state token by token, so token-by-token logits equal
// the prefill logits of the same sequence (every rule is causal). Each layer keeps a trace
// (selection over every token seen, costs, attention error) for the study and the Python API.
// Variants (SPEC 6): the features selected on (the layer's input X_l, or its keys after rotary), the
// rule (select::Rule, span included), and dense layers: layers 0..K-1 run exact attention (their
// trace: every token a representative), layer K the full selection, the cascade continuing from it.
// The CPU layers are in ada_attention.cc, the GPU layers in ada_attention_cuda.cu.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "attention/ada_plan.h"
#include "attention/layer_attention.h"
#include "select/gpu_selection.h"
#include "select/selection.h"

namespace cascade {

// What a layer selects on: hidden = X_l [T, d_model] (SPEC notation); keys = the layer's keys after
// rotary, all KV heads concatenated [T, n_kv_heads * head_dim] (position-aware on a rotary model).
enum class AdaFeatures { hidden, keys };
AdaFeatures parse_ada_features(const std::string& text);  // "hidden" | "keys"; cascade::Error otherwise

struct AdaOptions {
  select::Options select;          // tau, similarity, rule
  AdaFeatures features = AdaFeatures::hidden;
  // Layers 0..dense_layers-1 run exact attention, layer dense_layers the full selection; a count at or
  // past the model's layers makes every layer exact (clamped: one setting fits models of any depth).
  int64_t dense_layers = 0;
  select::ModeSpec mode;           // how layer l+1 is chosen from layer l
  AdaQueries queries = AdaQueries::reps;
  bool proportional = false;
  AdaReconstruct reconstruct = AdaReconstruct::copy;  // SPEC 6, queries=reps
  int64_t sinks = 0, window = 0;                      // SPEC 6, queries=all
  // The GPU selection's Gram (select/gpu_selection.h); the CPU's is float64 always. f16-certified by
  // default: f64's selection (tests), faster at T >= 8192 (BENCHMARKS.md "certified fp16 selection").
  select::gpu::Precision gram_precision = select::gpu::Precision::f16_certified;
  bool measure_error = false;      // also run exact attention on the same input (study only)
  bool compare_full = false;       // also run the full selection on the same features (study only;
                                   // its cost and time are not counted in the layer's)
  AdaPlanOptions plan() const { return {queries, proportional, reconstruct, sinks, window}; }
};

class AdaAttentionFactory : public AttentionFactory {
 public:
  // Validates the options (cascade::Error): lstsq needs queries=reps, sinks and window queries=all.
  explicit AdaAttentionFactory(AdaOptions o);
  std::vector<std::unique_ptr<LayerAttention>> make(const std::vector<AttentionContext>& layers) const override;
  std::vector<std::unique_ptr<GpuLayerAttention>> make_gpu(const std::vector<GpuAttentionContext>& layers) const override;
  // The GPU runs --select full or cascade, --rule greedy or span (span: the features come back to
  // the host and the CPU's selection runs), either features, dense layers, either query mode, with or
  // without --proportional, the SPEC-6 variants of the plan and the study's measurements.
  void check_gpu() const override;
  const AdaOptions& options() const { return o_; }

 private:
  AdaOptions o_;
};

// A dense layer's trace after n more tokens: each one a representative (exact attention keeps all).
void extend_dense(AdaLayerTrace& trace, int64_t n);

}  // namespace cascade
