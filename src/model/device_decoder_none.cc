// The CPU-only build's make_cuda_decoder (the CUDA build compiles model/model_cuda.cu instead).
#ifndef CASCADE_WITH_CUDA
#include "core/error.h"
#include "cuda/runtime.h"
#include "model/device_decoder.h"

namespace cascade {

std::unique_ptr<DeviceDecoder> make_cuda_decoder(const ArchSpec&, const StoredWeights&, const ops::Rotary&, DType, bool,
                                                 ops::AttentionKernel) {
  cuda::require_gpu();  // throws: this build has no CUDA backend
  fail("--device cuda: this build has no CUDA backend");
}

}  // namespace cascade
#endif
