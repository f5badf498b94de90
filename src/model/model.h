// Model: one generic decoder for every family, driven by ArchSpec (arch/). It owns the weights and
// runs sequences; a Sequence owns the per-layer attention objects (and so the caches) of one token
// stream, so prefill and token-by-token decoding are the same forward() call.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "arch/arch_spec.h"
#include "core/tensor.h"
#include "io/checkpoint.h"
#include "model/layer_attention.h"
#include "model/weights.h"
#include "ops/rotary.h"

namespace cascade {

class Model;

class Sequence {
 public:
  int64_t length() const { return length_; }
  const PhaseTimes& times() const { return *times_; }
  LayerAttention& layer(int i) { return *layers_.at(size_t(i)); }
  int64_t cache_bytes() const;

 private:
  friend class Model;
  std::vector<std::unique_ptr<LayerAttention>> layers_;
  std::unique_ptr<PhaseTimes> times_ = std::make_unique<PhaseTimes>();
  int64_t length_ = 0;
};

class Model {
 public:
  // Reads a checkpoint (directory, llama2.c .bin or .gguf; see io/checkpoint.h).
  static std::unique_ptr<Model> load(const std::filesystem::path& path);
  Model(Checkpoint ckpt, const std::string& source);

  const ArchSpec& spec() const { return spec_; }
  const ModelWeights& weights() const { return w_; }
  const Checkpoint& checkpoint() const { return ckpt_; }

  // A new, empty sequence whose attention sub-layers come from `attention` (exact when null).
  Sequence new_sequence(const AttentionFactory* attention = nullptr) const;

  // Appends tokens to seq and returns their logits [n, V] (only the last row, [1, V], if last_only).
  // Token ids outside the vocabulary or positions past the context are cascade::Error.
  Tensor forward(Sequence& seq, std::span<const int32_t> tokens, bool last_only = false) const;

 private:
  void mlp(const LayerWeights& l, const float* x, int64_t n, float* out) const;

  Checkpoint ckpt_;
  ArchSpec spec_;
  ModelWeights w_;
  ops::Rotary rotary_;
};

}  // namespace cascade
