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
#include <optional>
#include <vector>

#include "attention/ada_attention.h"
#include "attention/kv_press_scores.h"
#include "attention/layer_attention.h"

namespace cascade {

// ada-kv's settings: the selection's (AdaOptions: select, features, dense_layers; its queries and
// proportional are attention settings that ada-kv does not use) and what it keeps besides.
struct AdaKvOptions {
  AdaOptions ada;
  int64_t sinks = 0;   // the first `sinks` context entries are kept too
  int64_t window = 0;  // the last `window` context entries are kept too
};

struct KvPressOptions {
  press::Method method = press::Method::streaming;
  double budget = 1;  // kept fraction of the context's entries, in (0, 1]
  press::Params params;
  std::optional<AdaKvOptions> ada_kv;  // set: the method is ada-kv (method and budget are not used)
};

// What a layer kept of its context (empty until its first forward()).
struct KvPressTrace {
  int64_t context = 0;                     // C, the entries of the first forward()
  std::vector<std::vector<int64_t>> kept;  // per KV head, the kept context positions, increasing
  select::Selection selection;             // ada-kv: the layer's selection over the context (empty in a
                                           // dense layer, which keeps everything, and for the peers)
  double kept_fraction() const;            // mean over KV heads of kept / C (1 before the first forward())
};

// ada-kv's choice in one layer of a context of n tokens: the selection of f [n, width] (the layer's
// input X_l or its keys after rotary, as o.ada.features says) from the layer below's selection (null:
// the full selection), and the kept positions: its representatives, 0..sinks-1 and n-window..n-1.
struct AdaKvChoice {
  select::Selection selection;
  std::vector<int64_t> kept;
};
AdaKvChoice ada_kv_choose(const AdaKvOptions& o, const float* f, int64_t n, int64_t width,
                          const select::Selection* below, int layer);
// The kept positions of a layer's selection over n context tokens (ada_kv_choose's second half; the
// GPU's device selection feeds it too): its representatives, 0..sinks-1 and n-window..n-1, increasing.
std::vector<int64_t> ada_kv_kept(const AdaKvOptions& o, const select::Selection& selection, int64_t n);

class KvPressFactory : public AttentionFactory {
 public:
  // cascade::Error for a budget outside (0, 1], and for ada-kv options ADA refuses (AdaAttentionFactory)
  explicit KvPressFactory(KvPressOptions o);
  std::vector<std::unique_ptr<LayerAttention>> make(const std::vector<AttentionContext>& layers) const override;
  std::vector<std::unique_ptr<GpuLayerAttention>> make_gpu(const std::vector<GpuAttentionContext>& layers) const override;
  void check_gpu() const override {}
  const KvPressOptions& options() const { return o_; }

 private:
  // One Layer per context; under ada-kv each layer past the dense ones continues the cascade of the
  // layer below (handed to its constructor), the same chain on both devices.
  template <class Base, class Layer, class Context>
  std::vector<std::unique_ptr<Base>> chain(const std::vector<Context>& layers) const {
    std::vector<std::unique_ptr<Base>> out;
    const Layer* below = nullptr;
    for (const auto& c : layers) {
      auto l = std::make_unique<Layer>(c, o_, below);
      below = o_.ada_kv && c.layer >= o_.ada_kv->ada.dense_layers ? l.get() : nullptr;
      out.push_back(std::move(l));
    }
    return out;
  }

  KvPressOptions o_;
};

// The trace of a layer that KvPressFactory made; nullptr for any other layer.
const KvPressTrace* kv_press_trace(const LayerAttention* layer);

}  // namespace cascade
