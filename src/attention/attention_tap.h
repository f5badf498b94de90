// AttentionTap: any attention method, with each layer's input features and sub-layer output
// recorded (float32 on the host, prefill and decoding rows in order) on either device. What a check
// against an independent statement of a method needs (tests/unit/ada_oracle_test.cc), and what a
// researcher needs to look at a layer. The GPU records synchronise after every layer, so a tapped
// sequence is never captured as a CUDA graph.
#pragma once
#include <memory>
#include <vector>

#include "attention/layer_attention.h"

namespace cascade {

// One layer's recorded rows: x and out are [rows, d] in token order.
struct TapRecord {
  int64_t d = 0;
  std::vector<float> x, out;
  int64_t rows() const { return d ? int64_t(x.size()) / d : 0; }
};

class AttentionTap : public AttentionFactory {
 public:
  // inner: the method that runs (outlives the tap and its sequences).
  explicit AttentionTap(const AttentionFactory& inner) : inner_(inner) {}
  std::vector<std::unique_ptr<LayerAttention>> make(const std::vector<AttentionContext>& layers) const override;
  std::vector<std::unique_ptr<GpuLayerAttention>> make_gpu(const std::vector<GpuAttentionContext>& layers) const override;
  void check_gpu() const override { inner_.check_gpu(); }
  // Per layer, what the sequence made last recorded so far.
  const std::vector<TapRecord>& records() const { return *records_; }

 private:
  const AttentionFactory& inner_;
  mutable std::shared_ptr<std::vector<TapRecord>> records_ = std::make_shared<std::vector<TapRecord>>();
};

}  // namespace cascade
