// The decoder on another device (today: CUDA, model/model_cuda.cu). Model owns one when
// Model::to_device(Device::Cuda, dtype) was called; a Sequence then holds the device's layers.
// No CUDA header is needed here, and the CPU-only build links device_decoder_none.cc, whose
// make_cuda_decoder throws the cascade::Error of cuda::require_gpu().
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "attention/layer_attention.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "ops/attention.h"

namespace cascade {

struct ArchSpec;
struct StoredWeights;
namespace ops {
class Rotary;
}  // namespace ops

enum class Device { Cpu, Cuda };
// "cpu" | "cuda"; "f32" | "fp16" | "bf16" (also "float32", "float16", "f16", "bfloat16").
Device parse_device(const std::string& s);
DType parse_compute_dtype(const std::string& s);

// Float32 logits [rows, vocab] left in device memory (Model::forward_on_device), for a front end that
// hands them on without a copy to the host (Python's DLPack export). The memory is one cudaMalloc,
// freed with cudaFree when the last copy of this handle goes (cudaFree waits for the device, so
// work another stream still has queued on it finishes first). The engine's stream has finished
// writing them when the handle is returned.
struct DeviceLogits {
  std::shared_ptr<float> memory;
  int64_t rows = 0, vocab = 0;
  int device = 0;  // the CUDA device ordinal
  const float* data() const { return memory.get(); }
};

// One sequence's state on the device: the attention objects of its layers (and so their caches).
class DeviceSequence {
 public:
  virtual ~DeviceSequence() = default;
  virtual int64_t cache_bytes() const = 0;
  // Layer l's trace (a selection-based method's selection; nullptr otherwise).
  virtual const AdaLayerTrace* trace(int64_t l) const = 0;
};

class DeviceDecoder {
 public:
  virtual ~DeviceDecoder() = default;
  virtual DType dtype() const = 0;
  // A sequence whose layers' attention the method makes (AttentionFactory::make_gpu). times: the
  // sequence's phase times, which the layers and the decoder add to (device time: selection and
  // attention kernels; projections stay 0 on the GPU).
  virtual std::unique_ptr<DeviceSequence> new_sequence(const AttentionFactory& method, PhaseTimes* times) const = 0;
  // Appends n tokens at positions start..start+n-1 (start: the sequence's length; the caller has
  // validated ids and length) and returns float32 logits [n, V] on the host ([1, V] if last_only).
  virtual Tensor forward(DeviceSequence& s, std::span<const int32_t> tokens, int64_t start, bool last_only) const = 0;
  // The same forward, leaving the logits on the device: a copy of the decoder's logits buffer (which
  // the next forward reuses) into memory the result owns.
  virtual DeviceLogits forward_on_device(DeviceSequence& s, std::span<const int32_t> tokens, int64_t start,
                                         bool last_only) const = 0;
  // The same forward, returning -log p(tokens[r + 1] | ..) for rows r in [first_row, n - 1) instead of
  // the logits (Model::next_token_nll): the log-softmax runs on the device.
  virtual std::vector<double> forward_nll(DeviceSequence& s, std::span<const int32_t> tokens, int64_t start,
                                          int64_t first_row) const = 0;
};

// Uploads the weights once from their stored views, converted to dtype (F32, F16 or BF16) on the device. graphs: replay exact-attention
// forwards as CUDA graphs (the attention kernels' device time is then not measured: NaN in
// PhaseTimes). kernel: who runs the plain causal attention (ops::AttentionKernel). Throws
// cascade::Error without a GPU or in a CPU-only build.
std::unique_ptr<DeviceDecoder> make_cuda_decoder(const ArchSpec& spec, const StoredWeights& w, const ops::Rotary& rotary,
                                                 DType dtype, bool graphs = true,
                                                 ops::AttentionKernel kernel = ops::AttentionKernel::automatic);

}  // namespace cascade
