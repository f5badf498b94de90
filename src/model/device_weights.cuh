// The GPU decoder's weights (model/model_cuda.cu reads them): every matrix [out, in] in the compute
// dtype, Q/K/V stacked into one matrix, norm weights in float32; and upload_weights, which makes them
// from the checkpoint's stored views without a float32 copy on the host. CUDA code only.
#pragma once
#include <cstdint>
#include <vector>

#include "arch/arch_spec.h"
#include "arch/weights.h"
#include "attention/gpu_attention.cuh"
#include "cuda/buffer.h"

namespace cascade::cuda_decoder {

using Bytes = cuda::Buffer<unsigned char>;

struct DevLinear {
  Bytes w, b;  // w: [out, in] in the compute dtype; b: [out] in the output dtype, or empty
  int64_t in = 0, out = 0;
  bool present() const { return w.size() != 0; }
  GpuLinearView view() const { return {w.data(), b.size() ? b.data() : nullptr, in, out}; }
};

struct DevNorm {
  cuda::Buffer<float> g, b;
};

struct DevLayer {
  DevNorm n1, n2;
  DevLinear qkv, o, up, gate, down;
};

struct DeviceWeights {
  Bytes embed, positions;  // [V, d_embed], [P, d_model] (learned positions) or empty
  DevLinear project_in, project_out;
  std::vector<DevLayer> layers;
  DevNorm final_norm;
  DevLinear head;          // bias in float32 (the logits' dtype); empty when head_tied
  bool head_tied = false;  // the head is the embedding
};

// Uploads w in compute dtype t (F32, F16 or BF16) on the current device: each tensor's stored bytes
// are copied from the memory map through pinned staging buffers, by several host threads (whose
// reads are the map's page faults) each with its own stream, and converted or transposed on the
// device where the stored form differs from the decoder's. The map's pages are dropped from the
// process once copied. A cascade::Error naming the checkpoint, before anything is allocated, when
// the device has too little free memory.
DeviceWeights upload_weights(const ArchSpec& a, const StoredWeights& w, DType t);

}  // namespace cascade::cuda_decoder
