// The peer KV-cache compression methods (SPEC section 7) through the attention interface: the first
// forward() of a sequence (the context) runs exact attention, then each layer compresses its cache
// to round(budget * C) of its C entries per KV head, chosen as attention/kv_press_scores.h says. Kept
// keys keep their positions (rotary untouched) and each KV head its own set; every later token
// attends causally to its KV head's kept entries and to the tokens appended after the context.
// CPU layers in kv_press.cc, GPU layers in kv_press_cuda.cu (which scores on the host with the same
// code, then gathers the kept entries on the device).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "attention/kv_press_scores.h"
#include "attention/layer_attention.h"

namespace cascade {

struct KvPressOptions {
  press::Method method = press::Method::streaming;
  double budget = 1;  // kept fraction of the context's entries, in (0, 1]
  press::Params params;
};

// What a layer kept of its context (empty until its first forward()).
struct KvPressTrace {
  int64_t context = 0;                     // C, the entries of the first forward()
  std::vector<std::vector<int64_t>> kept;  // per KV head, the kept context positions, increasing
  double kept_fraction() const;            // mean over KV heads of kept / C (1 before the first forward())
};

class KvPressFactory : public AttentionFactory {
 public:
  explicit KvPressFactory(KvPressOptions o);  // cascade::Error for a budget outside (0, 1]
  std::vector<std::unique_ptr<LayerAttention>> make(const std::vector<AttentionContext>& layers) const override;
  std::vector<std::unique_ptr<GpuLayerAttention>> make_gpu(const std::vector<GpuAttentionContext>& layers) const override;
  void check_gpu() const override {}
  const KvPressOptions& options() const { return o_; }

 private:
  KvPressOptions o_;
};

// The trace of a layer that KvPressFactory made; nullptr for any other layer.
const KvPressTrace* kv_press_trace(const LayerAttention* layer);

}  // namespace cascade
