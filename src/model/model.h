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
#include "model/device_decoder.h"
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
  // The device's state when the model runs on a GPU (nullptr on the CPU): ADA selections per layer.
  const DeviceSequence* device() const { return device_.get(); }

 private:
  friend class Model;
  std::vector<std::unique_ptr<LayerAttention>> layers_;
  std::unique_ptr<PhaseTimes> times_ = std::make_unique<PhaseTimes>();
  std::unique_ptr<DeviceSequence> device_;  // the KV cache when the model runs on a GPU
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

  // Moves the computation to a device: Cuda uploads the weights once in dtype (F32, F16 or BF16) and
  // every later forward() runs there (exact attention, or ADA: see check_ada_on_gpu); Cpu (F32 only) drops the
  // device copy. cuda_graphs: exact-attention forwards on the GPU are replayed as CUDA graphs (see
  // model/model_cuda.cu). cascade::Error without a GPU, in a CPU-only build, or for a dtype the CPU lacks.
  void to_device(Device d, DType dtype = DType::F32, bool cuda_graphs = true);
  Device device() const { return device_; }
  DType compute_dtype() const { return gpu_ ? gpu_->dtype() : DType::F32; }

  // A new, empty sequence whose attention sub-layers come from `attention` (exact when null).
  // On the GPU: exact (null or ExactAttentionFactory) or an AdaAttentionFactory whose options
  // check_ada_on_gpu accepts; any other factory is a cascade::Error.
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
  Device device_ = Device::Cpu;
  std::unique_ptr<DeviceDecoder> gpu_;
};

}  // namespace cascade
