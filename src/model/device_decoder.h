// The decoder on another device (today: CUDA, model/model_cuda.cu). Model owns one when
// Model::to_device(Device::Cuda, dtype) was called; a Sequence then holds the device's KV cache.
// No CUDA header is needed here, and the CPU-only build links device_decoder_none.cc, whose
// make_cuda_decoder throws the cascade::Error of cuda::require_gpu().
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "attention/ada_attention.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "model/layer_attention.h"

namespace cascade {

struct ArchSpec;
struct StoredWeights;
namespace ops {
class Rotary;
}

enum class Device { Cpu, Cuda };
// "cpu" | "cuda"; "f32" | "fp16" | "bf16" (also "float32", "float16", "f16", "bfloat16").
Device parse_device(const std::string& s);
DType parse_compute_dtype(const std::string& s);
std::string device_name(Device d);

// One sequence's state on the device (its per-layer KV cache; with ADA, the compressed cache of the
// representatives and each layer's selection state).
class DeviceSequence {
 public:
  virtual ~DeviceSequence() = default;
  virtual int64_t cache_bytes() const = 0;
  // ADA: layer l's prefill selection (nullptr for exact attention or before the prefill).
  virtual const select::Selection* ada_selection(int64_t l) const { (void)l; return nullptr; }
  // Device time per phase, accumulated over the sequence (seconds, from CUDA events and the selection's
  // own event timing): selection (normalisation + Gram + rounds) and the attention kernel. projections
  // stays 0 on the GPU; total is the host's wall clock (Model::forward).
  PhaseTimes times;
};

// ADA on the GPU (the prefill of SPEC 3 with the selection of SPEC 1-2 on the device, and SPEC 4's
// decoding against the compressed cache): what runs there is --select full or cascade, --rule greedy,
// --ada-queries reps or all, with or without --proportional; anything else is a cascade::Error naming
// the CPU path.
void check_ada_on_gpu(const AdaOptions& o);

class DeviceDecoder {
 public:
  virtual ~DeviceDecoder() = default;
  virtual DType dtype() const = 0;
  // ada null: exact attention; else ADA with those options (check_ada_on_gpu).
  virtual std::unique_ptr<DeviceSequence> new_sequence(const AdaOptions* ada = nullptr) const = 0;
  // Appends n tokens at positions start..start+n-1 (start: the sequence's length; the caller has
  // validated ids and length) and returns float32 logits [n, V] on the host ([1, V] if last_only).
  virtual Tensor forward(DeviceSequence& s, std::span<const int32_t> tokens, int64_t start, bool last_only) const = 0;
  // The same forward, returning -log p(tokens[r + 1] | ..) for rows r in [first_row, n - 1) instead of
  // the logits (Model::next_token_nll): the log-softmax runs on the device.
  virtual std::vector<double> forward_nll(DeviceSequence& s, std::span<const int32_t> tokens, int64_t start,
                                          int64_t first_row) const = 0;
};

// Uploads the weights once from their stored views, converted to dtype (F32, F16 or BF16) on the device. graphs: replay exact-attention
// forwards as CUDA graphs (the attention kernels' device time is then not measured: NaN in
// PhaseTimes). Throws cascade::Error without a GPU or in a CPU-only build.
std::unique_ptr<DeviceDecoder> make_cuda_decoder(const ArchSpec& spec, const StoredWeights& w, const ops::Rotary& rotary,
                                                 DType dtype, bool graphs = true);

}  // namespace cascade
