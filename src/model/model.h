// Model: one generic decoder for every family, driven by ArchSpec (arch/). It owns the weights and
// runs sequences; a Sequence owns the per-layer attention objects (and so the caches) of one token
// stream, so prefill and token-by-token decoding are the same forward() call.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "arch/arch_spec.h"
#include "core/tensor.h"
#include "io/checkpoint.h"
#include "model/device_decoder.h"
#include "attention/layer_attention.h"
#include "arch/weights.h"
#include "ops/rotary.h"

namespace cascade {

class Model;

class Sequence {
 public:
  int64_t length() const { return length_; }
  const PhaseTimes& times() const { return *times_; }
  int64_t cache_bytes() const;
  // Layer l's trace on either device: a selection-based method's selection over every token seen
  // (nullptr for exact attention).
  const AdaLayerTrace* trace(int l) const;
  // The CPU layers' attention objects (empty when the model runs on a GPU).
  const LayerAttention* cpu_layer(int l) const;

 private:
  friend class Model;
  std::vector<std::unique_ptr<LayerAttention>> layers_;
  std::unique_ptr<PhaseTimes> times_ = std::make_unique<PhaseTimes>();
  std::unique_ptr<DeviceSequence> device_;  // the layers when the model runs on a GPU
  int64_t length_ = 0;
};

class Model {
 public:
  // Reads a checkpoint (directory, llama2.c .bin or .gguf; see io/checkpoint.h): the architecture
  // and the tensors as stored (typed views of the memory map, shapes checked). Nothing is widened
  // here: the CPU's float32 weights are made on first use on the CPU, a GPU uploads from the views.
  static std::unique_ptr<Model> load(const std::filesystem::path& path);
  Model(Checkpoint ckpt, const std::string& source);

  const ArchSpec& spec() const { return spec_; }
  // The CPU engine's float32 weights, widened on the first call (then kept for the model's life,
  // since CPU sequences point into them); cascade::Error when they do not fit in memory.
  const ModelWeights& weights() const;
  // The tensors as the checkpoint stores them.
  const StoredWeights& stored_weights() const { return stored_; }
  const Checkpoint& checkpoint() const { return ckpt_; }

  // Moves the computation to a device: Cuda uploads the weights once in dtype (F32, F16 or BF16) from
  // the stored views, without widening them on the host, and every later forward() runs there (any
  // method with a GPU twin: AttentionFactory::make_gpu); Cpu (F32 only) widens the weights if not yet
  // done and drops the device copy. cuda_graphs: exact-attention forwards on the GPU are replayed as CUDA graphs (see
  // model/model_cuda.cu); attention_kernel: who runs the GPU's plain causal attention
  // (ops::AttentionKernel). cascade::Error without a GPU, in a CPU-only build, or for a dtype the CPU lacks.
  void to_device(Device d, DType dtype = DType::F32, bool cuda_graphs = true,
                 ops::AttentionKernel attention_kernel = ops::AttentionKernel::automatic);
  Device device() const { return device_; }
  DType compute_dtype() const { return gpu_ ? gpu_->dtype() : DType::F32; }

  // A new, empty sequence whose attention sub-layers the method makes (exact when null) on the
  // model's device: a method or option the device lacks is a cascade::Error naming the other device.
  Sequence new_sequence(const AttentionFactory* attention = nullptr) const;

  // Appends tokens to seq and returns their logits [n, V] (only the last row, [1, V], if last_only).
  // Token ids outside the vocabulary or positions past the context are cascade::Error.
  Tensor forward(Sequence& seq, std::span<const int32_t> tokens, bool last_only = false) const;
  // forward() for a model on the GPU whose logits stay there: float32 [n, V] ([1, V] if last_only) in
  // device memory the result owns (model/device_decoder.h). cascade::Error on the CPU.
  DeviceLogits forward_on_device(Sequence& seq, std::span<const int32_t> tokens, bool last_only = false) const;
  // Appends tokens to seq and returns -log p(tokens[r + 1] | tokens[0..r]) for each row r in
  // [first_row, n - 1) (natural log, float64; ops::token_nll). On the GPU the log-softmax runs there
  // and only these numbers come back, not the [n, V] logits.
  std::vector<double> next_token_nll(Sequence& seq, std::span<const int32_t> tokens, int64_t first_row = 0) const;

 private:
  // The checks of forward(): the sequence's device, the context length, the token ids.
  void check_append(const Sequence& seq, std::span<const int32_t> tokens) const;
  // After a forward on the GPU: the sequence's length and its wall time.
  void note_device_forward(Sequence& seq, int64_t n, std::chrono::steady_clock::time_point t_start) const;
  void mlp(const LayerWeights& l, const float* x, int64_t n, float* out) const;

  Checkpoint ckpt_;
  std::string source_;
  ArchSpec spec_;
  StoredWeights stored_;
  // Filled once by weights() (the first CPU new_sequence or to_device(Cpu)), read-only after that;
  // forward() on the CPU reads it through sequences made after the fill.
  ModelWeights w_;
  mutable std::once_flag widened_;
  ops::Rotary rotary_;
  Device device_ = Device::Cpu;
  std::unique_ptr<DeviceDecoder> gpu_;
};

}  // namespace cascade
